"""MF-BPR: matrix factorisation trained with the BPR pairwise loss (Rendle et al., UAI 2009)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from dqrec.baselines.popular import interaction_matrix
from dqrec.registry import Recommender
from dqrec.sampling import NegativeSampler
from dqrec.train import Trainer, check_training_params, pairwise_loss, resolve_device


class MFNet(torch.nn.Module):
    def __init__(self, n_users: int, n_items: int, dim: int, init_std: float, no_history: np.ndarray,
                 generator: torch.Generator):
        super().__init__()
        user = torch.randn(n_users, dim, generator=generator) * init_std
        user[torch.from_numpy(no_history)] = 0.0  # a user without training positives stays at 0
        self.user = torch.nn.Parameter(user)
        self.item = torch.nn.Parameter(torch.randn(n_items, dim, generator=generator) * init_std)


class MFBPR(Recommender):
    """score(u, i) = <p_u, q_i>, trained by :class:`dqrec.train.Trainer` on (u, i, j) triples: every
    distinct training positive once per epoch, with one uniformly sampled negative j (the original
    BPR's uniform sampling). Early stopping on validation; ``trainer_.summary()`` says how it ended.
    ``weight_decay`` is Adam's L2 (BPR's regulariser lambda).
    """

    def __init__(self, dim: int = 64, epochs: int = 200, lr: float = 1e-3, batch_size: int = 1024,
                 weight_decay: float = 1e-6, init_std: float = 0.1, patience: int = 5, seed: int = 0,
                 loss: str = "bpr", device: str = "auto", progress: bool = True):
        check_training_params(dim=dim, epochs=epochs, lr=lr, batch_size=batch_size, patience=patience)
        pairwise_loss(loss)
        if weight_decay < 0 or init_std <= 0:
            raise ValueError(f"need weight_decay >= 0 and init_std > 0, got {weight_decay}, {init_std}")
        self.dim, self.epochs, self.lr, self.batch_size = dim, epochs, lr, batch_size
        self.weight_decay, self.init_std, self.patience, self.seed = weight_decay, init_std, patience, seed
        self.loss, self.device, self.progress = loss, device, progress

    def fit(self, split, validate=None) -> "MFBPR":
        from dqrec.evaluate import validation_criterion

        x = interaction_matrix(split.train, split.n_users, split.n_items).tocoo()
        users, items = x.row.astype(np.int64), x.col.astype(np.int64)  # distinct train positives
        sampler = NegativeSampler(users, items, split.n_items)
        self.device_ = dev = resolve_device(self.device)
        gen = torch.Generator().manual_seed(self.seed)
        no_history = np.bincount(users, minlength=split.n_users) == 0
        self.net_ = MFNet(split.n_users, split.n_items, self.dim, self.init_std, no_history, gen).to(dev)
        loss, validate = pairwise_loss(self.loss), validate or validation_criterion(split, self.seed)

        def batch(idx, rng):
            neg = sampler.sample(users[idx], rng)
            return tuple(torch.from_numpy(a).to(dev) for a in (users[idx], items[idx], neg))

        def batch_loss(b):
            u, i, j = b
            p = self.net_.user[u]
            return loss((p * self.net_.item[i]).sum(-1), (p * self.net_.item[j]).sum(-1))

        self.trainer_ = Trainer(self.epochs, self.patience, self.lr, self.batch_size, self.weight_decay, self.seed,
                                str(dev), self.progress, desc="MF-BPR")
        self.trainer_.fit(self.net_, len(users), batch, batch_loss, lambda: validate(self))
        self.history_ = self.trainer_.history_
        return self

    @torch.no_grad()
    def score(self, batch: pd.DataFrame, items: np.ndarray) -> np.ndarray:
        """(len(batch), len(items)) dot products of user and item embeddings."""
        dev = self.device_
        u = torch.from_numpy(batch.user.to_numpy(np.int64, copy=True)).to(dev)
        i = torch.from_numpy(np.asarray(items, np.int64)).to(dev)
        return (self.net_.user[u] @ self.net_.item[i].T).cpu().numpy()

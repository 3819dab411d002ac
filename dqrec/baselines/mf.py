"""MF-BPR: matrix factorisation trained with the BPR pairwise loss (Rendle et al. 2009)."""
from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from dqrec.baselines.popular import interaction_matrix


class MFBPR(torch.nn.Module):
    """score(u, i) = <user_emb[u], item_emb[i]>, trained on (u, i, j) triples with one uniformly
    sampled negative j per train positive (resampled while j is a train positive of u).

    Deterministic on CPU for a fixed ``seed``. With ``fit(..., valid_fn=f)``, ``f(self)`` is called
    after each epoch (higher is better); training stops after ``patience`` epochs without
    improvement and the best weights are restored. ``history`` holds epoch, loss and valid score.
    """

    def __init__(self, dim: int = 64, epochs: int = 20, lr: float = 1e-3, batch_size: int = 1024,
                 weight_decay: float = 1e-6, init_std: float = 0.1, patience: int = 3, seed: int = 0,
                 progress: bool = True):
        super().__init__()
        self.dim, self.epochs, self.lr, self.batch_size = dim, epochs, lr, batch_size
        self.weight_decay, self.init_std, self.patience, self.seed = weight_decay, init_std, patience, seed
        self.progress = progress

    def fit(self, train: pd.DataFrame, n_users: int, n_items: int,
            valid_fn: Callable[["MFBPR"], float] | None = None) -> "MFBPR":
        x = interaction_matrix(train, n_users, n_items).tocoo()
        users, items = x.row.astype(np.int64), x.col.astype(np.int64)  # distinct train positives
        n_positives = np.bincount(users, minlength=n_users)
        if np.any(n_positives >= n_items):
            raise ValueError("a user likes every item: no negative to sample")
        positive_keys = np.sort(users * n_items + items)
        gen = torch.Generator().manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        user_emb = torch.randn(n_users, self.dim, generator=gen) * self.init_std
        user_emb[torch.from_numpy(n_positives == 0)] = 0.0  # no history: stays 0
        self.user_emb = torch.nn.Parameter(user_emb)
        self.item_emb = torch.nn.Parameter(torch.randn(n_items, self.dim, generator=gen) * self.init_std)
        opt = torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        self.history, best, best_state, stale = [], -np.inf, None, 0
        bar = tqdm(range(self.epochs), desc="MF-BPR", disable=not self.progress, leave=False)
        for epoch in bar:
            order = rng.permutation(len(users))
            negatives = sample_negatives(users[order], positive_keys, n_items, rng)
            total = 0.0
            for start in range(0, len(order), self.batch_size):
                sl = slice(start, start + self.batch_size)
                u, i, j = (torch.from_numpy(a[sl]) for a in (users[order], items[order], negatives))
                diff = (self.user_emb[u] * (self.item_emb[i] - self.item_emb[j])).sum(-1)
                loss = -torch.nn.functional.logsigmoid(diff).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(u)
            record = dict(epoch=epoch, loss=total / len(order))
            if valid_fn is not None:
                record["valid"] = score = float(valid_fn(self))
                if score > best:
                    best, best_state, stale = score, copy.deepcopy(self.state_dict()), 0
                else:
                    stale += 1
            self.history.append(record)
            bar.set_postfix(record)
            if valid_fn is not None and stale >= self.patience:
                break
        if best_state is not None:
            self.load_state_dict(best_state)
        return self

    @torch.no_grad()
    def score(self, batch: pd.DataFrame, items: np.ndarray) -> np.ndarray:
        """(len(batch), len(items)) dot products of user and item embeddings."""
        u = torch.tensor(batch.user.to_numpy(np.int64))
        return (self.user_emb[u] @ self.item_emb[torch.tensor(items, dtype=torch.int64)].T).numpy()


def sample_negatives(users: np.ndarray, positive_keys: np.ndarray, n_items: int,
                      rng: np.random.Generator) -> np.ndarray:
    """(len(users),) uniform items, redrawn where (user, item) is a train positive."""
    negatives = rng.integers(0, n_items, len(users))
    redraw = np.arange(len(users))
    while len(redraw):
        keys = users[redraw] * n_items + negatives[redraw]
        pos = np.minimum(np.searchsorted(positive_keys, keys), len(positive_keys) - 1)
        redraw = redraw[positive_keys[pos] == keys]
        negatives[redraw] = rng.integers(0, n_items, len(redraw))
    return negatives

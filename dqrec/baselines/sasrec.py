"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

A causal transformer over the user's chronological history; the output F_t at the last position scores
item i by r_{i,t} = F_t . M_i with the shared item embedding M (the paper's Eq. 6, shared embedding).
Blocks are written as the paper's Eq. 5 writes them, g(x) = x + Dropout(g(LayerNorm(x))) (pre-LN),
with a final LayerNorm (the authors' code). Loss: the paper's binary cross-entropy with one sampled
negative (Eq. 7),

    - log sigma(r_{o_t, t}) - log(1 - sigma(r_{j, t})),   j an item the user has no training positive with.

The paper sums Eq. 7 over every position t of one sequence per user (Section III-E), and so do we by
default (``train_on="sequences"``, :func:`dqrec.baselines.sequential.training_windows`): each user's
timeline is cut into windows of ``max_len`` rows and one causal pass scores every train-part target of a
window from the items strictly before it. Two differences to the paper: a user with more than ``max_len``
rows contributes all of its windows, not only the latest ``max_len`` items, and a target tied in time
with the item before it is read at the latest position strictly before it (the paper's data have no
ties). ``train_on="prefixes"`` presents the same (prefix, next item) pairs one sequence per target, as
RecBole does (the variant `scripts/recbole_sequential.py` compares against RecBole's SASRec): the same
loss, about ``max_len`` times the cost per epoch.

Hyper-parameters (source): dim 64, Adam lr 1e-3, batch 1024 (the DQRec paper, for every baseline; SASRec's
paper uses d = 50, lr 1e-3, batch 128); 2 blocks, 1 head, dropout 0.2 (SASRec's paper, Section IV-B,
its setting for MovieLens-1M); max_len 50 (SASRec uses 200 on ML-1M, 50 on its sparser sets; see
:mod:`dqrec.baselines.sequential` for why 50 here); ReLU feed-forward (the authors' code uses point-wise
Conv1d layers with ReLU). Weight init: BERT's normal(0, 0.02) (RecBole's; the authors' TF code uses
Xavier). Early stopping on validation (the authors' code runs a fixed 200 epochs).
"""
from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from dqrec.baselines.sequential import SequentialRecommender
from dqrec.sampling import NegativeSampler


class SASRec(SequentialRecommender):
    """Causal, pre-LN transformer; BCE with one uniformly sampled negative per target (Eq. 7)."""

    causal, norm_first, activation = True, True, "relu"
    train_schemes = ("sequences", "prefixes")

    def __init__(self, dim: int = 64, max_len: int = 50, n_blocks: int = 2, n_heads: int = 1, dropout: float = 0.2,
                 epochs: int = 200, lr: float = 1e-3, batch_size: int = 1024, weight_decay: float = 0.0,
                 patience: int = 5, seed: int = 0, device: str = "auto", progress: bool = True,
                 train_on: str = "sequences"):
        super().__init__(dim, max_len, n_blocks, n_heads, dropout, epochs, lr, batch_size, weight_decay, patience,
                         seed, device, progress, train_on)

    def setup(self, split):
        train = split.train
        self.users_ = split.samples.user.to_numpy(np.int64)
        self.sampler_ = NegativeSampler(train.user.to_numpy(), train.item.to_numpy(), split.n_items)
        super().setup(split)

    def train_batch(self, rows, rng):
        return self.with_negatives(super().train_batch(rows, rng), rng)

    def window_batch(self, windows, rng):
        return self.with_negatives(super().window_batch(windows, rng), rng)

    def with_negatives(self, batch: dict, rng) -> dict:
        """One uniform negative per target, an item its user has no training positive with."""
        users = self.users_[batch["rows"]]
        batch["negative"] = torch.from_numpy(self.sampler_.sample(users, rng)).to(self.device_)
        return batch

    def train_loss(self, batch):
        rep = self.represent(batch)
        emb = self.net_.item_embedding
        pos = (rep * emb(batch["target"])).sum(-1)
        neg = (rep * emb(batch["negative"])).sum(-1)
        return -(F.logsigmoid(pos) + F.logsigmoid(-neg)).mean()

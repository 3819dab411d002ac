"""DuoRec: contrastive learning against representation degeneration (Qiu et al., WSDM 2022).

A SASRec-style causal transformer trained with the next-item softmax loss plus a contrastive
regulariser whose positive pairs come from two augmentations (Section 4):

* **model-level (unsupervised) augmentation**: the same history encoded twice, with different dropout
  masks (h'_u);
* **supervised positive**: the history of another training sample with the *same target item*
  (h_s; a sample whose target no other training sample has uses its own history);
* L = L_rec + lambda L_reg (Eq. 13), L_reg the NT-Xent of Eq. 12 between h'_u and h_s over the 2B views of
  a batch (dot product, temperature tau): the authors' default ``contrast='us_x'``, which pairs the
  dropout view with the supervised view.

Hyper-parameters (source): dim 64, Adam lr 1e-3, batch 1024 (DQRec paper); 2 blocks, 2 heads, GELU,
post-LN, dropout 0.5 (hidden and attention), lambda = 0.1, tau = 1, max_len 50 (the authors' code,
github.com/RuihongQiu/DuoRec: duorec.sh and its logged ML-100K run, ``lmd_sem=0.1 tau=1 sim=dot DPh0.5
DPa0.5``).
"""
from __future__ import annotations

import numpy as np

from dqrec.baselines.sequential import SequentialRecommender, info_nce


def same_target_partner(targets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n,) for each position i, a uniformly drawn other position j with targets[j] == targets[i]
    (i itself when no other has that target)."""
    order = np.argsort(targets, kind="stable")
    t = targets[order]
    start = np.searchsorted(t, t, side="left")
    size = np.searchsorted(t, t, side="right") - start
    offset = (rng.random(len(t)) * np.maximum(size - 1, 1)).astype(np.int64)  # among the size - 1 others
    own = np.arange(len(t)) - start
    pick = np.where(size > 1, offset + (offset >= own), own)  # skip over oneself
    out = np.empty_like(order)
    out[order] = order[start + pick]
    return out


class DuoRec(SequentialRecommender):
    """Next-item cross-entropy + lambda * NT-Xent(dropout view, same-target view) (Eq. 12-13)."""

    causal, norm_first, activation = True, False, "gelu"
    training_state = ("partner_rng_",)

    def __init__(self, dim: int = 64, max_len: int = 50, n_blocks: int = 2, n_heads: int = 2, dropout: float = 0.5,
                 cl_weight: float = 0.1, temperature: float = 1.0, epochs: int = 200, lr: float = 1e-3,
                 batch_size: int = 1024, weight_decay: float = 0.0, patience: int = 5, seed: int = 0,
                 device: str = "auto", progress: bool = True):
        super().__init__(dim, max_len, n_blocks, n_heads, dropout, epochs, lr, batch_size, weight_decay, patience,
                         seed, device, progress)
        if cl_weight < 0 or temperature <= 0:
            raise ValueError(f"need cl_weight >= 0 and temperature > 0, got {cl_weight}, {temperature}")
        self.cl_weight, self.temperature = cl_weight, temperature

    def start_epoch(self, epoch):
        """Each epoch draws every training sample's same-target partner afresh."""
        self.partner_ = self.train_rows_[same_target_partner(self.items_[self.train_rows_], self.partner_rng_)]

    def setup(self, split):
        self.partner_rng_ = np.random.default_rng([self.seed, 1])
        super().setup(split)

    def train_batch(self, rows, rng):
        batch = super().train_batch(rows, rng)
        position = np.searchsorted(self.train_rows_, rows)
        batch["partner_seq"] = batch["seq"].new_tensor(self.history_[self.partner_[position]])
        return batch

    def train_loss(self, batch):
        main = self.next_item_loss(self.encode(batch["seq"]), batch["target"])
        dropout_view, supervised_view = self.encode(batch["seq"]), self.encode(batch["partner_seq"])
        return main + self.cl_weight * info_nce(dropout_view, supervised_view, self.temperature)

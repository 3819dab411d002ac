"""BERT4Rec: bidirectional transformer trained by the cloze task (Sun et al., CIKM 2019).

The encoder attends in both directions (no causal mask). Training (Section 3.6): items of the input
sequence are replaced by the [mask] token at random with probability rho and predicted from both
sides, Eq. 7: P(v) = softmax(GELU(h W^P + b^P) E^T + b^O), E the shared item embedding, with the
LayerNorm after the GELU of the authors' (BERT's) output transform; loss: the negative log-likelihood of
the masked items (Eq. 8) over all items. Scoring (Section 3.6): [mask] is appended after the history and
its output scores the next item.

Training sequences (``train_on``):

* ``"sequences"`` (the default, the paper's Section 3.6): each user's timeline in the windows of
  :func:`~dqrec.baselines.sequential.training_windows` (max_len consecutive rows), each window cut at its
  last train-part row (:func:`~dqrec.baselines.windows.cut_windows`: a bidirectional encoder would
  otherwise read the valid and test rows after it), every train-part entry masked with probability rho
  and predicted. A batch holds the windows of about ``batch_size`` train targets (as SASRec's), of
  which about rho are masked. Windows overlap by a row or so, so a few rows are candidates twice.
* ``"prefixes"``: one window per train-part sample row r, r's history followed by r's own item (the last
  max_len of them), masked the same way: each row is a candidate in up to max_len windows, at about
  max_len times the cost per epoch (RecBole's prefix-per-target data, with the cloze on top).

Either way a masked entry is a target only if it is a train-part sample, so valid and test positives are
never targets, and an input is never later than the window's last train row (in the random split valid
and test rows before it can be inputs, as in every model's history S_u). Not done: the paper's extra
samples that mask only the last item.

Hyper-parameters (source): dim 64, Adam lr 1e-3, batch 1024 (DQRec paper; BERT4Rec's paper uses d = 64
on ML-1M, lr 1e-4, batch 256); 2 blocks, 2 heads, dropout 0.1, GELU, post-LN (BERT4Rec's paper,
Section 4.3); rho = 0.2 (its setting for ML-1M and ML-20M, Section 4.3 / Fig. 5); max_len 50 (the paper
uses 200 on ML-1M; see :mod:`dqrec.baselines.sequential`).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dqrec.baselines.sequential import SequenceEncoder, SequentialRecommender, history_rows, mask_id
from dqrec.baselines.windows import cut_windows, last_true


class BERT4RecNet(nn.Module):
    """Bidirectional :class:`SequenceEncoder` plus the output transform of Eq. 7 (and its item bias)."""

    def __init__(self, encoder: SequenceEncoder):
        super().__init__()
        dim = encoder.item_embedding.embedding_dim
        self.encoder, self.item_embedding = encoder, encoder.item_embedding
        self.transform, self.norm = nn.Linear(dim, dim), nn.LayerNorm(dim)
        self.item_bias = nn.Parameter(torch.zeros(encoder.n_items))
        nn.init.normal_(self.transform.weight, std=0.02)
        nn.init.zeros_(self.transform.bias)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        return self.norm(F.gelu(self.transform(self.encoder(seq))))


class BERT4Rec(SequentialRecommender):
    """Bidirectional cloze model; the representation of a history is the output at an appended [mask]."""

    causal, norm_first, activation = False, False, "gelu"
    train_schemes = ("sequences", "prefixes")

    def __init__(self, dim: int = 64, max_len: int = 50, n_blocks: int = 2, n_heads: int = 2, dropout: float = 0.1,
                 mask_ratio: float = 0.2, epochs: int = 200, lr: float = 1e-3, batch_size: int = 1024,
                 weight_decay: float = 0.0, patience: int = 5, seed: int = 0, device: str = "auto",
                 progress: bool = True, train_on: str = "sequences"):
        super().__init__(dim, max_len, n_blocks, n_heads, dropout, epochs, lr, batch_size, weight_decay, patience,
                         seed, device, progress, train_on)
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must lie in (0, 1), got {mask_ratio}")
        self.mask_ratio = mask_ratio

    def build_net(self, split):
        return BERT4RecNet(super().build_net(split))

    def setup(self, split):
        self.rows_ = history_rows(split, self.max_len)
        self.is_train_ = (split.samples.part == "train").to_numpy()
        super().setup(split)

    def encode(self, seq):
        """The output at a [mask] appended after the most recent max_len - 1 items."""
        masked = torch.full_like(seq[:, :1], mask_id(self.n_items_))
        return self.net_(torch.cat([seq[:, 1:], masked], 1))[:, -1]

    def item_scores(self, rep, items=None):
        bias = self.net_.item_bias if items is None else self.net_.item_bias[items]
        return super().item_scores(rep, items) + bias

    def train_batch(self, rows, rng):
        return self.cloze_batch(np.concatenate([self.rows_[rows, 1:], rows[:, None]], 1), rng)

    def window_batch(self, windows, rng):
        rows = self.window_rows_[windows]
        return self.cloze_batch(cut_windows(rows, last_true(self.train_row(rows))), rng)

    def train_row(self, rows: np.ndarray) -> np.ndarray:
        """Same shape as ``rows`` (sample rows, -1 padding): True at train-part rows."""
        return (rows >= 0) & self.is_train_[np.clip(rows, 0, None)]

    def cloze_batch(self, window_rows: np.ndarray, rng) -> dict:
        """(B, max_len) sample rows (-1 padding) -> the windows' items with every train-part entry masked
        with probability rho, the mask and the masked items (the targets)."""
        window = np.where(window_rows >= 0, self.items_[np.clip(window_rows, 0, None)], self.n_items_)
        masked = self.train_row(window_rows) & (rng.random(window.shape) < self.mask_ratio)
        dev = self.device_
        return dict(seq=torch.from_numpy(np.where(masked, mask_id(self.n_items_), window)).to(dev),
                    masked=torch.from_numpy(masked).to(dev), target=torch.from_numpy(window[masked]).to(dev))

    def train_loss(self, batch):
        out = self.net_(batch["seq"])[batch["masked"]]  # (number masked, dim)
        if len(out) == 0:
            return out.sum()  # a batch without a masked target: zero loss, still a graph
        return F.cross_entropy(self.item_scores(out), batch["target"])

"""CL4SRec: contrastive learning for sequential recommendation (Xie et al., ICDE 2022).

A SASRec-style causal transformer trained with the next-item loss plus a contrastive loss between two
augmented views of each sample's history (the paper's Eq. 8, L = L_main + lambda L_cl):

* the three augmentations of Section III-C, applied to a history of n items (left-padded here):
  **crop** (Eq. 3) keeps a random contiguous run of floor(eta n) items; **mask** (Eq. 4) replaces
  floor(gamma n) random items by the [mask] token; **reorder** (Eq. 5) shuffles a random contiguous run
  of floor(beta n) items. Each sample draws two *different* augmentations (as the authors' code in
  Qiu et al.'s DuoRec repository does); a history of fewer than 2 items stays as it is;
* L_cl: NT-Xent (Eq. 7) over the 2B views of a batch, dot-product similarity, temperature tau;
* L_main: softmax cross-entropy of the next item over all items (``loss_type='CE'`` of that code).

Training sequences (``train_on``):

* ``"sequences"`` (the default; the paper's Eq. 2 sums L_main over every step t of a user's sequence and
  contrasts views of that sequence): SASRec's windows (:func:`~dqrec.baselines.sequential.training_windows`),
  L_main at every train target of a window as SASRec trains, and the two views made of the window cut
  at the latest position any of its targets is read at (:func:`~dqrec.baselines.windows.cut_windows`),
  so a view holds only items strictly before one of the window's targets; a view's representation is
  its last position. A batch holds the windows of about ``batch_size`` targets (about 30 windows on
  ML-100K), so L_cl contrasts about 2 x 30 views, not 2 x 1,024 (the paper's batch is 256 users).
* ``"prefixes"``: one history per train target, its views made of that history (the RecBole-based code
  released with DuoRec does this), at about max_len times the cost per epoch.

Hyper-parameters (source): dim 64, Adam lr 1e-3, batch 1024 (DQRec paper); 2 blocks, 2 heads, dropout
0.5 (hidden and attention), GELU, post-LN, max_len 50, eta = 0.6, gamma = 0.3, beta = 0.6 (parameters
``crop_ratio``, ``mask_ratio``, ``reorder_ratio``: a profile's ``beta`` is DQRec's), lambda = 0.1 (``cl_weight``),
tau = 1 (the CL4SRec implementation released with DuoRec, github.com/RuihongQiu/DuoRec, whose ML-100K log
uses dropout 0.5; CL4SRec's authors released no code).
"""
from __future__ import annotations

import numpy as np
import torch

from dqrec.baselines.sequential import SequentialRecommender, info_nce, mask_id
from dqrec.baselines.windows import cut_windows

AUGMENTATIONS = ("crop", "mask", "reorder")


def _lengths(seq: torch.Tensor, pad: int) -> torch.Tensor:
    return (seq != pad).sum(1)


def crop(seq: torch.Tensor, pad: int, eta: float, gen: torch.Generator) -> torch.Tensor:
    """(B, L) left-padded -> a random contiguous run of floor(eta n) of each row's n items, left-padded."""
    b, length = seq.shape
    n = _lengths(seq, pad)
    keep = torch.floor(n * eta).long()
    start = (torch.rand(b, generator=gen, device=seq.device) * (n - keep + 1)).long()  # uniform in [0, n - keep]
    k = torch.arange(length, device=seq.device)[None] - (length - keep)[:, None]  # index into the kept run
    source = (length - n + start)[:, None] + k
    out = seq.gather(1, source.clamp(0, length - 1))
    return torch.where(k >= 0, out, torch.full_like(seq, pad))


def mask(seq: torch.Tensor, pad: int, gamma: float, mask_token: int, gen: torch.Generator) -> torch.Tensor:
    """Replace floor(gamma n) randomly chosen items of each row by ``mask_token``."""
    n = _lengths(seq, pad)
    keys = torch.rand(seq.shape, generator=gen, device=seq.device).masked_fill(seq == pad, 2.0)
    rank = keys.argsort(1).argsort(1)  # rank of each position's key; padding ranks last
    return torch.where(rank < torch.floor(n * gamma).long()[:, None], torch.full_like(seq, mask_token), seq)


def reorder(seq: torch.Tensor, pad: int, beta: float, gen: torch.Generator) -> torch.Tensor:
    """Shuffle a random contiguous run of floor(beta n) items of each row; the rest stays in place."""
    b, length = seq.shape
    n = _lengths(seq, pad)
    size = torch.floor(n * beta).long()
    start = length - n + (torch.rand(b, generator=gen, device=seq.device) * (n - size + 1)).long()
    pos = torch.arange(length, device=seq.device)[None].expand(b, -1)
    inside = (pos >= start[:, None]) & (pos < (start + size)[:, None])
    # outside: key = position; inside: a random key within (start - 1, start + size), so sorting the keys
    # shuffles the run and keeps every other position
    noise = start[:, None] - 0.5 + torch.rand(seq.shape, generator=gen, device=seq.device) * size[:, None]
    keys = torch.where(inside, noise, pos.to(noise.dtype))
    return seq.gather(1, keys.argsort(1))


def augment(seq: torch.Tensor, pad: int, mask_token: int, which: torch.Tensor, eta: float, gamma: float,
            beta: float, gen: torch.Generator) -> torch.Tensor:
    """Row r gets augmentation AUGMENTATIONS[which[r]]; rows with fewer than 2 items are unchanged."""
    views = torch.stack([crop(seq, pad, eta, gen), mask(seq, pad, gamma, mask_token, gen),
                         reorder(seq, pad, beta, gen)])
    out = views[which, torch.arange(len(seq), device=seq.device)]
    return torch.where((_lengths(seq, pad) < 2)[:, None], seq, out)


def two_views(seq: torch.Tensor, pad: int, mask_token: int, eta: float, gamma: float, beta: float,
              rng: np.random.Generator, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two augmented views per row, with two different augmentations drawn at random."""
    first = rng.integers(0, 3, len(seq))
    second = (first + rng.integers(1, 3, len(seq))) % 3  # != first
    which = [torch.from_numpy(w).to(seq.device) for w in (first, second)]
    return tuple(augment(seq, pad, mask_token, w, eta, gamma, beta, gen) for w in which)


class CL4SRec(SequentialRecommender):
    """Next-item cross-entropy + lambda * NT-Xent between two augmented views of the history (Eq. 8)."""

    causal, norm_first, activation = True, False, "gelu"
    train_schemes = ("sequences", "prefixes")
    training_state = ("generator_",)

    def __init__(self, dim: int = 64, max_len: int = 50, n_blocks: int = 2, n_heads: int = 2, dropout: float = 0.5,
                 crop_ratio: float = 0.6, mask_ratio: float = 0.3, reorder_ratio: float = 0.6, cl_weight: float = 0.1,
                 temperature: float = 1.0, epochs: int = 200, lr: float = 1e-3, batch_size: int = 1024,
                 weight_decay: float = 0.0, patience: int = 5, seed: int = 0, device: str = "auto",
                 progress: bool = True, train_on: str = "sequences"):
        super().__init__(dim, max_len, n_blocks, n_heads, dropout, epochs, lr, batch_size, weight_decay, patience,
                         seed, device, progress, train_on)
        for name, value in dict(crop_ratio=crop_ratio, mask_ratio=mask_ratio, reorder_ratio=reorder_ratio).items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")
        if cl_weight < 0 or temperature <= 0:
            raise ValueError(f"need cl_weight >= 0 and temperature > 0, got {cl_weight}, {temperature}")
        self.crop_ratio, self.mask_ratio, self.reorder_ratio = crop_ratio, mask_ratio, reorder_ratio
        self.cl_weight, self.temperature = cl_weight, temperature

    def setup(self, split):
        self.generator_ = torch.Generator().manual_seed(self.seed)  # augmentation draws, on the CPU
        super().setup(split)

    def train_batch(self, rows, rng):
        batch = super().train_batch(rows, rng)
        batch["views"] = self.views(batch["seq"].cpu(), rng)
        return batch

    def window_batch(self, windows, rng):
        batch = super().window_batch(windows, rng)
        rows = cut_windows(self.window_rows_[windows], self.window_context_[windows].max(1))
        batch["views"] = self.views(torch.from_numpy(np.where(rows >= 0, self.items_[np.clip(rows, 0, None)],
                                                              self.n_items_)), rng)
        return batch

    def views(self, seq: torch.Tensor, rng) -> list[torch.Tensor]:
        """(B, L) left-padded sequences (CPU) -> their two augmented views, on the device."""
        views = two_views(seq, self.n_items_, mask_id(self.n_items_), self.crop_ratio, self.mask_ratio,
                          self.reorder_ratio, rng, self.generator_)
        return [v.to(self.device_) for v in views]

    def train_loss(self, batch):
        main = self.next_item_loss(self.represent(batch), batch["target"])
        a, b = (self.encode(v) for v in batch["views"])
        return main + self.cl_weight * info_nce(a, b, self.temperature)

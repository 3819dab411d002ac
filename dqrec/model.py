"""DQRec and its base, the ID dual tower (paper Section 4.3.3, Eqs. 20-23).

User tower input (Eq. 20), each part 64-d:

    e_u = [ e_u^ID,  F_1(c_1) .. F_L(c_L),  mean_{i in S_u} e_i^ID,  mean_{v in Q_u^all} e_v^ID ]

then an MLP with GELU (Eq. 21) to z_u; the item tower mirrors it with S_i and Q_i^all. The score is
y_ui = sigma(z_u . z_i) (Eq. 22), trained with BPR on these scores against one uniformly sampled
negative (Eq. 23): ``loss="sigmoid_bpr"``, the default. ``loss="bpr"`` applies BPR to the raw dot
products instead (the usual BPR, and what this code did before it followed Eq. 23 literally). Both
rank items the same way at evaluation (sigma is monotone). ID tables are shared between the towers'
own-ID part and the pooled parts. :class:`DualTower` is the same model with every augmentation
switched off (IDs + sequence pooling): the base DQRec improves on.

The paper is silent on the MLP's hidden width (we use 256) and on how negatives are drawn (uniform
over the items the user has no training positive with).

States. A sample's user side is its own state: S_u strictly before t, the semantic ID of its own
representation, neighbours from the training store. An item scored as a candidate (a BPR negative,
or any item at evaluation) takes the state of its latest sample strictly before a reference time:
the positive's time for a training negative, the start of the evaluated period at evaluation.

Speed: every pooled part of one ID table is one ``embedding_bag`` mean (:class:`BagPool`, whose
backward is a sparse product), and the semantic-ID part of the first layer is computed as
sum_l (F_l A_l^T)[c_l], the same product as A [F_1(c_1), .., F_L(c_L)] without the concatenation.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from numba import njit
from torch import nn
from torch.nn import functional as F

from .augment import SideAugmentation, augment_side
from .data import Split
from .registry import Recommender
from .representation import RepresentationModel
from .sampling import NegativeSampler
from .train import Trainer, check_precision, check_training_params, pairwise_loss, resolve_device

class Ragged:
    """Variable-length index rows (a padded (N, S) array without its -1 pads) in CSR form, plus an
    empty last row N for 'no state' (cold)."""

    def __init__(self, padded: np.ndarray):
        valid = padded >= 0
        lengths = valid.sum(1)
        self.ptr = np.concatenate([[0], np.cumsum(lengths), [lengths.sum()]]).astype(np.int64)
        self.values = padded[valid].astype(np.int64)

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(values, offsets) of ``rows`` for ``embedding_bag``: the rows' values back to back."""
        return _take(self.ptr, self.values, np.asarray(rows, np.int64))


@njit(cache=True)
def _take(ptr, values, rows):
    lengths = ptr[rows + 1] - ptr[rows]
    offsets = np.cumsum(lengths) - lengths
    out = np.empty(lengths.sum(), np.int64)
    for r in range(len(rows)):
        out[offsets[r]:offsets[r] + lengths[r]] = values[ptr[rows[r]]:ptr[rows[r] + 1]]
    return out, offsets


def bags(parts: list[tuple[np.ndarray, np.ndarray]], n_rows: int, mode: str = "mean") -> dict:
    """One bag set from several (values, offsets) sets, ready for :class:`BagPool` on a table of
    ``n_rows``: values, offsets (tensors) and the (n_rows, n_bags) transposed pooling matrix its
    backward uses (a CSR tensor: entry (r, b) = 1/len(b) per occurrence of row r in bag b for
    "mean", 1 for "sum"; duplicates summed, columns sorted: scipy's canonical CSR)."""
    values, offsets, shift = [], [], 0
    for v, o in parts:
        values.append(v)
        offsets.append(o + shift)
        shift += len(v)
    values, offsets = np.concatenate(values).astype(np.int64), np.concatenate(offsets).astype(np.int64)
    indptr, columns, weights = _pool_transpose(values, offsets, n_rows, mode == "mean")
    pool_t = torch.sparse_csr_tensor(torch.from_numpy(indptr), torch.from_numpy(columns), torch.from_numpy(weights),
                                     size=(n_rows, len(offsets)))
    return dict(values=torch.from_numpy(values), offsets=torch.from_numpy(offsets), pool_t=pool_t, mode=mode)


@njit(cache=True)
def _pool_transpose(values, offsets, n_rows, mean):
    """CSR (indptr, columns, float32 weights) of the pooling matrix's transpose; one pass per entry.
    Bags are visited in order, so a row's columns come out sorted and a row repeated within a bag
    lands next to its earlier entry, where its weight is added (float32, as scipy sums duplicates)."""
    n, n_bags = len(values), len(offsets)
    start = np.zeros(n_rows + 1, np.int64)
    for e in range(n):
        start[values[e] + 1] += 1
    start = np.cumsum(start)
    end = start[:-1].copy()
    columns, weights = np.empty(n, np.int64), np.empty(n, np.float32)
    for b in range(n_bags):
        stop = offsets[b + 1] if b + 1 < n_bags else n
        w = np.float32(1.0 / max(stop - offsets[b], 1)) if mean else np.float32(1.0)
        for e in range(offsets[b], stop):
            r, p = values[e], end[values[e]]
            if p > start[r] and columns[p - 1] == b:
                weights[p - 1] += w
            else:
                columns[p], weights[p], end[r] = b, w, p + 1
    indptr = np.zeros(n_rows + 1, np.int64)
    for r in range(n_rows):
        indptr[r + 1] = indptr[r] + end[r] - start[r]
    out_columns, out_weights = np.empty(indptr[-1], np.int64), np.empty(indptr[-1], np.float32)
    for r in range(n_rows):
        out_columns[indptr[r]:indptr[r + 1]] = columns[start[r]:end[r]]
        out_weights[indptr[r]:indptr[r + 1]] = weights[start[r]:end[r]]
    return indptr, out_columns, out_weights


class BagPool(torch.autograd.Function):
    """``embedding_bag`` (mean or sum) whose weight gradient is one sparse product, P^T @ grad.

    Numerically the same as ``F.embedding_bag``; its dense backward (a sort of every index) was the
    largest single cost of a training step on the CPU, the sparse product is several times faster.
    """

    @staticmethod
    def forward(ctx, weight, values, offsets, pool_t, mode):
        ctx.pool_t, ctx.dtype = pool_t, weight.dtype
        return F.embedding_bag(values, weight, offsets, mode=mode)

    @staticmethod
    def backward(ctx, grad):
        return torch.sparse.mm(ctx.pool_t, grad.float()).to(ctx.dtype), None, None, None, None


def pool(weight: torch.Tensor, bag: dict) -> torch.Tensor:
    """(n_bags, d) mean (or sum) of ``weight`` rows per bag (see :func:`bags`)."""
    return BagPool.apply(weight, bag["values"], bag["offsets"], bag["pool_t"], bag["mode"])


class SideInputs:
    """Per-sample inputs of one tower: S (:class:`Ragged`), the semantic ID (N+1, L; J on the cold
    row) and Q^all (:class:`Ragged`); row -1 means the cold row."""

    def __init__(self, seq: np.ndarray, aug: SideAugmentation | None, codebook_size: int):
        self.cold = len(seq)
        self.seq = Ragged(seq)
        self.codes = None if aug is None else np.concatenate(
            [aug.codes.astype(np.int64), np.full((1, aug.codes.shape[1]), codebook_size, np.int64)])
        self.neighbours = None if aug is None else Ragged(aug.neighbours)

    def rows(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.int64)
        return np.where(rows < 0, self.cold, rows)


class Tower(nn.Module):
    """One side of Eq. 20-21: [own ID, semantic-ID embeddings, pooled sequence, pooled neighbours] -> MLP."""

    def __init__(self, dim: int, hidden: int, n_layers: int, codebook_size: int, feature_aug: bool, linkage_aug: bool):
        super().__init__()
        self.semantic = nn.ModuleList(nn.Embedding(codebook_size + 1, dim) for _ in range(n_layers)) if feature_aug else None
        self.linkage_aug = linkage_aug
        self.n_dense = (3 if linkage_aug else 2) * dim  # [own, pooled sequence, (pooled neighbours)]
        self.first = nn.Linear(self.n_dense + (n_layers * dim if feature_aug else 0), hidden)
        self.rest = nn.Sequential(nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, own: torch.Tensor, seq: torch.Tensor, neighbours: torch.Tensor | None,
                codes: torch.Tensor | None) -> torch.Tensor:
        """own, seq, neighbours: (B, dim) embeddings (the last two pooled); codes: the bags of the B
        semantic IDs' rows in the (L (J+1)) stacked codebooks (:func:`bags`) -> (B, dim)."""
        weight = self.first.weight
        h = F.linear(torch.cat([own, seq, neighbours] if self.linkage_aug else [own, seq], 1),
                     weight[:, :self.n_dense], self.first.bias)
        if self.semantic is not None:  # A_s e^s with e^s = [F_1(c_1), .., F_L(c_L)] (Eq. 14)
            books = torch.stack([emb.weight for emb in self.semantic])  # (L, J+1, dim)
            n_layers, size, dim = books.shape
            proj = torch.einsum("ljd,hld->ljh", books, weight[:, self.n_dense:].reshape(-1, n_layers, dim))
            h = h + pool(proj.reshape(n_layers * size, -1), codes)
        return self.rest(h)


class DQRecNet(nn.Module):
    """ID tables (row 0 unused) and the two towers. ``forward(inputs)`` takes :meth:`DQRec._inputs`."""

    def __init__(self, n_users: int, n_items: int, dim, hidden, n_layers, codebook_size, flags: dict):
        super().__init__()
        self.user_emb = nn.Embedding(n_users + 1, dim, padding_idx=0)
        self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=0)
        for emb in (self.user_emb, self.item_emb):
            nn.init.normal_(emb.weight, std=0.1)
            emb.weight.data[0] = 0
        self.user_tower = Tower(dim, hidden, n_layers, codebook_size, flags["user_feature_aug"], flags["user_linkage_aug"])
        self.item_tower = Tower(dim, hidden, n_layers, codebook_size, flags["item_feature_aug"], flags["item_linkage_aug"])

    def forward(self, inputs: dict) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
        """z_u (or None) and one z_i per item set; every pooled part of a table in one embedding_bag."""
        n_user, sizes = inputs["n_user"], inputs["item_sizes"]
        pooled_items, pooled_users = pool(self.item_emb.weight, inputs["item_bag"]), pool(self.user_emb.weight,
                                                                                         inputs["user_bag"])
        z_u = None
        if n_user:  # item-table bags: [S_u (n_user), Q_i of each item set]; user-table bags: [Q_u (n_user), S_i ...]
            has_q = self.user_tower.linkage_aug
            z_u = self.user_tower(self.user_emb(inputs["users"]), pooled_items[:n_user],
                                  pooled_users[:n_user] if has_q else None, inputs.get("user_codes"))
        item_q = pooled_items[n_user:] if self.item_tower.linkage_aug else None
        item_seq = pooled_users[n_user if self.user_tower.linkage_aug else 0:]
        z_i = self.item_tower(self.item_emb(inputs["items"]), item_seq, item_q, inputs.get("item_codes"))
        z_i = list(torch.split(z_i, sizes))  # one tower call for every item set, then one tensor per set
        return z_u, z_i


class DQRec(Recommender):
    """The two-stage recommender: representation -> DQ-VAE semantic IDs -> augmented dual tower.

    Defaults are the paper's (Section 6.1.4) where it gives them: d=64, Adam lr 1e-3, batch 1024,
    L=4, J=128, beta=0.25, K=30, K'=2. ``epochs`` is only a cap: validation (in-batch NDCG@10 on
    ``split.valid``) stops training after ``patience`` epochs without improvement.
    ``fit(split)`` then ``score(batch, items)``; ``trainer_.summary()`` says how training ended.
    """

    def __init__(self, dim: int = 64, hidden: int = 256, lr: float = 1e-3, batch_size: int = 1024,
                 epochs: int = 200, patience: int = 5, seed: int = 0, n_layers: int = 4, codebook_size: int = 128,
                 beta: float = 0.25, k: int = 30, k_latent: int = 2, representation_epochs: int = 3,
                 loss: str = "sigmoid_bpr", user_feature_aug: bool = True, item_feature_aug: bool = True,
                 user_linkage_aug: bool = True, item_linkage_aug: bool = True, latent_exploration: bool = True,
                 precision: str = "fp32", device: str = "auto", progress: bool = True):
        check_training_params(dim=dim, hidden=hidden, lr=lr, batch_size=batch_size, epochs=epochs, patience=patience,
                              n_layers=n_layers, codebook_size=codebook_size, k=k, representation_epochs=representation_epochs)
        pairwise_loss(loss)
        check_precision(precision)
        if k_latent < 0 or int(k_latent) != k_latent:
            raise ValueError(f"k_latent (K') must be a non-negative integer, got {k_latent!r}")
        if not beta >= 0:
            raise ValueError(f"beta must be >= 0, got {beta!r}")
        if dim % n_layers:
            raise ValueError(f"n_layers (L={n_layers}) must divide the embedding size dim={dim}")
        if codebook_size < 2:
            raise ValueError(f"codebook_size (J) must be at least 2, got {codebook_size}")
        self.dim, self.hidden, self.lr, self.batch_size, self.epochs = dim, hidden, lr, batch_size, epochs
        self.patience, self.seed, self.n_layers, self.codebook_size = patience, seed, n_layers, codebook_size
        self.beta, self.k, self.k_latent, self.representation_epochs = beta, k, k_latent, representation_epochs
        self.loss, self.user_feature_aug, self.item_feature_aug = loss, user_feature_aug, item_feature_aug
        self.user_linkage_aug, self.item_linkage_aug = user_linkage_aug, item_linkage_aug
        self.latent_exploration, self.precision = latent_exploration, precision
        self.device, self.progress = device, progress

    @property
    def uses_semantic_ids(self) -> bool:
        return self.user_feature_aug or self.item_feature_aug or self.user_linkage_aug or self.item_linkage_aug

    def _check_data(self, split: Split) -> None:
        """Errors in the user's terms before any training: K and J against the data."""
        if not self.uses_semantic_ids:
            return
        for side in ("user", "item"):
            stored = split.train[side].nunique()
            if self.k >= stored:
                raise ValueError(f"k (K={self.k}) must be below the number of {side}s with training data ({stored})")
            if self.codebook_size > stored:
                raise ValueError(f"codebook_size (J={self.codebook_size}) exceeds the number of {side}s with "
                                 f"training data ({stored}): each codeword needs at least one {side}")

    # ------------------------------------------------------------------ stage 1: augmentation
    def _augment(self, split: Split) -> dict:
        if not self.uses_semantic_ids:
            return {"user": None, "item": None}
        self.representation_ = RepresentationModel(dim=self.dim, epochs=self.representation_epochs, seed=self.seed,
                                                   progress=self.progress).fit(split)
        out = {}
        for side in ("user", "item"):
            emb = self.representation_.sample_embeddings(split, side)
            out[side] = augment_side(split, emb, side, self.n_layers, self.codebook_size, self.beta, self.k,
                                     self.k_latent if self.latent_exploration else 0, self.seed)
        return out

    # ------------------------------------------------------------------ stage 2: the dual tower
    def fit(self, split: Split, augmentation: dict | None = None, validate=None) -> "DQRec":
        """Train on ``split.train``, early stopping on ``validate(model) -> float`` (higher is better).

        ``augmentation``: precomputed {"user": SideAugmentation, "item": ...} to share across runs.
        ``validate`` defaults to :func:`dqrec.evaluate.validation_criterion` (in-batch NDCG@10 on valid).
        """
        from .evaluate import validation_criterion

        self._check_data(split)
        torch.manual_seed(self.seed)
        self.device_ = resolve_device(self.device)
        self.split_ = split
        self.augmentation_ = augmentation if augmentation is not None else self._augment(split)
        self.users_ = SideInputs(split.user_seq, self.augmentation_["user"], self.codebook_size)
        self.items_ = SideInputs(split.item_seq, self.augmentation_["item"], self.codebook_size)
        self.sample_users_ = split.samples.user.to_numpy(np.int64)
        flags = {k: getattr(self, k) for k in ("user_feature_aug", "item_feature_aug", "user_linkage_aug",
                                               "item_linkage_aug")}
        self.net_ = DQRecNet(split.n_users, split.n_items, self.dim, self.hidden, self.n_layers, self.codebook_size,
                             flags).to(self.device_)
        validate = validate or validation_criterion(split, self.seed)
        train = split.train
        rows, users = train.index.to_numpy(), train.user.to_numpy(np.int64)
        items, times = train.item.to_numpy(np.int64), train.timestamp.to_numpy()
        sampler, lookup, loss = NegativeSampler(users, items, split.n_items), ItemStateLookup(train), \
            pairwise_loss(self.loss)

        def batch(idx, rng):  # the user, the positive in its own state, a negative in its state before t
            neg = sampler.sample(users[idx], rng)
            return self._inputs(rows[idx], [(items[idx], rows[idx]), (neg, lookup.latest_before(neg, times[idx]))])

        def batch_loss(inputs):
            z_u, (z_pos, z_neg) = self.net_(inputs)
            return loss((z_u * z_pos).sum(1), (z_u * z_neg).sum(1))  # Eq. 22-23

        self.trainer_ = Trainer(self.epochs, self.patience, self.lr, self.batch_size, seed=self.seed,
                                device=str(self.device_), progress=self.progress, desc=type(self).__name__,
                                precision=self.precision)
        self.trainer_.fit(self.net_, len(rows), batch, batch_loss, lambda: validate(self))
        self.history_ = self.trainer_.history_
        return self

    def _inputs(self, user_rows: np.ndarray | None, item_sets: list[tuple[np.ndarray, np.ndarray]]) -> dict:
        """Index tensors for :meth:`DQRecNet.forward`: users in the state of sample rows ``user_rows``,
        and per item set (items, sample rows whose state they take; -1: none)."""
        u, it = self.users_, self.items_
        user_rows = np.zeros(0, np.int64) if user_rows is None else u.rows(user_rows)
        item_rows = it.rows(np.concatenate([r for _, r in item_sets]))
        item_bag = [u.seq.take(user_rows)] + ([it.neighbours.take(item_rows)] if self.item_linkage_aug else [])
        user_bag = ([u.neighbours.take(user_rows)] if self.user_linkage_aug and len(user_rows) else []) + \
            [it.seq.take(item_rows)]
        out = dict(n_user=len(user_rows), item_sizes=[len(i) for i, _ in item_sets],
                   users=self.sample_users_[user_rows.clip(max=len(self.sample_users_) - 1)] + 1,
                   items=np.concatenate([i for i, _ in item_sets]).astype(np.int64) + 1,
                   item_bag=bags([(v + 1, o) for v, o in item_bag], self.split_.n_items + 1),
                   user_bag=bags([(v + 1, o) for v, o in user_bag], self.split_.n_users + 1))
        size = self.codebook_size + 1
        for name, on, codes in (("user_codes", self.user_feature_aug and len(user_rows), lambda: u.codes[user_rows]),
                                ("item_codes", self.item_feature_aug, lambda: it.codes[item_rows])):
            if on:  # row c of layer l's codebook is row l (J+1) + c of the stacked codebooks
                c = codes() + np.arange(self.n_layers) * size
                out[name] = bags([(c.ravel(), np.arange(0, c.size, self.n_layers))], self.n_layers * size, "sum")
        return {k: self._to_device(v) for k, v in out.items()}

    def _to_device(self, value):
        """Arrays, tensors and bag dicts of :meth:`_inputs` as tensors on the model's device."""
        if isinstance(value, dict):
            return {k: self._to_device(v) for k, v in value.items()}
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value)
        return value.to(self.device_) if isinstance(value, torch.Tensor) else value

    # ------------------------------------------------------------------ scoring
    def scorer(self, part: str) -> "PartScorer":
        """A scorer for samples of ``part``: candidate items in their state before that part starts."""
        return PartScorer(self, part)

    def score(self, batch: pd.DataFrame, items: np.ndarray) -> np.ndarray:
        """Scorer interface for the test split (see :mod:`dqrec.evaluate`)."""
        return self.scorer("test").score(batch, items)


class PartScorer:
    """Scores samples of one part: users in their own state, items in their state before the part."""

    def __init__(self, model: DQRec, part: str, chunk: int = 8192):
        split = model.split_
        if split.kind == "temporal":
            before = split.part(part).timestamp.min()
            self.item_rows_ = ItemStateLookup(split.samples).latest_before(np.arange(split.n_items),
                                                                           np.full(split.n_items, before))
        else:  # a random split has no 'before': use each item's last training state
            self.item_rows_ = split.last_train_sample("item")
        items = np.arange(split.n_items)
        with torch.no_grad():
            self.item_z = torch.cat([model.net_(model._inputs(None, [(items[s:s + chunk], self.item_rows_[s:s + chunk])]))[1][0]
                                     for s in range(0, split.n_items, chunk)])
        self.model = model

    @torch.no_grad()
    def score(self, batch: pd.DataFrame, items: np.ndarray) -> np.ndarray:
        m = self.model
        z_u, _ = m.net_(m._inputs(batch.index.to_numpy(), [(np.zeros(0, np.int64), np.zeros(0, np.int64))]))
        return (z_u @ self.item_z[torch.from_numpy(np.asarray(items, np.int64)).to(m.device_)].T).cpu().numpy()


class ItemStateLookup:
    """Row of each item's latest sample strictly before a time, among the given samples."""

    SHIFT = np.int64(1) << 33  # timestamps are Unix seconds < 2**33 (year 2242)

    def __init__(self, samples: pd.DataFrame):
        self.keys = samples.item.to_numpy(np.int64) * self.SHIFT + samples.timestamp.to_numpy(np.int64)
        order = np.argsort(self.keys, kind="stable")
        self.keys, self.rows = self.keys[order], samples.index.to_numpy()[order]

    def latest_before(self, items: np.ndarray, times: np.ndarray) -> np.ndarray:
        """(n,) sample rows, -1 where the item has no sample strictly before that time."""
        items = np.asarray(items, np.int64)
        pos = np.searchsorted(self.keys, items * self.SHIFT + np.asarray(times, np.int64), side="left") - 1
        ok = (pos >= 0) & (self.keys[pos.clip(min=0)] // self.SHIFT == items)
        return np.where(ok, self.rows[pos.clip(min=0)], -1)


class DualTower(DQRec):
    """The base model: IDs and sequence pooling, no semantic IDs, no neighbours."""

    def __init__(self, dim: int = 64, hidden: int = 256, lr: float = 1e-3, batch_size: int = 1024,
                 epochs: int = 200, patience: int = 5, seed: int = 0, loss: str = "sigmoid_bpr",
                 precision: str = "fp32", device: str = "auto", progress: bool = True):
        super().__init__(dim=dim, hidden=hidden, lr=lr, batch_size=batch_size, epochs=epochs, patience=patience,
                         seed=seed, loss=loss, precision=precision, user_feature_aug=False, item_feature_aug=False,
                         user_linkage_aug=False,
                         item_linkage_aug=False, latent_exploration=False, device=device, progress=progress)

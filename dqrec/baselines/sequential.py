"""What every sequential baseline shares: chronological histories, a transformer encoder, fit and score.

A sequential model scores a sample (u, i, t) from u's own positives strictly before t, oldest to newest.

* :func:`history` ``(split, max_len) -> (N, max_len) int64``: for every sample row r (train, valid and
  test alike), the items of r's user with a timestamp strictly before r's, from all parts (exactly the
  S_u of :func:`dqrec.data.recent_sequences`, so items tied in time with the sample are excluded),
  oldest -> newest, *left*-padded with the padding id ``split.n_items``; the last column is the most
  recent item. :func:`history_rows` is the same with the sample rows of those items (-1 for padding),
  for models that need the part or time of a history entry. Both are cached per split and ``max_len``.
* :class:`SequenceEncoder` ``(n_items, dim, max_len, n_layers, n_heads, dropout, causal, norm_first)``:
  item embeddings with ``n_items + 2`` rows (``n_items`` is the padding id, ``n_items + 1`` the mask id
  :data:`mask_id`), learned positions (position ``max_len - 1`` is the most recent item), then
  ``n_layers`` transformer blocks (multi-head self-attention and a two-layer feed-forward network, each
  with dropout and a residual connection; post-LN, ``LayerNorm(x + f(x))``, as BERT4Rec and the RecBole
  codes of CL4SRec/DuoRec, or pre-LN, ``x + f(LayerNorm(x))`` plus a final LayerNorm, as SASRec's
  paper writes its blocks). ``forward(seq (B, L) long) -> (B, L, dim)``. A position never attends to
  padding; with ``causal=True`` it never attends to a later position. ``item_embedding`` (an
  ``nn.Embedding``) is shared with the output layer (scores are dot products with its rows).
* :func:`training_windows` ``(split, max_len) -> (rows, context)``: every user's timeline cut into
  windows of ``max_len`` consecutive sample rows, with, at each train-part row, the window position of
  the latest row strictly before it (SASRec's training sequences; see ``train_on`` below).
* :class:`SequentialRecommender` (a :class:`dqrec.registry.Recommender`): ``fit(split, validate=None)``
  trains through :class:`dqrec.train.Trainer` with early stopping on validation. Each *train-part*
  sample row r (target ``split.samples.item[r]``) is one training target per epoch, presented in one of
  two ways (``train_on``):

  - ``"prefixes"``: one sequence per target, ``history(split, max_len)[r]``, scored at its last position,
    the prefix cut exactly as scoring cuts it (RecBole's "prefix augmentation"; the codes of BERT4Rec-
    and CL4SRec-style RecBole models, DuoRec and VQRec feed their models this way). Each target costs a
    whole ``max_len`` pass through the encoder.
  - ``"sequences"``: one pass per window of :func:`training_windows`; a target's representation is the
    causal encoder's output at the latest window position strictly before it in time, so it sees the
    window's items before it (at most ``max_len``, fewer near a window's start) and nothing later or
    tied with it (SASRec's paper, Section III-E: the loss at every position of the user's sequence).
    About ``max_len`` times cheaper per epoch; a batch still holds about ``batch_size`` targets.

  ``score(batch, items)`` is the same for both: the representation :meth:`~SequentialRecommender.encode`
  of each sample's history (``batch.index`` are sample rows) dotted with the item embeddings of ``items``.

  Subclass hooks (override what the model changes; all run inside the one Trainer):

  - ``causal`` / ``norm_first`` / ``activation``: class attributes choosing the encoder;
  - ``build_net(split) -> nn.Module`` (default: one :class:`SequenceEncoder`; must expose
    ``item_embedding`` and ``forward(seq)``); ``self.net_`` after fit;
  - ``encode(seq) -> (B, dim)``: the representation scored against items (default: last position);
  - ``item_scores(rep, items=None) -> (B, M)``: scores of items (default: dot products with the item
    embeddings; BERT4Rec adds its output bias);
  - ``train_batch(rows, rng) -> dict`` of tensors (default ``seq``, ``target``, ``rows``), built on the
    device, ``rows`` the sample rows (numpy) of the batch's targets; with ``train_on="sequences"`` the
    trainer hands windows to :meth:`~SequentialRecommender.window_batch` instead, which adds ``at``;
  - ``train_loss(batch) -> scalar tensor`` (default: the next-item softmax cross-entropy over all items,
    :meth:`next_item_loss`, which CL4SRec, DuoRec and ICLRec all train with, of the targets'
    representations :meth:`~SequentialRecommender.represent`);
  - ``train_schemes``: the ``train_on`` values a model supports (a model whose training needs one
    history per target, DuoRec's same-target partner or ICLRec's intents, supports ``"prefixes"`` only;
    models that read a whole window, BERT4Rec and CL4SRec, cut it first, :mod:`dqrec.baselines.windows`);
  - ``start_epoch(epoch)``: called before the first batch of each epoch (ICLRec's E-step);
  - ``training_state``: the names of the attributes training changes outside the net (a model's own
    random generators, MAERec's masking counters), which a checkpoint must hold to resume bit for bit
    (:func:`dqrec.train.resumable`; ``tests/test_resume.py`` fails for a model that forgets one);
  - ``setup(split)``: fitted state built before training (call ``super().setup(split)``); a benchmark
    can call it and time ``train_batch`` / ``train_loss`` steps without training.

  Constructor parameters (every subclass lists them in its own ``__init__`` for ``get_params``):
  ``dim=64, lr=1e-3, batch_size=1024`` (the paper's setting for every baseline), ``max_len=50``,
  ``n_blocks, n_heads, dropout`` (per model, from its paper), ``epochs=200, patience=5, weight_decay=0,
  seed=0, device="auto", progress=True``, ``train_on="prefixes"`` (SASRec, BERT4Rec, CL4SRec, MAERec and
  VQRec: ``"sequences"``). ``n_blocks`` is not called ``n_layers``: the profiles' ``n_layers`` is DQRec's
  codebook depth (:func:`dqrec.experiment.model_kwargs` gives it to DQRec models only, and a second name
  keeps the two apart for a reader).

``max_len=50``: SASRec's paper uses 200 on ML-1M and 50 on its sparser data sets. We keep 50 for every
data set here: ML-100K's and ml-latest-small's users have a median of well under 50 positives, the
book's runs are on a 2-core CPU, and attention costs grow with L^2; ``max_len`` is a parameter.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from dqrec.data import PAD, recent_sequences
from dqrec.registry import Recommender
from dqrec.train import Trainer, check_training_params, resolve_device


# --------------------------------------------------------------------------------------------
# Histories
# --------------------------------------------------------------------------------------------
def history_rows(split, max_len: int) -> np.ndarray:
    """(N, max_len) int64: sample rows of each sample's user strictly before its time, oldest -> newest,
    left-padded with -1. Cached on the split."""
    cache = split.__dict__.setdefault("_sequential_history", {})
    if ("rows", max_len) not in cache:
        s = split.samples
        rows = recent_sequences(s.user.to_numpy(), np.arange(len(s)), s.timestamp.to_numpy(), max_len)
        cache[("rows", max_len)] = np.ascontiguousarray(rows[:, ::-1], dtype=np.int64)  # latest last
    return cache[("rows", max_len)]


def history(split, max_len: int) -> np.ndarray:
    """(N, max_len) int64: items of each sample's user strictly before its time (all parts, ties in
    time excluded), oldest -> newest, left-padded with the padding id ``split.n_items``."""
    cache = split.__dict__.setdefault("_sequential_history", {})
    if ("items", max_len) not in cache:
        rows = history_rows(split, max_len)
        items = split.samples.item.to_numpy(np.int64)
        cache[("items", max_len)] = np.where(rows == PAD, split.n_items, items[np.clip(rows, 0, None)])
    return cache[("items", max_len)]


def training_windows(split, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Every user's timeline cut into training windows (SASRec's training sequences).

    A user's sample rows (all parts, oldest -> newest, rows tied in time in row order, as :func:`history`
    orders them) are cut from the newest backwards into windows of ``max_len`` rows, the oldest one
    left-padded. A train-part row q is a *target* in a window holding both q and p(q), the latest row
    strictly before q in time; its representation is read at p(q), so every item it can see through a
    causal encoder is strictly earlier (ties excluded, as in :func:`history`). Each older window ends
    where the tie group at the start of the newer one ends (the windows overlap by at least one row), so
    every train row with an earlier row is a target in exactly one window, unless its tie group holds
    ``max_len`` rows or more (then it is in none). Windows without a target are dropped.

    Returns ``rows`` (W, max_len) int64 sample rows (-1 padding) and ``context`` (W, max_len) int64: at a
    target's position the window position of p(q), -1 elsewhere. Cached on the split.
    """
    if max_len < 2:
        raise ValueError(f"training windows need max_len >= 2 (a target and one earlier item), got {max_len}")
    cache = split.__dict__.setdefault("_sequential_history", {})
    if ("windows", max_len) not in cache:
        s = split.samples
        n = len(s)
        order = np.lexsort((np.arange(n), s.timestamp.to_numpy(), s.user.to_numpy()))
        user, time = s.user.to_numpy()[order], s.timestamp.to_numpy()[order]
        new_user = np.r_[True, user[1:] != user[:-1]]
        new_time = new_user | np.r_[True, time[1:] != time[:-1]]
        group_start = np.maximum.accumulate(np.where(new_time, np.arange(n), 0))  # sorted positions
        group_end = np.r_[np.flatnonzero(new_time)[1:], n][np.cumsum(new_time) - 1]
        before = group_start - 1  # p(q); below the user's first row: none
        is_train = (s.part.to_numpy() == "train")[order]
        rows, context = [], []
        for a, b in zip(np.flatnonzero(new_user), np.r_[np.flatnonzero(new_user)[1:], n]):
            hi = b
            while hi > a:
                lo = max(a, hi - max_len)
                q = np.arange(lo, hi)
                target = is_train[q] & (before[q] >= lo)
                if target.any():
                    pad = max_len - len(q)
                    rows.append(np.r_[np.full(pad, -1), order[q]])
                    context.append(np.r_[np.full(pad, -1), np.where(target, before[q] - lo + pad, -1)])
                if lo == a:
                    break
                # the next window ends with lo's tie group (whose rows are no target here), or before it
                # when that group fills this whole window
                hi = group_end[lo] if group_end[lo] < hi else group_start[lo]
        shape = (len(rows), max_len)
        cache[("windows", max_len)] = (np.array(rows, np.int64).reshape(shape), np.array(context, np.int64).reshape(shape))
    return cache[("windows", max_len)]


def mask_id(n_items: int) -> int:
    """The id of the [mask] token (BERT4Rec's cloze, CL4SRec's item mask): ``n_items + 1``."""
    return n_items + 1


# --------------------------------------------------------------------------------------------
# Encoder
# --------------------------------------------------------------------------------------------
class Block(nn.Module):
    """One transformer block: multi-head self-attention, then a position-wise feed-forward network."""

    def __init__(self, dim: int, n_heads: int, dropout: float, norm_first: bool, activation: str):
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"dim {dim} is not divisible by n_heads {n_heads}")
        self.n_heads, self.dropout, self.norm_first = n_heads, dropout, norm_first
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ff1, self.ff2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.act = nn.GELU() if activation == "gelu" else nn.ReLU()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def attention(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        b, length, dim = x.shape
        q, k, v = (t.view(b, length, self.n_heads, -1).transpose(1, 2) for t in self.qkv(x).split(dim, -1))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed[:, None],
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.drop(self.proj(out.transpose(1, 2).reshape(b, length, dim)))

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.ff2(self.drop(self.act(self.ff1(x)))))

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        if self.norm_first:
            x = x + self.attention(self.ln1(x), allowed)
            return x + self.feed_forward(self.ln2(x))
        x = self.ln1(x + self.attention(x, allowed))
        return self.ln2(x + self.feed_forward(x))


class SequenceEncoder(nn.Module):
    """Item + position embeddings and ``n_layers`` transformer blocks: (B, L) item ids -> (B, L, dim).

    Ids: 0..n_items-1 items, ``n_items`` padding, ``n_items + 1`` mask. Weights start as in BERT (normal,
    sd 0.02; LayerNorm 1/0), as RecBole initialises its transformer models.
    """

    def __init__(self, n_items: int, dim: int = 64, max_len: int = 50, n_layers: int = 2, n_heads: int = 1,
                 dropout: float = 0.2, causal: bool = True, norm_first: bool = False, activation: str = "gelu"):
        super().__init__()
        self.n_items, self.max_len, self.causal, self.norm_first = n_items, max_len, causal, norm_first
        self.item_embedding = nn.Embedding(n_items + 2, dim, padding_idx=n_items)
        self.position_embedding = nn.Embedding(max_len, dim)
        self.input_norm = nn.LayerNorm(dim)  # post-LN: on the input; pre-LN: after the last block
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, n_heads, dropout, norm_first, activation) for _ in range(n_layers))
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            nn.init.zeros_(module.weight[module.padding_idx])

    def attention_mask(self, seq: torch.Tensor) -> torch.Tensor:
        """(B, L, L) bool, True where query position q may attend to key position k: k is an item (not
        padding) and, if causal, k <= q. Every position may attend to itself, so no row is empty."""
        length = seq.shape[1]
        allowed = (seq != self.n_items)[:, None, :].expand(-1, length, -1)
        eye = torch.eye(length, dtype=torch.bool, device=seq.device)
        if self.causal:
            allowed = allowed & torch.ones(length, length, dtype=torch.bool, device=seq.device).tril()
        return allowed | eye

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        length = seq.shape[1]
        if length > self.max_len:
            raise ValueError(f"sequence length {length} exceeds max_len {self.max_len}")
        positions = torch.arange(self.max_len - length, self.max_len, device=seq.device)
        x = self.drop(self.item_embedding(seq) + self.position_embedding(positions))
        if not self.norm_first:
            x = self.input_norm(x)
        allowed = self.attention_mask(seq)
        for block in self.blocks:
            x = block(x, allowed)
        return self.input_norm(x) if self.norm_first else x


# --------------------------------------------------------------------------------------------
# Shared fit / score
# --------------------------------------------------------------------------------------------
class SequentialRecommender(Recommender):
    """Base of the sequential baselines (see the module docstring for the hooks a subclass overrides)."""

    causal = True
    norm_first = False
    activation = "gelu"
    train_schemes = ("prefixes",)
    training_state = ()  # attributes training changes outside the net (saved in checkpoints, see dqrec.train)

    def __init__(self, dim: int = 64, max_len: int = 50, n_blocks: int = 2, n_heads: int = 1, dropout: float = 0.2,
                 epochs: int = 200, lr: float = 1e-3, batch_size: int = 1024, weight_decay: float = 0.0,
                 patience: int = 5, seed: int = 0, device: str = "auto", progress: bool = True,
                 train_on: str = "prefixes"):
        check_training_params(dim=dim, max_len=max_len, n_blocks=n_blocks, n_heads=n_heads, epochs=epochs, lr=lr,
                              batch_size=batch_size, patience=patience)
        if not 0.0 <= dropout < 1.0 or weight_decay < 0:
            raise ValueError(f"need 0 <= dropout < 1 and weight_decay >= 0, got {dropout}, {weight_decay}")
        if dim % n_heads:
            raise ValueError(f"dim {dim} is not divisible by n_heads {n_heads}")
        if train_on not in self.train_schemes:
            raise ValueError(f"{type(self).__name__} trains on {' or '.join(map(repr, self.train_schemes))}, "
                             f"not train_on={train_on!r}")
        if train_on == "sequences" and max_len < 2:
            raise ValueError(f"train_on='sequences' needs max_len >= 2, got {max_len}")
        self.train_on = train_on
        self.dim, self.max_len, self.n_blocks, self.n_heads, self.dropout = dim, max_len, n_blocks, n_heads, dropout
        self.epochs, self.lr, self.batch_size, self.weight_decay = epochs, lr, batch_size, weight_decay
        self.patience, self.seed, self.device, self.progress = patience, seed, device, progress

    # ------------------------------------------------------------------ hooks
    def build_net(self, split) -> nn.Module:
        return SequenceEncoder(split.n_items, self.dim, self.max_len, self.n_blocks, self.n_heads, self.dropout,
                               causal=self.causal, norm_first=self.norm_first, activation=self.activation)

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """(B, L) histories -> (B, dim) representations: the output at the last (most recent) position."""
        return self.net_(seq)[:, -1]

    def train_batch(self, rows: np.ndarray, rng: np.random.Generator) -> dict:
        dev = self.device_
        return dict(rows=rows, seq=torch.from_numpy(self.history_[rows]).to(dev),
                    target=torch.from_numpy(self.items_[rows]).to(dev))

    def window_batch(self, windows: np.ndarray, rng: np.random.Generator) -> dict:
        """The batch of ``train_on="sequences"``: windows (B, max_len) as ``seq``, and per target (M of
        them) its sample row ``rows``, its item ``target`` and ``at`` = (window, position) of p(q)."""
        dev = self.device_
        rows, context = self.window_rows_[windows], self.window_context_[windows]
        seq = np.where(rows >= 0, self.items_[np.clip(rows, 0, None)], self.n_items_)
        w, q = np.nonzero(context >= 0)
        targets = rows[w, q]
        return dict(rows=targets, seq=torch.from_numpy(seq).to(dev), target=torch.from_numpy(self.items_[targets]).to(dev),
                    at=(torch.from_numpy(w).to(dev), torch.from_numpy(context[w, q]).to(dev)))

    def represent(self, batch: dict) -> torch.Tensor:
        """(M, dim): the representation of each target of a training batch (the last position of its
        prefix, or its p(q) position in its window)."""
        if "at" in batch:
            return self.net_(batch["seq"])[batch["at"]]
        return self.encode(batch["seq"])

    def train_loss(self, batch: dict) -> torch.Tensor:
        return self.next_item_loss(self.represent(batch), batch["target"])

    def start_epoch(self, epoch: int) -> None:
        """Called before the first batch of every epoch (1-based); nothing by default."""

    # ------------------------------------------------------------------ shared pieces
    def item_scores(self, rep: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """(B, dim) representations -> (B, len(items)) dot products with the item embeddings of ``items``
        (all items when None; padding and mask are never scored)."""
        emb = self.net_.item_embedding.weight
        return rep @ (emb[:self.n_items_] if items is None else emb[items]).T

    def next_item_loss(self, rep: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Softmax cross-entropy of the next item over all items."""
        return F.cross_entropy(self.item_scores(rep), target)

    # ------------------------------------------------------------------ fit / score
    def setup(self, split) -> None:
        """Everything fit needs before the first epoch: histories, training rows, the untrained net."""
        self.n_items_ = split.n_items
        self.history_ = history(split, self.max_len)
        self.items_ = split.samples.item.to_numpy(np.int64)
        self.train_rows_ = np.flatnonzero((split.samples.part == "train").to_numpy())
        if self.train_on == "sequences":
            self.window_rows_, self.window_context_ = training_windows(split, self.max_len)
        self.device_ = dev = resolve_device(self.device)
        torch.manual_seed(self.seed)  # weight init and dropout masks
        self.net_ = self.build_net(split).to(dev)

    def fit(self, split, validate=None):
        from dqrec.evaluate import validation_criterion

        self.setup(split)
        dev = self.device_
        validate = validate or validation_criterion(split, self.seed)
        if self.train_on == "sequences":  # windows per batch so that a batch holds about batch_size targets
            n_samples = len(self.window_rows_)
            per_window = (self.window_context_ >= 0).sum() / max(n_samples, 1)
            batch_size = max(1, round(self.batch_size / max(per_window, 1.0)))
            make = self.window_batch
        else:
            n_samples, batch_size = len(self.train_rows_), self.batch_size
            make = lambda idx, rng: self.train_batch(self.train_rows_[idx], rng)  # noqa: E731
        self.trainer_ = Trainer(self.epochs, self.patience, self.lr, batch_size, self.weight_decay, self.seed,
                                str(dev), self.progress, desc=type(self).__name__)
        self.trainer_.fit(self.net_, n_samples, make, self.train_loss, lambda: validate(self), on_epoch=self.start_epoch,
                          owner=self)
        self.history_log_ = self.trainer_.history_
        return self

    @torch.no_grad()
    def score(self, batch: pd.DataFrame, items: np.ndarray) -> np.ndarray:
        """(len(batch), len(items)): each sample's history representation . item embeddings."""
        was_training = self.net_.training
        self.net_.eval()
        seq = torch.from_numpy(self.history_[batch.index.to_numpy()]).to(self.device_)
        scores = self.item_scores(self.encode(seq), torch.from_numpy(np.asarray(items, np.int64)).to(self.device_))
        self.net_.train(was_training)
        return scores.float().cpu().numpy()


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """NT-Xent over 2B views with dot-product similarity (Chen et al., SimCLR 2020; CL4SRec's Eq. 7 and
    DuoRec's Eq. 12 as their code computes them, ``sim='dot'``): (a_k, b_k) are positives, the other
    2B - 2 views of the batch negatives. a, b: (B, dim) -> scalar."""
    n = len(a)
    z = torch.cat([a, b])
    sim = (z @ z.T / temperature).masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), -math.inf)
    return F.cross_entropy(sim, torch.arange(2 * n, device=z.device).roll(n))

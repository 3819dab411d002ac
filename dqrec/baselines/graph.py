"""What the collaborative and graph baselines share: the training graph, BPR triples, and one fit loop.

* :func:`bipartite_adjacency`: the symmetric-normalised user-item graph of ``split.train`` (and only
  of it) as a sparse :class:`Adjacency`, built once per fit,

      A = [[0, R], [R^T, 0]],   A_hat = D^{-1/2} A D^{-1/2}      ((n_users + n_items)^2, sparse)

  with R the binary train matrix and D the degrees of A (a node without edges keeps a zero row). This
  is LightGCN's Eq. 7, NGCF's Laplacian L (Eq. 8), HCCF's and SimRec's local graph.
* :class:`BPRTriples`: every distinct training positive (u, i) once per epoch with one uniformly
  drawn negative j (:class:`dqrec.sampling.NegativeSampler`), as the Trainer's ``batch`` callable.
* :class:`EmbeddingRecommender`: the fit/score skeleton of the models here. A subclass builds its
  ``nn.Module`` (``_build``), says how a batch becomes a loss (``_loss``), and how final user and item
  embeddings are read out (``net_.embeddings()``); scores are their dot products. Training runs in
  :class:`dqrec.train.Trainer` with early stopping on validation; the final embeddings are computed
  once per validation and once after training, never per scored batch.

Dropout and random graph augmentation draw from torch's global generator; a fit seeds it with
``seed`` inside :func:`torch.random.fork_rng`, so a run is deterministic and leaves the caller's
random state as it was.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from dqrec.baselines.popular import interaction_matrix
from dqrec.registry import Recommender
from dqrec.sampling import NegativeSampler
from dqrec.train import Trainer, check_training_params, resolve_device


def normalized_adjacency(x: sp.spmatrix) -> sp.coo_matrix:
    """D^{-1/2} A D^{-1/2} of the bipartite graph A = [[0, X], [X^T, 0]] of a binary (U, I) matrix X."""
    x = sp.csr_matrix(x, dtype=np.float32)
    a = sp.bmat([[None, x], [x.T, None]], format="csr", dtype=np.float32)
    a.data[:] = 1.0
    degree = np.asarray(a.sum(1)).ravel()
    inv_sqrt = np.zeros_like(degree)
    inv_sqrt[degree > 0] = degree[degree > 0] ** -0.5
    d = sp.diags(inv_sqrt)
    return (d @ a @ d).tocoo()


class Adjacency:
    """A sparse ((U + I), (U + I)) matrix and its product with dense embeddings, ``adj @ x``.

    On CPU the product runs in scipy (CSR; its gradient is A^T @ g), about ten times faster here than
    torch's sparse COO kernels on a busy 2-core machine; on CUDA it is ``torch.sparse.mm``.
    Never densified.
    """

    def __init__(self, m: sp.spmatrix, device):
        self.device = torch.device(device)
        self.csr = sp.csr_matrix(m, dtype=np.float32)
        self.shape = self.csr.shape
        if self.device.type != "cpu":
            coo = self.csr.tocoo()
            idx = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
            self.torch = torch.sparse_coo_tensor(idx, torch.from_numpy(coo.data), coo.shape).coalesce().to(self.device)

    @property
    def nnz(self) -> int:
        return self.csr.nnz

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        if self.device.type != "cpu":
            return torch.sparse.mm(self.torch, x)
        return _ScipyMatmul.apply(self.csr, x)

    def to_dense(self) -> np.ndarray:
        return self.csr.toarray()

    def dropped(self, keep: float, generator: torch.Generator | None = None) -> "Adjacency":
        """Each nonzero kept with probability ``keep`` and rescaled by 1 / keep (HCCF's edge dropout,
        NGCF's node dropout); the matrix itself when ``keep`` is 1. Draws from torch's generator."""
        if keep >= 1.0:
            return self
        mask = (torch.rand(self.nnz, generator=generator) < keep).numpy()
        m = self.csr.copy()
        m.data = np.where(mask, m.data / keep, 0.0).astype(np.float32)
        return Adjacency(m, self.device)


class _ScipyMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: sp.csr_matrix, x: torch.Tensor) -> torch.Tensor:
        ctx.a = a
        return torch.from_numpy(np.asarray(a @ x.detach().numpy(), np.float32))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, torch.from_numpy(np.asarray(ctx.a.T @ grad.contiguous().numpy(), np.float32))


def bipartite_adjacency(train: pd.DataFrame, n_users: int, n_items: int, device="cpu") -> Adjacency:
    """((U + I), (U + I)) A_hat of the training positives ``train`` (user rows first, then items)."""
    return Adjacency(normalized_adjacency(interaction_matrix(train, n_users, n_items)), device)


class BPRTriples:
    """(u, i, j) batches: the distinct training positives, one uniform negative each, per epoch.

    users, items: (n,) int64 distinct positives (``len(self)`` samples per epoch).
    """

    def __init__(self, train: pd.DataFrame, n_users: int, n_items: int, device):
        x = interaction_matrix(train, n_users, n_items).tocoo()
        self.users, self.items = x.row.astype(np.int64), x.col.astype(np.int64)
        self.sampler = NegativeSampler(self.users, self.items, n_items)
        self.device = device

    def __len__(self) -> int:
        return len(self.users)

    def __call__(self, idx: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        neg = self.sampler.sample(self.users[idx], rng)
        return tuple(torch.from_numpy(a).to(self.device) for a in (self.users[idx], self.items[idx], neg))


def l2_per_sample(*rows: torch.Tensor) -> torch.Tensor:
    """sum_r ||rows_r||^2 / 2 / batch: the batch-wise L2 penalty of LightGCN (Eq. 15) and NGCF (Eq. 11)."""
    return sum(r.pow(2).sum() for r in rows) / 2 / len(rows[0])


def init_embedding(n: int, dim: int, no_history: np.ndarray, generator: torch.Generator, std: float | None) -> torch.nn.Parameter:
    """(n, dim) embedding table: N(0, std^2) when ``std`` is given, else Xavier-uniform (the authors' choices);
    rows of entities without training positives start at 0 (as MF-BPR), so nothing random ranks them."""
    if std is None:
        bound = (6.0 / (n + dim)) ** 0.5
        w = (torch.rand(n, dim, generator=generator) * 2 - 1) * bound
    else:
        w = torch.randn(n, dim, generator=generator) * std
    w[torch.from_numpy(np.asarray(no_history, bool))] = 0.0
    return torch.nn.Parameter(w)


class EmbeddingRecommender(Recommender):
    """Fit/score skeleton shared by NCF, NGCF, LightGCN, HCCF and SimRec (see the module docstring).

    Subclasses set ``name`` and implement ``_build(split, generator) -> nn.Module`` (using
    ``self.adj_`` and ``self.triples_``) and ``_loss(batch) -> scalar``; the module has
    ``embeddings() -> (user (U, d), item (I, d))`` for scoring.
    """

    name = "model"

    def _check(self, dim, epochs, lr, batch_size, patience, **non_negative):
        check_training_params(dim=dim, epochs=epochs, lr=lr, batch_size=batch_size, patience=patience)
        bad = {k: v for k, v in non_negative.items() if not (isinstance(v, (int, float)) and v >= 0)}
        if bad:
            raise ValueError(f"{self.name}: these parameters must be non-negative numbers: {bad}")

    def _samples(self, split):
        """The Trainer's (n_samples, batch callable); BPR triples unless a subclass says otherwise."""
        return len(self.triples_), self.triples_

    def fit(self, split, validate=None):
        from dqrec.evaluate import validation_criterion

        self.device_ = dev = resolve_device(self.device)
        self.adj_ = bipartite_adjacency(split.train, split.n_users, split.n_items, dev)
        self.triples_ = BPRTriples(split.train, split.n_users, split.n_items, dev)
        self.n_users_, self.n_items_ = split.n_users, split.n_items
        validate = validate or validation_criterion(split, self.seed)
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(self.seed)
            self.net_ = self._build(split, torch.Generator().manual_seed(self.seed)).to(dev)
            n_samples, batch = self._samples(split)

            def validate_once():
                self._readout()
                return validate(self)

            self.trainer_ = Trainer(self.epochs, self.patience, self.lr, self.batch_size, 0.0, self.seed,
                                    str(dev), self.progress, desc=self.name)
            self.trainer_.fit(self.net_, n_samples, batch, self._loss, validate_once)
        self.history_ = self.trainer_.history_
        self._readout()
        return self

    @torch.no_grad()
    def _readout(self) -> None:
        """Final embeddings of the current weights (evaluation mode: no dropout), kept for scoring."""
        training = self.net_.training
        self.net_.eval()
        self.user_emb_, self.item_emb_ = (e.detach() for e in self.net_.embeddings())
        self.net_.train(training)

    @torch.no_grad()
    def score(self, batch: pd.DataFrame, items: np.ndarray) -> np.ndarray:
        """(len(batch), len(items)) dot products of the final user and item embeddings."""
        u = torch.from_numpy(batch.user.to_numpy(np.int64, copy=True)).to(self.device_)
        i = torch.from_numpy(np.asarray(items, np.int64)).to(self.device_)
        return (self.user_emb_[u] @ self.item_emb_[i].T).float().cpu().numpy()


def no_history(train: pd.DataFrame, n_users: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_users,), (n_items,) bool: entities without a training positive."""
    return (np.bincount(train.user.to_numpy(np.int64), minlength=n_users) == 0,
            np.bincount(train.item.to_numpy(np.int64), minlength=n_items) == 0)

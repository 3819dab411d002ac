"""One evaluator for every model: Recall@K and NDCG@K under two candidate protocols (Section 6.1.3).

A *scorer* is any object with ``score(batch, items) -> (len(batch), len(items))`` array, higher is
better. ``batch`` is a slice of the samples frame (columns ``user, item, timestamp``) that keeps its
original index, so sequence models can look up per-sample data by ``batch.index``.

Protocols, for a sample (u, p) with p the positive item:

* ``"in_batch"`` (the paper's): the samples are shuffled with a seeded permutation and cut into
  batches of ``batch_size``; the candidates are the distinct items of the sample's batch (p among
  them), minus the items u is known to like other than p.
* ``"full"``: the candidates are all items, minus the items u is known to like other than p.

The rank of p (0-based) is the number of eligible candidates scored strictly higher plus a seeded
uniform draw from {0, ..., number of other eligible candidates with the same score}, so a model that
scores everything equally lands at chance level, never at rank 0.
Recall@K = 1[rank < K] and NDCG@K = 1[rank < K] / log2(rank + 2), averaged over samples.
"""
from __future__ import annotations

from typing import Iterator, Protocol, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm import tqdm

PROTOCOLS = ("in_batch", "full")

# The version of what the default path computes (ranks, metrics, the validation criterion). Cached
# runs carry it in their key instead of this file's text, so an added option leaves them valid; a change
# to a default result must bump it. tests/test_evaluate.py::test_default_ranks_are_pinned pins the
# default ranks of a fixed case and fails until both are updated.
EVALUATOR_VERSION = 1
METRICS = ("Recall", "NDCG")


class Scorer(Protocol):
    def score(self, batch: pd.DataFrame, items: np.ndarray) -> np.ndarray:
        """(len(batch), len(items)) scores, higher is better."""


def evaluate(scorer: Scorer, samples: pd.DataFrame, known: sp.csr_matrix, n_items: int,
             protocols: Sequence[str] = PROTOCOLS, ks: Sequence[int] = (5, 10, 20),
             batch_size: int = 1024, seed: int = 0, progress: bool = True, return_ranks: bool = False):
    """Recall@K and NDCG@K of ``scorer`` on ``samples`` under each protocol.

    samples: DataFrame ``user, item[, timestamp]`` of test positives (indices into ``known``).
    known: (n_users, n_items) sparse matrix of all known positives; its nonzeros other than the
        sample's own positive are removed from the sample's candidates.
    Returns a tidy DataFrame ``protocol, metric, k, value, n_samples``; with ``return_ranks`` also a
    dict protocol -> (len(samples),) int64 array of 0-based ranks, in the order of ``samples``.
    """
    protocols = (protocols,) if isinstance(protocols, str) else tuple(protocols)
    known, ks = _check_inputs(samples, known, n_items, protocols, ks, batch_size)
    users, items = samples.user.to_numpy(np.int64), samples.item.to_numpy(np.int64)
    ranks = {}
    for protocol in protocols:
        tie_rng = np.random.default_rng([seed, PROTOCOLS.index(protocol)])  # same ranks whatever else runs
        ranks[protocol] = np.empty(len(samples), np.int64)
        for idx, candidates in tqdm(_batches(protocol, items, n_items, batch_size, seed),
                                    total=-(-len(items) // batch_size), desc=f"evaluate [{protocol}]",
                                    disable=not progress, leave=False):
            scores = _eligible_scores(scorer, samples.iloc[idx], users[idx], items[idx], candidates, known)
            pos = scores[np.arange(len(idx)), np.searchsorted(candidates, items[idx])]
            greater = (scores > pos[:, None]).sum(1)
            tied = (scores == pos[:, None]).sum(1) - 1  # the positive itself is not a tie
            ranks[protocol][idx] = greater + tie_rng.integers(0, tied + 1)
    rows = [dict(protocol=protocol, metric=metric, k=k, value=value, n_samples=len(samples))
            for protocol in protocols
            for metric, by_k in zip(METRICS, _metrics_from_ranks(ranks[protocol], ks))
            for k, value in zip(ks, by_k)]
    df = pd.DataFrame(rows)
    return (df, ranks) if return_ranks else df


def candidate_counts(samples: pd.DataFrame, known: sp.csr_matrix, n_items: int, protocol: str,
                     batch_size: int = 1024, seed: int = 0) -> np.ndarray:
    """(len(samples),) number of eligible candidates (positive included) of each sample, with the
    same seeded batching as :func:`evaluate`."""
    known, _ = _check_inputs(samples, known, n_items, (protocol,), (1,), batch_size)
    users, items = samples.user.to_numpy(np.int64), samples.item.to_numpy(np.int64)
    counts = np.empty(len(samples), np.int64)
    for idx, candidates in _batches(protocol, items, n_items, batch_size, seed):
        rows, _ = _excluded(known, users[idx], items[idx], candidates)
        counts[idx] = len(candidates) - np.bincount(rows, minlength=len(idx))
    return counts


def expected_random_metrics(samples: pd.DataFrame, known: sp.csr_matrix, n_items: int,
                            protocols: Sequence[str] = PROTOCOLS, ks: Sequence[int] = (5, 10, 20),
                            batch_size: int = 1024, seed: int = 0) -> pd.DataFrame:
    """Exact expected metrics of a random ranking (the chance level), same format as :func:`evaluate`.

    With m eligible candidates the positive's rank is uniform on {0..m-1}, so
    P(hit@K) = min(K, m) / m and E[NDCG@K] = (1/m) * sum_{r < min(K, m)} 1 / log2(r + 2).
    """
    protocols = (protocols,) if isinstance(protocols, str) else tuple(protocols)
    ks = _check_ks(ks)
    discount = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(max(ks)) + 2))])
    rows = []
    for protocol in protocols:
        m = candidate_counts(samples, known, n_items, protocol, batch_size, seed)
        top = {k: np.minimum(k, m) for k in ks}
        values = {"Recall": [np.mean(top[k] / m) for k in ks], "NDCG": [np.mean(discount[top[k]] / m) for k in ks]}
        rows += [dict(protocol=protocol, metric=metric, k=k, value=float(value), n_samples=len(m))
                 for metric in METRICS for k, value in zip(ks, values[metric])]
    return pd.DataFrame(rows)


def _metrics_from_ranks(ranks: np.ndarray, ks: Sequence[int]) -> tuple[list[float], list[float]]:
    """Mean Recall@K and NDCG@K for each K."""
    gain = 1.0 / np.log2(ranks + 2.0)
    recall = [float(np.mean(ranks < k)) for k in ks]
    ndcg = [float(np.mean(np.where(ranks < k, gain, 0.0))) for k in ks]
    return recall, ndcg


def _batches(protocol: str, items: np.ndarray, n_items: int, batch_size: int,
             seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (sample positions, sorted candidate items) per batch."""
    n = len(items)
    if protocol == "in_batch":
        order = np.random.default_rng(seed).permutation(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            yield idx, np.unique(items[idx])
    else:
        all_items = np.arange(n_items)
        for start in range(0, n, batch_size):
            yield np.arange(start, min(start + batch_size, n)), all_items


def _excluded(known: sp.csr_matrix, users: np.ndarray, items: np.ndarray,
              candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns into ``candidates``) of each sample's known positives other than its own."""
    sub = known[users]
    rows = np.repeat(np.arange(len(users)), np.diff(sub.indptr))
    cols = sub.indices
    col_of = np.full(known.shape[1], -1)
    col_of[candidates] = np.arange(len(candidates))
    keep = (cols != items[rows]) & (col_of[cols] >= 0)
    return rows[keep], col_of[cols[keep]]


def _eligible_scores(scorer: Scorer, batch: pd.DataFrame, users: np.ndarray, items: np.ndarray,
                     candidates: np.ndarray, known: sp.csr_matrix) -> np.ndarray:
    """(B, M) scores of the candidates, NaN where excluded (NaN compares False with everything)."""
    out = np.asarray(scorer.score(batch, candidates))
    if out.shape != (len(batch), len(candidates)):
        raise ValueError(f"scorer returned shape {out.shape}, expected {(len(batch), len(candidates))}")
    if not np.issubdtype(out.dtype, np.number) or np.iscomplexobj(out):
        raise TypeError(f"scorer returned dtype {out.dtype}, expected real numbers")
    scores = out.astype(np.result_type(out.dtype, np.float32), copy=True)
    if np.isnan(scores).any():
        raise ValueError("scorer returned NaN scores")
    rows, cols = _excluded(known, users, items, candidates)
    scores[rows, cols] = np.nan
    return scores


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    ks = tuple(int(k) for k in ks)
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    return ks


def _check_inputs(samples, known, n_items, protocols, ks, batch_size):
    """Validate arguments; return known as CSR and ks as a tuple of ints."""
    missing = {"user", "item"} - set(samples.columns)
    if missing:
        raise ValueError(f"samples lack columns {sorted(missing)}")
    if len(samples) == 0:
        raise ValueError("no samples to evaluate")
    unknown = set(protocols) - set(PROTOCOLS)
    if unknown or not protocols:
        raise ValueError(f"unknown protocols {sorted(unknown)}; choose from {PROTOCOLS}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    known = sp.csr_matrix(known, copy=True)
    known.sum_duplicates()
    known.eliminate_zeros()
    if known.shape[1] != n_items:
        raise ValueError(f"known has {known.shape[1]} items, n_items is {n_items}")
    items, users = samples.item.to_numpy(), samples.user.to_numpy()
    if items.min() < 0 or items.max() >= n_items:
        raise ValueError(f"item indices must lie in [0, {n_items}), got [{items.min()}, {items.max()}]")
    if users.min() < 0 or users.max() >= known.shape[0]:
        raise ValueError(f"user indices must lie in [0, {known.shape[0]}), got [{users.min()}, {users.max()}]")
    return known, _check_ks(ks)


def validation_criterion(split, seed: int = 0):
    """Early-stopping criterion shared by the trained models: in-batch NDCG@10 on ``split.valid``.

    The scorer comes from the model's ``scorer("valid")`` hook (:class:`dqrec.registry.Recommender`).
    Candidates are masked with train and valid positives only: the test split never reaches model
    selection.
    """
    seen = split.matrix(("train", "valid"))

    def criterion(model) -> float:
        res = evaluate(model.scorer("valid"), split.valid, seen, split.n_items, protocols=("in_batch",), ks=(10,),
                       seed=seed, progress=False)
        return float(res.loc[res.metric == "NDCG", "value"].iloc[0])

    return criterion


def equivalent_full_k(ranks: dict, k: int = 10) -> int:
    """Smallest K' with full-ranking Recall@K' >= in-batch Recall@k, from ``evaluate(..., return_ranks=True)``.

    How deep into the full ranking the paper's in-batch Recall@k reaches (e.g. ~35 for @10 on ML-1M).
    """
    target = (ranks["in_batch"] < k).mean()
    recall_at = np.cumsum(np.bincount(ranks["full"], minlength=1)) / len(ranks["full"])
    return int(np.searchsorted(recall_at, target - 1e-12) + 1)

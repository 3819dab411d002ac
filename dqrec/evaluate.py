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

Options that protocol forensics varies (:mod:`dqrec.forensics`); their defaults are the above:

* ``duplicates=True`` (in-batch): every sample of the batch is a candidate column, so an item
  appearing in several samples' positives is a candidate several times (other copies of p itself
  are p, not competitors: they are dropped);
* protocol ``"negatives"``: p against ``n_negatives`` items drawn uniformly (seeded, without
  replacement) among those u is not known to like (the "100 sampled negatives" protocol);
* ``ties="optimistic"`` counts only strictly higher candidates, ``"pessimistic"`` counts every tie
  as higher;
* what is removed from the candidates is the ``known`` matrix itself: pass all positives (ours),
  the training positives only, or an empty matrix.
"""
from __future__ import annotations

from typing import Iterator, Protocol, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm import tqdm

PROTOCOLS = ("in_batch", "full")
ALL_PROTOCOLS = PROTOCOLS + ("negatives",)  # "negatives" is a forensic option, never a default
TIES = ("random", "optimistic", "pessimistic")

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
             batch_size: int = 1024, seed: int = 0, progress: bool = True, return_ranks: bool = False,
             duplicates: bool = False, ties: str = "random", n_negatives: int = 100):
    """Recall@K and NDCG@K of ``scorer`` on ``samples`` under each protocol.

    samples: DataFrame ``user, item[, timestamp]`` of test positives (indices into ``known``).
    known: (n_users, n_items) sparse matrix of all known positives; its nonzeros other than the
        sample's own positive are removed from the sample's candidates.
    duplicates, ties, n_negatives: forensic options (module docstring); the defaults are our protocol.
    Returns a tidy DataFrame ``protocol, metric, k, value, n_samples``; with ``return_ranks`` also a
    dict protocol -> (len(samples),) int64 array of 0-based ranks, in the order of ``samples``.
    """
    protocols = (protocols,) if isinstance(protocols, str) else tuple(protocols)
    known, ks = _check_inputs(samples, known, n_items, protocols, ks, batch_size)
    _check_options(ties, n_negatives)
    users, items = samples.user.to_numpy(np.int64), samples.item.to_numpy(np.int64)
    ranks = {}
    for protocol in protocols:
        tie_rng = np.random.default_rng([seed, ALL_PROTOCOLS.index(protocol)])  # same ranks whatever else runs
        ranks[protocol] = np.empty(len(samples), np.int64)
        batches = _batches(protocol, users, items, known, n_items, batch_size, seed, duplicates, n_negatives)
        for idx, candidates, pos_col, pool in tqdm(batches, total=-(-len(items) // batch_size),
                                                   desc=f"evaluate [{protocol}]", disable=not progress, leave=False):
            scores = _eligible_scores(scorer, samples.iloc[idx], users[idx], items[idx], candidates, pos_col, pool,
                                      known)
            pos = scores[np.arange(len(idx)), pos_col]
            greater = (scores > pos[:, None]).sum(1)
            tied = (scores == pos[:, None]).sum(1) - 1  # the positive itself is not a tie
            ranks[protocol][idx] = (greater if ties == "optimistic" else greater + tied if ties == "pessimistic"
                                    else greater + tie_rng.integers(0, tied + 1))
    rows = [dict(protocol=protocol, metric=metric, k=k, value=value, n_samples=len(samples))
            for protocol in protocols
            for metric, by_k in zip(METRICS, _metrics_from_ranks(ranks[protocol], ks))
            for k, value in zip(ks, by_k)]
    df = pd.DataFrame(rows)
    return (df, ranks) if return_ranks else df


def candidate_counts(samples: pd.DataFrame, known: sp.csr_matrix, n_items: int, protocol: str,
                     batch_size: int = 1024, seed: int = 0, duplicates: bool = False,
                     n_negatives: int = 100) -> np.ndarray:
    """(len(samples),) number of eligible candidates (positive included) of each sample, with the
    same seeded batching (and sampled negatives) as :func:`evaluate`."""
    known, _ = _check_inputs(samples, known, n_items, (protocol,), (1,), batch_size)
    _check_options("random", n_negatives)
    users, items = samples.user.to_numpy(np.int64), samples.item.to_numpy(np.int64)
    counts = np.empty(len(samples), np.int64)
    for idx, candidates, pos_col, pool in _batches(protocol, users, items, known, n_items, batch_size, seed,
                                                   duplicates, n_negatives):
        rows, cols = _excluded(known, users[idx], items[idx], candidates, pos_col)
        if pool is None:
            counts[idx] = len(candidates) - np.bincount(rows, minlength=len(idx))
        else:
            eligible = pool.copy()
            eligible[rows, cols] = False
            counts[idx] = eligible.sum(1)
    return counts


def expected_random_metrics(samples: pd.DataFrame, known: sp.csr_matrix, n_items: int,
                            protocols: Sequence[str] = PROTOCOLS, ks: Sequence[int] = (5, 10, 20),
                            batch_size: int = 1024, seed: int = 0, duplicates: bool = False,
                            n_negatives: int = 100) -> pd.DataFrame:
    """Exact expected metrics of a random ranking (the chance level), same format as :func:`evaluate`.

    With m eligible candidates the positive's rank is uniform on {0..m-1}, so
    P(hit@K) = min(K, m) / m and E[NDCG@K] = (1/m) * sum_{r < min(K, m)} 1 / log2(r + 2).
    The candidate options are :func:`evaluate`'s; the tie rule does not apply (a random ranking has no
    ties).
    """
    protocols = (protocols,) if isinstance(protocols, str) else tuple(protocols)
    ks = _check_ks(ks)
    discount = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(max(ks)) + 2))])
    rows = []
    for protocol in protocols:
        m = candidate_counts(samples, known, n_items, protocol, batch_size, seed, duplicates, n_negatives)
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


def _batches(protocol: str, users: np.ndarray, items: np.ndarray, known: sp.csr_matrix, n_items: int,
             batch_size: int, seed: int, duplicates: bool = False,
             n_negatives: int = 100) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]]:
    """Yield (sample positions, candidate items, column of each sample's positive, pool) per batch.

    Candidates are sorted and distinct, except with ``duplicates`` (the batch's positives in batch
    order). pool: None (every candidate column is in each sample's pool) or a (B, M) bool mask (the
    sampled protocol: the positive and its drawn negatives).
    """
    n = len(items)
    if protocol == "in_batch":
        order = np.random.default_rng(seed).permutation(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            if duplicates:
                yield idx, items[idx], np.arange(len(idx)), None
            else:
                candidates = np.unique(items[idx])
                yield idx, candidates, np.searchsorted(candidates, items[idx]), None
    else:
        all_items = np.arange(n_items)
        neg_rng = np.random.default_rng([seed, ALL_PROTOCOLS.index(protocol), 1])
        for start in range(0, n, batch_size):
            idx = np.arange(start, min(start + batch_size, n))
            pool = None if protocol == "full" else _sample_negatives(known, users[idx], items[idx], n_items,
                                                                     n_negatives, neg_rng)
            yield idx, all_items, items[idx], pool


def _sample_negatives(known: sp.csr_matrix, users: np.ndarray, items: np.ndarray, n_items: int, n_negatives: int,
                      rng: np.random.Generator) -> np.ndarray:
    """(B, n_items) bool: each sample's positive and ``n_negatives`` items drawn uniformly without
    replacement among those its user is not known to like (fewer if fewer remain)."""
    keys = rng.random((len(users), n_items), dtype=np.float32)
    sub = known[users]
    rows = np.repeat(np.arange(len(users)), np.diff(sub.indptr))
    keys[rows, sub.indices] = np.inf
    keys[np.arange(len(users)), items] = np.inf
    k = min(n_negatives, n_items)
    drawn = np.argpartition(keys, k - 1, axis=1)[:, :k] if k < n_items else np.tile(np.arange(n_items), (len(users), 1))
    pool = np.zeros((len(users), n_items), bool)
    np.put_along_axis(pool, drawn, np.isfinite(np.take_along_axis(keys, drawn, 1)), 1)
    pool[np.arange(len(users)), items] = True
    return pool


def _excluded(known: sp.csr_matrix, users: np.ndarray, items: np.ndarray, candidates: np.ndarray,
              pos_col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns into ``candidates``) of each sample's known positives other than its own, and of
    any other column holding its own positive (duplicated candidates)."""
    sub = known[users]
    rows = np.repeat(np.arange(len(users)), np.diff(sub.indptr))
    cols = sub.indices
    col_of = np.full(known.shape[1], -1)
    col_of[candidates] = np.arange(len(candidates))
    if (col_of >= 0).sum() == len(candidates):  # distinct candidates (every default protocol): one column per item
        keep = (cols != items[rows]) & (col_of[cols] >= 0)
        return rows[keep], col_of[cols[keep]]
    keep = cols != items[rows]
    rows, cols = rows[keep], cols[keep]
    order = np.argsort(candidates, kind="stable")
    ordered = candidates[order]
    lo, hi = np.searchsorted(ordered, cols, "left"), np.searchsorted(ordered, cols, "right")
    n = hi - lo  # columns holding each known item: 0 or 1, more with duplicated candidates
    first = np.repeat(lo - np.cumsum(n) + n, n) + np.arange(n.sum())
    same_r, same_c = np.nonzero((candidates[None, :] == items[:, None])  # other copies of the positive itself
                                & (np.arange(len(candidates))[None, :] != pos_col[:, None]))
    return np.concatenate([np.repeat(rows, n), same_r]), np.concatenate([order[first], same_c])


def _eligible_scores(scorer: Scorer, batch: pd.DataFrame, users: np.ndarray, items: np.ndarray,
                     candidates: np.ndarray, pos_col: np.ndarray, pool: np.ndarray | None,
                     known: sp.csr_matrix) -> np.ndarray:
    """(B, M) scores of the candidates, NaN where excluded or outside the pool (NaN compares False
    with everything)."""
    out = np.asarray(scorer.score(batch, candidates))
    if out.shape != (len(batch), len(candidates)):
        raise ValueError(f"scorer returned shape {out.shape}, expected {(len(batch), len(candidates))}")
    if not np.issubdtype(out.dtype, np.number) or np.iscomplexobj(out):
        raise TypeError(f"scorer returned dtype {out.dtype}, expected real numbers")
    scores = out.astype(np.result_type(out.dtype, np.float32), copy=True)
    if np.isnan(scores).any():
        raise ValueError("scorer returned NaN scores")
    rows, cols = _excluded(known, users, items, candidates, pos_col)
    scores[rows, cols] = np.nan
    if pool is not None:
        scores[~pool] = np.nan
    return scores


def _check_options(ties: str, n_negatives: int) -> None:
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    if isinstance(n_negatives, bool) or not isinstance(n_negatives, (int, np.integer)) or n_negatives < 1:
        raise ValueError(f"n_negatives must be a positive integer, got {n_negatives!r}")


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
    unknown = set(protocols) - set(ALL_PROTOCOLS)
    if unknown or not protocols:
        raise ValueError(f"unknown protocols {sorted(unknown)}; choose from {ALL_PROTOCOLS}")
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


def validation_criterion(split, seed: int = 0, protocol: str = "in_batch"):
    """Early-stopping criterion shared by the trained models: in-batch NDCG@10 on ``split.valid``
    (``protocol="full"``: full-ranking, as RecBole selects; only scripts/sasrec_variants.py uses it).

    The scorer comes from the model's ``scorer("valid")`` hook (:class:`dqrec.registry.Recommender`).
    Candidates are masked with train and valid positives only: the test split never reaches model
    selection.
    """
    seen = split.matrix(("train", "valid"))

    def criterion(model) -> float:
        res = evaluate(model.scorer("valid"), split.valid, seen, split.n_items, protocols=(protocol,), ks=(10,),
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

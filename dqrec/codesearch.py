"""Exact nearest neighbours among semantic IDs by per-layer distance tables (paper Eqs. 15-18).

The DQ-VAE decoder is z_hat = sum_l r_l^{c_l} W_l^T + z_bar (Eq. 10), with W orthonormal and each
layer owning its own columns of W (:mod:`dqrec.dqvae`). The squared distance between two quantised
representations therefore splits by layer:

    ||D(a) - D(b)||^2 = sum_l T_l[a_l, b_l],      T_l[i, j] = ||r_l^i - r_l^j||^2.

So a query's distances to the S stored tuples, base(s), cost L table lookups each instead of a
d-dimensional distance, and distinct queries visited in lexicographic order share the partial sums
of their leading layers (about 1.7 of L = 4 layers are recomputed per query on ML-1M).

Two prunings keep the rest of the work small, and neither changes a result:

* explicit top-K: only the entities with base(s) <= the previous query's need are kept and ranked;
  if fewer than K are kept, all are. The K nearest among the kept are the K nearest overall.
* latent top-K' (Eqs. 16-18): a latent query is query a with layer l's code replaced by b, so

      lat(s) = base(s) + T_l[b, s_l] - T_l[a, s_l] >= base(s) + m_l[a, b],   m_l[a, b] = min_c T_l[b, c] - T_l[a, c]

  (c over the codes the store uses in layer l). lat on the K explicit candidates bounds the K'-th
  latent distance by some u, and only entities with base(s) <= u - m_l[a, b] can be within u: those
  few are scanned.

Results equal a brute-force scan of the whole store, ties going to the lower store position.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

_SLACK = np.float32(1e-5)  # relative slack on the pruning bound, far above float32 rounding


def distance_tables(codebooks) -> np.ndarray:
    """(L, J, J) float32 T_l[i, j] = ||r_l^i - r_l^j||^2 from L codebooks of shape (J, d/L)."""
    books = [np.asarray(b, dtype=np.float64) for b in codebooks]
    return np.stack([((b[:, None, :] - b[None, :, :]) ** 2).sum(-1) for b in books]).astype(np.float32)


def _check_codes(codes, n_layers: int, codebook_size: int, name: str) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] != n_layers:
        raise ValueError(f"{name} must be (N, {n_layers}) semantic IDs, got shape {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() >= codebook_size):
        raise ValueError(f"{name} must lie in [0, {codebook_size}), got [{codes.min()}, {codes.max()}]")
    return codes.astype(np.int32)


class CodeSearch:
    """Exact top-k search of semantic IDs against a store of semantic IDs.

    codebooks: L arrays (J, d/L), the DQ-VAE codebooks (``DQVAE.codebooks_``).
    store_codes: (S, L) the stored entities' semantic IDs.
    labels: (S,) non-negative int32 returned for each stored entity (default: its position).
    """

    def __init__(self, codebooks, store_codes, labels=None):
        self.tables_ = distance_tables(codebooks)
        n_layers, size = self.tables_.shape[:2]
        self.store_codes_ = np.ascontiguousarray(_check_codes(store_codes, n_layers, size, "store_codes").T)
        n_store = self.store_codes_.shape[1]
        labels = np.arange(n_store) if labels is None else np.asarray(labels)
        if labels.shape != (n_store,) or (labels < 0).any() or (labels > np.iinfo(np.int32).max).any():
            raise ValueError(f"labels must be {n_store} non-negative int32 values, one per stored entity")
        self.labels_ = labels.astype(np.int32)
        used = np.zeros((n_layers, size), bool)
        for l in range(n_layers):
            used[l, self.store_codes_[l]] = True
        # m_l[a, b] = min over used codes c of T_l[b, c] - T_l[a, c]
        self.shift_ = np.stack([np.where(used[l][None, None, :], t[None, :, :] - t[:, None, :], np.inf).min(-1)
                                for l, t in enumerate(self.tables_)]).astype(np.float32)

    @property
    def n_store(self) -> int:
        return self.store_codes_.shape[1]

    def search(self, codes, latent_codes=None, k: int = 30, k_latent: int = 2, exclude=None):
        """Nearest stored entities to every query and to its latent variants.

        codes: (N, L) queries (Eq. 9); latent_codes: (N, L) their latent IDs (Eq. 16), or None.
        exclude: (N,) a label that row i may not return (its own entity), -1 for none.
        Returns the labels of the explicit (N, k) and latent (N, L, k_latent) nearest, nearest first,
        -1 where the store has too few entities; latent is None without ``latent_codes``. int32.
        """
        n_layers, size = self.tables_.shape[:2]
        codes = _check_codes(codes, n_layers, size, "codes")
        n = len(codes)
        if k < 1 or k_latent < 0:
            raise ValueError(f"k must be >= 1 and k_latent >= 0, got k={k}, k_latent={k_latent}")
        latent = None if latent_codes is None or k_latent == 0 else _check_codes(latent_codes, n_layers, size,
                                                                                   "latent_codes")
        if latent is not None and len(latent) != n:
            raise ValueError(f"latent_codes has {len(latent)} rows, codes has {n}")
        exclude = np.full(n, -1, np.int64) if exclude is None else np.asarray(exclude, np.int64)
        if exclude.shape != (n,):
            raise ValueError(f"exclude must have shape ({n},), got {exclude.shape}")
        if n == 0:
            return np.zeros((0, k), np.int32), None if latent is None else np.zeros((0, n_layers, k_latent), np.int32)
        extra = int(np.isin(exclude, self.labels_).any())  # one more candidate, to drop the excluded entity
        k_search, kl_search = k + extra, (k_latent + extra if latent is not None else 1)

        # distinct queries in lexicographic order, so that neighbours share leading layers; latent
        # tasks: distinct (query, layer, latent code)
        order = np.lexsort(codes.T[::-1])
        groups, group, task_start, task_layer, task_code, task_of = _plan(
            codes, np.zeros((n, 0), np.int32) if latent is None else latent, order, size)
        explicit_g = np.empty((len(groups), k_search), np.int32)
        latent_t = np.empty((len(task_layer), kl_search), np.int32)
        bounds = np.linspace(0, len(groups), max(1, min(len(groups), 64)) + 1).astype(np.int64)
        _search(groups, self.store_codes_, self.tables_, self.shift_, task_start, task_layer, task_code, bounds,
                explicit_g, latent_t)

        explicit = np.empty((n, 1, k), np.int32)
        _gather_without(explicit_g, group[:, None], self.labels_, exclude, explicit)
        if latent is None:
            return explicit[:, 0], None
        lat = np.empty((n, n_layers, k_latent), np.int32)
        _gather_without(latent_t, task_of, self.labels_, exclude, lat)
        return explicit[:, 0], lat


# ----------------------------------------------------------------------------------- kernels
@njit(inline="always", cache=True)
def _insert(dist, idx, d, s):
    """Insert (d, s) into the sorted (dist, idx); the last entry drops out. Equal d stay in arrival order."""
    j = dist.shape[0] - 1
    while j > 0 and dist[j - 1] > d:
        dist[j] = dist[j - 1]
        idx[j] = idx[j - 1]
        j -= 1
    dist[j] = d
    idx[j] = s


@njit(cache=True)
def _plan(codes, latent, order, size):
    """Distinct queries and latent tasks, from (n, L) codes, (n, L or 0) latent codes and the
    lexicographic ``order`` of codes.

    Returns groups (G, L) the distinct codes in order, group (n,) each row's group, task_start (G+1,),
    task_layer and task_code (T,) the distinct (layer, latent code) of each group's rows, grouped by
    group, and task_of (n, L or 0) each row's task per layer.
    """
    n, n_layers = codes.shape
    group = np.empty(n, np.int32)
    g = -1
    for p in range(n):
        i = order[p]
        new = p == 0
        for l in range(n_layers):
            new = new or codes[i, l] != codes[order[p - 1], l]
        g += new
        group[i] = g
    groups = np.empty((g + 1, n_layers), codes.dtype)
    task_start = np.zeros(g + 2, np.int64)
    n_lat = latent.shape[1]
    task_layer = np.empty(n * n_lat, np.int64)
    task_code = np.empty(n * n_lat, np.int64)
    task_of = np.empty((n, n_lat), np.int32)
    owner = np.full((max(n_lat, 1), size), -1, np.int64)  # the last group that used (layer, code) ...
    slot = np.empty((max(n_lat, 1), size), np.int64)  # ... and its task there
    n_tasks = 0
    for p in range(n):
        i = order[p]
        g = group[i]
        groups[g] = codes[i]
        for l in range(n_lat):
            b = latent[i, l]
            if owner[l, b] != g:
                owner[l, b] = g
                slot[l, b] = n_tasks
                task_layer[n_tasks] = l
                task_code[n_tasks] = b
                n_tasks += 1
            task_of[i, l] = slot[l, b]
        task_start[g + 1] = n_tasks
    return groups, group, task_start, task_layer[:n_tasks], task_code[:n_tasks], task_of


@njit(parallel=True, cache=True)
def _gather_without(found, index, labels, exclude, out):
    """out[i, l] = labels of found[index[i, l]] without the label exclude[i], order kept, -1 padded."""
    for i in prange(out.shape[0]):
        for l in range(out.shape[1]):
            src = found[index[i, l]]
            j = 0
            for r in range(src.shape[0]):
                if j < out.shape[2] and src[r] >= 0 and labels[src[r]] != exclude[i]:
                    out[i, l, j] = labels[src[r]]
                    j += 1
            out[i, l, j:] = -1


@njit(parallel=True, cache=True)
def union_rows(first, second):
    """(N, m1 + m2) row-wise union: row i of ``first`` (its labels distinct, or -1), then the labels of
    row i of ``second`` not seen before, in order; the rest -1."""
    n, m1 = first.shape
    out = np.full((n, m1 + second.shape[1]), -1, first.dtype)
    for i in prange(n):
        size = 0
        for v in first[i]:
            if v >= 0:
                out[i, size] = v
                size += 1
        for v in second[i]:
            if v < 0:
                continue
            seen = False
            for q in range(size):
                if out[i, q] == v:
                    seen = True
                    break
            if not seen:
                out[i, size] = v
                size += 1
    return out


@njit(parallel=True, cache=True)
def _search(groups, store, tables, shift, task_start, task_layer, task_code, bounds, out_explicit, out_latent):
    """Explicit top-k of each sorted distinct query groups[g] (G, L) into out_explicit (G, k), and
    latent top-kl of each task t (layer task_layer[t] of group g's query set to task_code[t], for t in
    task_start[g]:task_start[g+1]) into out_latent (T, kl). Store positions, -1 if too few.
    """
    n_layers, n_store = store.shape
    k, kl = out_explicit.shape[1], out_latent.shape[1]
    max_tasks = max(1, np.max(task_start[1:] - task_start[:-1]))
    for chunk in prange(len(bounds) - 1):
        partial = np.zeros((n_layers + 1, n_store), np.float32)  # partial[l] = sum of layers < l
        previous = np.full(n_layers, -1, np.int64)
        dist = np.empty(k, np.float32)
        dist_l = np.empty(kl, np.float32)
        scratch = np.empty(kl, np.int64)
        keep = np.empty(n_store + 1, np.int64)
        cuts = np.empty(max_tasks, np.float32)
        guess = np.float32(np.inf)  # entities with base(s) <= guess are kept: the last group's need
        for g in range(bounds[chunk], bounds[chunk + 1]):
            first = 0
            while first < n_layers and groups[g, first] == previous[first]:
                first += 1
            for l in range(first, n_layers):
                row, col, src, dst = tables[l, groups[g, l]], store[l], partial[l], partial[l + 1]
                for s in range(n_store):
                    dst[s] = src[s] + row[col[s]]
                previous[l] = groups[g, l]
            base = partial[n_layers]
            n_keep = _compact(base, guess, keep)
            if n_keep < k:  # too few kept to hold the k nearest: keep everything
                n_keep = _compact(base, np.float32(np.inf), keep)
            # the k nearest among the kept are the k nearest overall: the others are farther than guess
            found = out_explicit[g]
            dist[:] = np.inf
            found[:] = -1
            for r in range(n_keep):
                s = keep[r]
                if base[s] < dist[k - 1]:
                    _insert(dist, found, base[s], s)
            widest = dist[k - 1]
            t0, t1 = task_start[g], task_start[g + 1]
            if t0 < t1:
                # per task: an upper bound u on the kl-th latent distance from the explicit candidates,
                # and the cut on base(s) that any entity within u must pass
                cut = cuts[:t1 - t0]
                for t in range(t0, t1):
                    l, b = task_layer[t], task_code[t]
                    a = groups[g, l]
                    dist_l[:] = np.inf
                    for r in range(k):
                        s = found[r]
                        if s >= 0:
                            v = base[s] - tables[l, a, store[l, s]] + tables[l, b, store[l, s]]
                            if v < dist_l[kl - 1]:
                                _insert(dist_l, scratch, v, s)
                    u = dist_l[kl - 1]
                    cut[t - t0] = u - shift[l, a, b] + _SLACK * (abs(u) + abs(shift[l, a, b]))
                widest = max(widest, cut.max())
                if widest > guess:  # the kept set may miss entities within a cut
                    n_keep = _compact(base, widest, keep)
                for t in range(t0, t1):
                    l, b = task_layer[t], task_code[t]
                    a = groups[g, l]
                    near = out_latent[t]
                    dist_l[:] = np.inf
                    near[:] = -1
                    bound = cut[t - t0]
                    for r in range(n_keep):
                        s = keep[r]
                        if base[s] <= bound:
                            v = base[s] - tables[l, a, store[l, s]] + tables[l, b, store[l, s]]
                            if v < dist_l[kl - 1]:
                                _insert(dist_l, near, v, s)
            guess = widest


@njit(inline="always", cache=True)
def _compact(base, limit, keep):
    """Write the positions s with base[s] <= limit to keep, in order; return their count."""
    n = 0
    for s in range(base.shape[0]):  # branch-free
        keep[n] = s
        n += base[s] <= limit
    return n

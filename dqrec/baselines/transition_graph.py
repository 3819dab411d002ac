"""MAERec's item transition graph and adaptive path masking (Ye et al., SIGIR 2023, Sec. 3.1-3.2).

* :func:`transition_graph`: undirected item-item edges between two items at most ``distance`` steps
  apart in a user's chronological *training* sequence (the authors' ``construct.py``), so no validation
  or test interaction ever enters the graph;
* :func:`consistency_scores`: each item's semantic consistency with its k-hop neighbourhood, cosine of
  its embedding and the mean embedding of the items reachable in 1..k hops (deeper hops over randomly
  thinned edges, keep probability 1 - p^k, as the authors' ``LocalGraph``), plus Gumbel noise, so that
  the seeds of the masked paths are drawn in proportion to how consistent their neighbourhood is;
* :func:`mask_paths`: from the seed items, remove every edge touching the current frontier, for
  ``depth`` hops; the next frontier is a random fraction p^(k) of the endpoints just reached (the
  authors' ``RandomMaskSubgraphs``). Returns the kept and the masked edges; the masked ones are what
  the graph autoencoder reconstructs;
* :func:`normalized_adjacency`: D^-1/2 (A + I) D^-1/2 of the kept edges, for the GCN encoder.

Edges are held as an (E, 2) int64 array of undirected pairs (a < b), self-loops excluded.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch


def transition_graph(train: pd.DataFrame, n_items: int, distance: int = 3) -> np.ndarray:
    """(E, 2) undirected item pairs (a < b) at most ``distance`` positions apart in some user's training
    sequence (``train``: the time-sorted training samples, columns user, item)."""
    if int(distance) != distance or distance < 1:
        raise ValueError(f"distance must be a positive integer, got {distance!r}")
    order = np.lexsort((np.arange(len(train)), train.user.to_numpy()))  # by user, keeping time order
    users, items = train.user.to_numpy()[order], train.item.to_numpy(np.int64)[order]
    pairs = []
    for step in range(1, distance + 1):
        same_user = users[step:] == users[:-step]
        pairs.append(np.stack([items[:-step][same_user], items[step:][same_user]], 1))
    edges = np.concatenate(pairs) if pairs else np.empty((0, 2), np.int64)
    edges = np.sort(edges, 1)
    edges = edges[edges[:, 0] != edges[:, 1]]
    edges = np.unique(edges, axis=0)
    if len(edges) and edges.max() >= n_items:
        raise ValueError("an item index is >= n_items")
    return edges.reshape(-1, 2).astype(np.int64)


def adjacency(edges: np.ndarray, n_items: int) -> sp.csr_matrix:
    """(n_items, n_items) symmetric binary CSR of undirected ``edges``."""
    a, b = edges[:, 0], edges[:, 1]
    m = sp.csr_matrix((np.ones(2 * len(edges), np.float32), (np.r_[a, b], np.r_[b, a])), shape=(n_items, n_items))
    m.data[:] = 1.0
    return m


def normalized_adjacency(edges: np.ndarray, n_items: int) -> torch.Tensor:
    """Sparse (n_items, n_items) D^-1/2 (A + I) D^-1/2 of ``edges`` (the authors' ``make_torch_adj``)."""
    a = (adjacency(edges, n_items) + sp.eye(n_items, dtype=np.float32)).tocoo()
    inv_sqrt = np.asarray(a.sum(1)).ravel() ** -0.5
    values = a.data * inv_sqrt[a.row] * inv_sqrt[a.col]
    index = torch.from_numpy(np.vstack([a.row, a.col]).astype(np.int64))
    return torch.sparse_coo_tensor(index, torch.from_numpy(values.astype(np.float32)), a.shape,
                                   check_invariants=False).coalesce()


def consistency_scores(adj: sp.csr_matrix, embeddings: torch.Tensor, depth: int, path_prob: float,
                       rng: np.random.Generator) -> torch.Tensor:
    """(n_items,) cos(e_v, mean of e over v's 1..depth-hop neighbourhood) + Gumbel noise, differentiable in
    ``embeddings`` (n_items, d). Hop k > 1 walks a copy of ``adj`` whose edges are kept with probability
    1 - path_prob^(k-1)."""
    n = adj.shape[0]
    walk = _sparse(adj)
    total, count = torch.zeros_like(embeddings), torch.zeros(n, 1)
    hop, hop_count = embeddings, torch.ones(n, 1)
    for k in range(1, depth + 1):
        if k > 1:
            coo = adj.tocoo()
            keep = rng.random(coo.nnz) >= path_prob ** (k - 1)
            walk = _sparse(sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=adj.shape))
        hop, hop_count = torch.sparse.mm(walk, hop), torch.sparse.mm(walk, hop_count)
        total, count = total + hop, count + hop_count
    neighbourhood = total / count.clamp_min(1e-8)
    cos = torch.nn.functional.cosine_similarity(embeddings, neighbourhood, dim=-1)
    # u below 1 in float32: 1 - 1e-8 rounds to 1.0 there, and a draw that rounded to 1 gave an infinite
    # score (MAERec's loss became -inf); every draw below 1 keeps its value
    u = torch.from_numpy(rng.random(n).astype(np.float32)).clamp(1e-8, float(np.nextafter(np.float32(1), 0)))
    return cos - torch.log(-torch.log(u))  # Gumbel(0, 1) noise


def mask_paths(edges: np.ndarray, seeds: np.ndarray, depth: int, path_prob: float,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(kept edges, masked edges): the edges on paths of up to ``depth`` hops from ``seeds``.

    Hop k (1-based) removes every remaining edge with an endpoint in the frontier; the next frontier is
    a random floor(path_prob^k * n) of the n distinct endpoints of the edges just removed."""
    remaining = np.ones(len(edges), bool)
    frontier = np.unique(np.asarray(seeds, np.int64))
    for k in range(1, depth + 1):
        touched = remaining & (np.isin(edges[:, 0], frontier) | np.isin(edges[:, 1], frontier))
        remaining &= ~touched
        reached = np.unique(edges[touched])
        frontier = rng.permutation(reached)[:int(len(reached) * path_prob ** k)]
        if not len(frontier):
            break
    return edges[remaining], edges[~remaining]


def _sparse(m: sp.spmatrix) -> torch.Tensor:
    coo = m.tocoo()
    index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(index, torch.from_numpy(coo.data.astype(np.float32)), coo.shape,
                                   check_invariants=False).coalesce()

"""Feature and linkage augmentation from semantic IDs (paper Section 4.3.1-4.3.2, Eqs. 14-19).

For one side (users or items) :func:`augment_side` takes the representation of every sample,
fits a DQ-VAE on the *store* (each entity at its most recent training sample, Section 4.3.2) and
returns, for every sample:

* ``codes`` (N, L): the sample's semantic ID (Eq. 9), the input of feature augmentation (Eq. 14);
* ``explicit`` (N, K): Q_u, the K store entities whose quantised representation z_hat is nearest to
  the sample's z_hat (Eq. 15), the entity itself excluded;
* ``latent`` (N, L*K'): for each layer l, the K' nearest to z_hat^{lat,l}, the reconstruction with
  layer l's code replaced by its runner-up (Eqs. 16-18);
* ``neighbours`` (N, K + L*K'): their union Q^all (Eq. 19), duplicates replaced by -1.

Leakage: the store holds only training samples, and under the temporal split only those strictly
before the first validation sample, so a validation or test sample's neighbours are found among
states that are strictly in its past. Its own z_hat comes from its own sequence (strictly before t).
Many samples share one semantic ID, so the exact faiss search runs once per distinct ID.
"""
from __future__ import annotations

from dataclasses import dataclass

import warnings

import faiss
import numpy as np
import pandas as pd

from .data import Split
from .dqvae import DQVAE


@dataclass
class SideAugmentation:
    """Semantic IDs and neighbours of every sample's user (or item) side; -1 pads."""

    side: str
    codes: np.ndarray
    explicit: np.ndarray
    latent: np.ndarray
    neighbours: np.ndarray
    store: np.ndarray  # (n_entities,) row of each entity's stored state, -1 if not in the store
    quantizer: DQVAE


def store_rows(split: Split, side: str) -> np.ndarray:
    """(n_entities,) the training sample that holds each entity's stored state, -1 if none.

    Under the temporal split only training samples strictly before the first validation sample
    count, so that every later sample's neighbours are strictly in its past.
    """
    train = split.train
    if split.kind == "temporal" and len(split.valid):
        train = train[train.timestamp < split.valid.timestamp.min()]
    n = split.n_users if side == "user" else split.n_items
    out = np.full(n, -1, np.int64)
    last = train.groupby(side, sort=False).tail(1)
    out[last[side].to_numpy()] = last.index.to_numpy()
    return out


def _row_keys(codes: np.ndarray, base: int) -> np.ndarray:
    """One int64 key per row of (N, L) codes, for np.unique over semantic IDs."""
    keys = np.zeros(len(codes), np.int64)
    for col in codes.T:
        keys = keys * base + col
    return keys


def search_distinct(index: faiss.Index, quantizer: DQVAE, codes: np.ndarray, k: int):
    """Store positions and squared distances (N, k) nearest to decode(codes), one search per distinct row."""
    _, first, inverse = np.unique(_row_keys(codes, quantizer.codebook_size + 1), return_index=True,
                                  return_inverse=True)
    queries = np.ascontiguousarray(quantizer.decode(codes[first]), dtype=np.float32)
    dist, found = index.search(queries, min(k, index.ntotal))
    return found[inverse.ravel()], dist[inverse.ravel()]


def drop_self(found: np.ndarray, ids: np.ndarray, self_ids: np.ndarray, k: int) -> np.ndarray:
    """Map store positions to entity ids, remove each row's own entity, keep the first k (-1 pads)."""
    ent = np.where(found >= 0, ids[np.clip(found, 0, None)], -1)
    ent = np.where(ent == self_ids[:, None], -1, ent)
    order = np.argsort(ent < 0, axis=1, kind="stable")  # valid entries first, order kept
    ent = np.take_along_axis(ent, order, 1)[:, :k]
    return np.pad(ent, ((0, 0), (0, k - ent.shape[1])), constant_values=-1)


def union_rows(parts: list[np.ndarray]) -> np.ndarray:
    """Row-wise union of id arrays: concatenated, sorted, repeated ids and pads set to -1."""
    cat = np.sort(np.concatenate(parts, 1), 1)
    dup = np.zeros_like(cat, bool)
    dup[:, 1:] = cat[:, 1:] == cat[:, :-1]
    return np.where(dup, -1, cat)


def augment_side(split: Split, embeddings: np.ndarray, side: str, n_layers: int = 4, codebook_size: int = 128,
                 beta: float = 0.25, k: int = 30, k_latent: int = 2, seed: int = 0,
                 fit_method: str = "kmeans") -> SideAugmentation:
    """Semantic IDs and Q^all for every sample of one side.

    embeddings: (N, d) representation of every sample's ``side`` (RepresentationModel.sample_embeddings).
    """
    if embeddings.shape[0] != len(split.samples):
        raise ValueError(f"need one embedding per sample ({len(split.samples)}), got {embeddings.shape[0]}")
    if k < 1 or k_latent < 0:
        raise ValueError(f"k must be >= 1 and k_latent >= 0, got k={k}, k_latent={k_latent}")
    store = store_rows(split, side)
    ids = np.flatnonzero(store >= 0)  # store position -> entity id
    dq = DQVAE(n_layers=n_layers, codebook_size=codebook_size, beta=beta, seed=seed, fit_method=fit_method)
    dq.fit(embeddings[store[ids]])
    codes, latent_codes = dq.encode_with_latent(embeddings)
    index = faiss.IndexFlatL2(embeddings.shape[1])
    index.add(np.ascontiguousarray(dq.decode(codes[store[ids]]), dtype=np.float32))
    self_ids = split.samples[side].to_numpy()

    explicit = drop_self(search_distinct(index, dq, codes, k + 1)[0], ids, self_ids, k)
    latent_parts = []
    if k_latent:
        for layer in range(n_layers):
            swapped = codes.copy()
            swapped[:, layer] = latent_codes[:, layer]
            nearest = search_distinct(index, dq, swapped, k_latent + 1)[0]
            latent_parts.append(drop_self(nearest, ids, self_ids, k_latent))
    latent = np.concatenate(latent_parts, 1) if latent_parts else np.zeros((len(codes), 0), np.int64)
    return SideAugmentation(side, codes, explicit, latent, union_rows([explicit, latent]), store, dq)


# ----------------------------------------------------------------------------- diagnostics
def neighbour_stats(aug: SideAugmentation) -> dict:
    """How big Q, Q^lat and Q^all are, and how much the latent neighbours add (means per sample)."""
    explicit, latent = aug.explicit, aug.latent
    in_explicit = np.zeros(latent.shape, bool)
    for j in range(explicit.shape[1]):
        in_explicit |= (latent == explicit[:, [j]]) & (latent >= 0)
    n_latent = (latent >= 0).sum(1)
    return dict(explicit=float((explicit >= 0).sum(1).mean()), latent=float(n_latent.mean()),
                latent_already_explicit=float(in_explicit.sum() / max(n_latent.sum(), 1)),
                all=float((aug.neighbours >= 0).sum(1).mean()))


def history_overlap(split: Split, aug: SideAugmentation, rows: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """Jaccard overlap of training histories between each sample's entity and its neighbours.

    For samples ``rows``: mean Jaccard with its explicit neighbours, with its latent neighbours and
    with as many random entities (the chance level). Users' histories are item sets, items' user sets.
    Rows whose entity has no training history (common for test users under a temporal split) are NaN.
    """
    m = split.matrix(("train",))
    x = (m if aug.side == "user" else m.T.tocsr()).astype(bool).astype(np.float32)
    sizes = np.asarray(x.sum(1)).ravel()
    owner = split.samples[aug.side].to_numpy()[rows]
    rng = np.random.default_rng(seed)

    def mean_jaccard(nbrs: np.ndarray) -> np.ndarray:
        a, b = np.repeat(owner, nbrs.shape[1]), nbrs.ravel()
        ok = b >= 0
        inter = np.zeros(len(b))
        inter[ok] = np.asarray(x[a[ok]].multiply(x[b[ok]]).sum(1)).ravel()
        union = sizes[a] + np.where(ok, sizes[b.clip(min=0)], 0) - inter
        jac = np.where(ok & (union > 0), inter / np.maximum(union, 1), np.nan).reshape(nbrs.shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a sample without neighbours: NaN
            return np.nanmean(jac, 1)

    random = rng.integers(0, x.shape[0], aug.explicit[rows].shape)
    out = pd.DataFrame({"explicit": mean_jaccard(aug.explicit[rows]), "latent": mean_jaccard(aug.latent[rows]),
                        "random": mean_jaccard(random)}, index=rows)
    out.loc[sizes[owner] == 0] = np.nan  # no training history: overlap undefined
    return out


def describe_user(split: Split, aug: SideAugmentation, row: int, n_neighbours: int = 3, n_titles: int = 4) -> pd.DataFrame:
    """A user-side sample, its explicit and latent neighbours: semantic IDs, top genres, recent titles.

    One row per entity; ``shared`` counts training items the neighbour shares with the sample's user.
    """
    if aug.side != "user":
        raise ValueError("describe_user needs the user-side augmentation")
    train = split.train
    genres = split.items.get("genres", pd.Series("", index=split.items.index)).fillna("").to_numpy()
    titles = split.items.get("title", pd.Series("", index=split.items.index)).fillna("").to_numpy()
    history = train.groupby("user").item.apply(list)
    user = int(split.samples.user[row])
    mine = set(history.get(user, []))

    def entry(role, u, code):
        items = history.get(u, [])
        top = pd.Series("|".join(genres[items]).split("|")).value_counts() if items else pd.Series(dtype=int)
        top = top[top.index != ""]
        return dict(role=role, user=split.user_ids[u], semantic_id="-".join(map(str, code)),
                    train_items=len(items), shared=len(mine & set(items)),
                    top_genres=", ".join(f"{g} {c / len(items):.0%}" for g, c in top.head(3).items()),
                    recent_titles="; ".join(titles[items[-n_titles:]][::-1]))

    rows = [entry("sample", user, aug.codes[row])]
    for role, nbrs in (("explicit", aug.explicit[row]), ("latent", aug.latent[row])):
        for u in nbrs[nbrs >= 0][:n_neighbours]:
            rows.append(entry(role, int(u), aug.codes[aug.store[u]]))
    return pd.DataFrame(rows)

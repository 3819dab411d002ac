"""Feature and linkage augmentation from semantic IDs (paper Section 4.3.1-4.3.2, Eqs. 14-19).

For one side (users or items) :func:`augment_side` takes the representation of every sample,
fits a DQ-VAE on the *store* (each entity at its most recent training sample, Section 4.3.2) and
returns, for every sample:

* ``codes`` (N, L): the sample's semantic ID (Eq. 9), the input of feature augmentation (Eq. 14);
* ``explicit`` (N, K): Q_u, the K store entities whose quantised representation z_hat is nearest to
  the sample's z_hat (Eq. 15), the entity itself excluded;
* ``latent`` (N, L*K'): for each layer l, the K' nearest to z_hat^{lat,l}, the reconstruction with
  layer l's code replaced by its runner-up (Eqs. 16-18);
* ``neighbours`` (N, K + L*K'): their union Q^all (Eq. 19), each entity once, explicit first, -1 padded.

Leakage: the store holds only training samples, and under the temporal split only those strictly
before the first validation sample, so a validation or test sample's neighbours are found among
states that are strictly in its past. Its own z_hat comes from its own sequence (strictly before t).
Ties (equidistant entities at the K-th place, frequent since many entities share a semantic ID) go to a
seeded random choice, not to the lowest id. Many samples share one semantic ID, so the exact search (:class:`dqrec.codesearch.CodeSearch`, by
per-layer distance tables) runs once per distinct ID, and once per distinct latent variant.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import faiss
import numpy as np
import pandas as pd

from .codesearch import CodeSearch, union_rows
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
    seconds: dict  # wall time of each step: fit, encode, search, union


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
    seconds, clock = {}, time.perf_counter()

    def lap(step):
        nonlocal clock
        seconds[step], clock = time.perf_counter() - clock, time.perf_counter()

    store = store_rows(split, side)
    ids = np.flatnonzero(store >= 0)  # store position -> entity id
    dq = DQVAE(n_layers=n_layers, codebook_size=codebook_size, beta=beta, seed=seed, fit_method=fit_method)
    dq.fit(embeddings[store[ids]])
    lap("fit")
    codes, latent_codes = dq.encode_with_latent(embeddings)
    lap("encode")
    # CodeSearch breaks ties by store position; a seeded shuffle of the store makes that a seeded random
    # choice among equidistant entities instead of a preference for low ids.
    shuffled = ids[np.random.default_rng([seed, 1]).permutation(len(ids))]
    search = CodeSearch(dq.codebooks_, codes[store[shuffled]], labels=shuffled)
    explicit, latent = search.search(codes, latent_codes if k_latent else None, k, k_latent,
                                     exclude=split.samples[side].to_numpy())
    latent = np.zeros((len(codes), 0), np.int32) if latent is None else latent.reshape(len(codes), -1)
    lap("search")
    neighbours = union_rows(explicit, latent)
    lap("union")
    return SideAugmentation(side, codes, explicit, latent, neighbours, store, dq, seconds)


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


def flat_search_agreement(split: Split, aug: SideAugmentation, embeddings: np.ndarray, rows=None,
                          chunk: int = 50_000) -> dict:
    """Check ``aug``'s neighbours against faiss IndexFlatL2 on the decoded z_hat, the usual exact search.

    For the samples ``rows`` (default all) faiss searches the explicit and the L latent queries (once
    per distinct query). Returns its search seconds and the share of samples whose neighbours are at
    the same float64 distances as faiss's (ids may differ between equidistant entities), nearer than
    faiss's (its float32 arithmetic picked a farther entity) or farther.
    """
    rows = np.arange(len(aug.codes)) if rows is None else np.asarray(rows)
    dq, ids = aug.quantizer, np.flatnonzero(aug.store >= 0)
    store_z = dq.decode(aug.codes[aug.store[ids]])
    index = faiss.IndexFlatL2(store_z.shape[1])
    index.add(store_z.astype(np.float32))
    own = split.samples[aug.side].to_numpy()[rows]
    codes = aug.codes[rows]
    _, latent_codes = dq.encode_with_latent(embeddings[rows])
    k_latent = aug.latent.shape[1] // dq.n_layers
    queries = [(codes, aug.explicit[rows])]
    for l in range(dq.n_layers if k_latent else 0):
        swapped = codes.copy()
        swapped[:, l] = latent_codes[:, l]
        queries.append((swapped, aug.latent[rows, l * k_latent:(l + 1) * k_latent]))
    seconds = 0.0
    nearer, farther = np.zeros(len(rows), bool), np.zeros(len(rows), bool)
    for query, got in queries:
        n = got.shape[1]
        start = time.perf_counter()
        distinct, inverse = np.unique(query, axis=0, return_inverse=True)
        _, found = index.search(dq.decode(distinct).astype(np.float32), n + 1)
        found = found[inverse.ravel()]
        seconds += time.perf_counter() - start
        theirs = np.where(found >= 0, ids[found.clip(0)], -1)
        theirs = np.take_along_axis(theirs, np.argsort(theirs == own[:, None], axis=1, kind="stable"), 1)[:, :n]
        for part in np.array_split(np.arange(len(rows)), max(1, len(rows) // chunk)):
            z = dq.decode(query[part])[:, None, :]
            mine, want = (np.sort(np.where(x >= 0, ((store_z[np.searchsorted(ids, x)] - z) ** 2).sum(-1), np.inf), 1)
                          for x in (got[part], theirs[part]))
            same = np.isclose(mine, want, rtol=1e-9, atol=1e-12).all(1)
            better = (mine <= want + 1e-12).all(1)
            nearer[part] |= ~same & better
            farther[part] |= ~same & ~better
    return dict(samples=len(rows), faiss_flat_search_seconds=round(seconds, 2),
                share_same_distances=float((~nearer & ~farther).mean()),
                share_nearer_than_faiss=float((nearer & ~farther).mean()), share_farther_than_faiss=float(farther.mean()))


def history_matrix(split: Split, side: str = "user"):
    """0/1 float32 training interactions, (n_users, n_items) for users, (n_items, n_users) for items."""
    m = split.matrix(("train",))
    return (m if side == "user" else m.T.tocsr()).astype(bool).astype(np.float32)


def history_overlap(split: Split, aug: SideAugmentation, rows: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """Jaccard overlap of training histories between each sample's entity and its neighbours.

    For samples ``rows``: mean Jaccard with its explicit neighbours, with its latent neighbours and
    with as many random entities (the chance level). Users' histories are item sets, items' user sets.
    Rows whose entity has no training history (common for test users under a temporal split) are NaN.
    """
    x = history_matrix(split, aug.side)
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

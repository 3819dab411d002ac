"""What a semantic ID says about a user (paper Section 6.5, Fig. 4).

The paper's case study shows two MovieLens users with different watch histories but the same
semantic-ID pattern and similar genre mixes, and concludes that DQ-VAE finds similar interests
"without being affected by overlapping interaction sequences". Here every pair of stored users
(each at its most recent training sample, as in the neighbour store) is compared by

* ``shared_codes``: in how many of the L layers the two semantic IDs have the same code;
* ``history_jaccard``: Jaccard overlap of their training item sets;
* ``genre_cosine``: cosine similarity of their genre mixes (genre shares over the training history)
  relative to the average stored user's mix, so that two users who both watch mostly dramas, like
  everybody, do not count as alike; 0 is what unrelated users score on average.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from .augment import SideAugmentation, history_matrix
from .data import Split


def genre_profiles(split: Split) -> tuple[np.ndarray, list[str]]:
    """(n_users, n_genres) share of each genre among the genres of a user's training items, and the genres.

    A multi-genre item counts once for each of its genres; rows of users without history are 0.
    """
    if "genres" not in split.items:
        raise ValueError(f"{split.name} has no item genres: the case study needs them")
    genres = split.items["genres"].fillna("").str.get_dummies("|")
    genres = genres.drop(columns=[c for c in genres.columns if c in ("", "(no genres listed)")])
    item_genres = sparse.csr_matrix(genres.reindex(range(split.n_items), fill_value=0).to_numpy(np.float32))
    counts = (history_matrix(split) @ item_genres).toarray()
    total = counts.sum(1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0), list(genres.columns)


def taste_vectors(split: Split, users: np.ndarray) -> np.ndarray:
    """(len(users), n_genres) unit-length genre mixes of ``users`` minus their mean mix (0 rows stay 0)."""
    g = genre_profiles(split)[0][users]
    g = g - g.mean(0)
    norms = np.linalg.norm(g, axis=1, keepdims=True)
    return np.divide(g, norms, out=np.zeros_like(g), where=norms > 0)


def pair_summary(split: Split, aug: SideAugmentation, chunk: int = 1024) -> pd.DataFrame:
    """All pairs of stored users, grouped by the number of codes they share (0..L).

    Per group: pairs, mean history Jaccard, share and number of pairs with no common item, mean and sd
    of the genre cosine, over all pairs and over the pairs with no common item (NaN where no pair is).
    """
    if aug.side != "user":
        raise ValueError("the case study compares users: pass the user-side augmentation")
    users = np.flatnonzero(aug.store >= 0)
    codes = aug.codes[aug.store[users]]
    x = history_matrix(split)[users]
    sizes = np.asarray(x.sum(1)).ravel()
    g = taste_vectors(split, users)
    levels = codes.shape[1] + 1
    # per level: pairs, sum jaccard, no-overlap pairs, sum and sum of squares of the cosine (all, no overlap)
    acc = np.zeros((levels, 7))
    xt = x.T.tocsc()
    for start in range(0, len(users), chunk):
        rows = slice(start, start + chunk)
        shared = (codes[rows, None, :] == codes[None, :, :]).sum(-1)
        inter = (x[rows] @ xt).toarray()
        union = sizes[rows, None] + sizes[None, :] - inter
        jaccard = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        cosine = g[rows] @ g.T
        upper = np.arange(start, start + shared.shape[0])[:, None] < np.arange(len(users))[None, :]
        none = upper & (inter == 0)
        for level in range(levels):
            at = upper & (shared == level)
            c_all, c_none = cosine[at].astype(np.float64), cosine[at & none].astype(np.float64)
            acc[level] += [at.sum(), jaccard[at].sum(), len(c_none), c_all.sum(), c_none.sum(), (c_all ** 2).sum(),
                           (c_none ** 2).sum()]
    pairs, none_pairs = acc[:, 0], acc[:, 2]

    def sd(total, squares, n):  # sample sd from sums; NaN below two pairs
        return np.sqrt(np.maximum(squares - total ** 2 / n, 0) / (n - 1))

    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame({"shared_codes": np.arange(levels), "pairs": pairs.astype(np.int64),
                             "history_jaccard": acc[:, 1] / pairs, "share_no_common_item": none_pairs / pairs,
                             "pairs_no_common_item": none_pairs.astype(np.int64),
                             "genre_cosine": acc[:, 3] / pairs, "genre_cosine_sd": sd(acc[:, 3], acc[:, 5], pairs),
                             "genre_cosine_no_common_item": acc[:, 4] / none_pairs,
                             "genre_cosine_no_common_item_sd": sd(acc[:, 4], acc[:, 6], none_pairs)})


def case_pair(split: Split, aug: SideAugmentation, seed: int = 0, min_items: int = 20) -> tuple[int, int]:
    """A pair like the paper's: same semantic ID, no common training item, the most similar genre mix.

    Among stored users with at least ``min_items`` training items; if no pair shares the full ID,
    the pairs sharing the most codes are used. Ties are broken at random (seeded).
    """
    users = np.flatnonzero(aug.store >= 0)
    x = history_matrix(split)[users]
    sizes = np.asarray(x.sum(1)).ravel()
    users, x = users[sizes >= min_items], x[sizes >= min_items]
    if len(users) < 2:
        raise ValueError(f"fewer than two stored users with >= {min_items} training items")
    codes = aug.codes[aug.store[users]]
    g = taste_vectors(split, users)
    shared = (codes[:, None, :] == codes[None, :, :]).sum(-1)
    upper = np.triu(np.ones_like(shared, bool), 1)
    no_common = (x @ x.T).toarray() == 0
    ok = upper & no_common
    if not ok.any():
        raise ValueError("every pair of users shares a training item")
    best = shared[ok].max()
    score = np.where(ok & (shared == best), g @ g.T, -np.inf)
    score += np.random.default_rng(seed).uniform(0, 1e-9, score.shape)  # random ties
    i, j = np.unravel_index(np.argmax(score), score.shape)
    return int(users[i]), int(users[j])


def pair_profile(split: Split, aug: SideAugmentation, users: tuple[int, int], top: int = 10) -> pd.DataFrame:
    """Genre shares of two users (columns: their original ids and semantic IDs), the ``top`` genres."""
    profiles, genres = genre_profiles(split)
    cols = {f"user {split.user_ids[u]} ({'-'.join(map(str, aug.codes[aug.store[u]]))})": profiles[u] for u in users}
    table = pd.DataFrame(cols, index=genres)
    return table.loc[table.sum(axis=1).sort_values(ascending=False).index[:top]]


def pair_users(split: Split, aug: SideAugmentation, users: tuple[int, int], n_titles: int = 4) -> pd.DataFrame:
    """The two users of a case pair side by side (one column each): semantic ID, training items, items in
    common, top genres and most recent titles, from :func:`dqrec.augment.describe_user`."""
    from .augment import describe_user

    rows = [describe_user(split, aug, int(aug.store[u]), n_neighbours=0, n_titles=n_titles).iloc[0] for u in users]
    common = len(set(split.train.item[split.train.user == users[0]]) & set(split.train.item[split.train.user == users[1]]))
    table = pd.DataFrame({f"user {r.user}": {"semantic ID": r.semantic_id, "training items": r.train_items,
                                             "items in common": common, "top genres": r.top_genres,
                                             "most recent titles": r.recent_titles.replace("; ", "<br>")}
                          for r in rows})
    return table.rename_axis(None)

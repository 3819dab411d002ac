"""ItemKNN: item-item cosine similarity on the binary train matrix, pruned to each item's top-k."""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from dqrec.baselines.popular import interaction_matrix
from dqrec.registry import Recommender


class ItemKNN(Recommender):
    """score(u, j) = sum of sim(i, j) over u's train items i that are among j's k nearest neighbours.

    k: neighbours kept per item; chunk: items whose similarity column is computed densely at once.
    """

    def __init__(self, k: int = 100, chunk: int = 1024):
        for name, value in (("k", k), ("chunk", chunk)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                what = "neighbours kept per item" if name == "k" else "items per similarity block"
                raise ValueError(f"ItemKNN: {name} ({what}) must be an integer >= 1, got {value!r}")
        self.k, self.chunk = k, chunk

    def fit(self, split) -> "ItemKNN":
        train, n_users, n_items = split.train, split.n_users, split.n_items
        self.x_ = interaction_matrix(train, n_users, n_items)  # (n_users, n_items)
        norms = np.sqrt(np.asarray(self.x_.sum(0)).ravel())
        xn = (self.x_ @ sp.diags(1.0 / np.maximum(norms, 1e-12))).tocsc().astype(np.float32)
        k = min(self.k, n_items - 1)
        rows, cols, vals = [], [], []
        for start in range(0, n_items, self.chunk):
            stop = min(start + self.chunk, n_items)
            sim = (xn.T @ xn[:, start:stop]).toarray()  # (n_items, stop - start) cosines
            sim[np.arange(start, stop), np.arange(stop - start)] = 0.0  # an item is not its own neighbour
            top = np.argpartition(-sim, k - 1, axis=0)[:k] if k > 0 else np.empty((0, stop - start), int)
            top_sim = np.take_along_axis(sim, top, axis=0)
            keep = top_sim > 0
            rows.append(top[keep])
            cols.append(np.broadcast_to(np.arange(start, stop), top.shape)[keep])
            vals.append(top_sim[keep])
        # (n_items, n_items): w[i, j] = sim(i, j) if i is one of j's top-k neighbours
        self.w_ = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                               shape=(n_items, n_items))
        return self

    def score(self, batch: pd.DataFrame, items: np.ndarray) -> np.ndarray:
        """(len(batch), len(items)) neighbourhood scores; zero for users without train history."""
        return (self.x_[batch.user.to_numpy()] @ self.w_[:, items]).toarray()

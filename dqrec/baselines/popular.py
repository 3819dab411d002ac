"""MostPopular: every user gets the items ranked by how many users liked them in train.

Also home of :func:`interaction_matrix`, the binary user-item matrix the other baselines start from.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from dqrec.registry import Recommender


def interaction_matrix(train: pd.DataFrame, n_users: int, n_items: int) -> sp.csr_matrix:
    """(n_users, n_items) binary float32 CSR of the ``user, item`` pairs in ``train``."""
    users, items = train.user.to_numpy(np.int64), train.item.to_numpy(np.int64)
    if len(train) and (users.min() < 0 or users.max() >= n_users or items.min() < 0 or items.max() >= n_items):
        raise ValueError(f"train indices out of range for {n_users} users x {n_items} items")
    x = sp.csr_matrix((np.ones(len(train), np.float32), (users, items)), shape=(n_users, n_items))
    x.data[:] = 1.0  # duplicates were summed
    return x


class MostPopular(Recommender):
    """score(u, i) = number of distinct train users of item i, the same for every user."""

    def fit(self, split) -> "MostPopular":
        train, n_users, n_items = split.train, split.n_users, split.n_items
        self.popularity_ = np.asarray(interaction_matrix(train, n_users, n_items).sum(0)).ravel()  # (n_items,)
        return self

    def score(self, batch: pd.DataFrame, items: np.ndarray) -> np.ndarray:
        """(len(batch), len(items)) popularity of each candidate item."""
        return np.tile(self.popularity_[items], (len(batch), 1))

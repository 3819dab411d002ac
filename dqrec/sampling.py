"""Uniform negative sampling for pairwise losses, shared by every model that needs negatives."""
from __future__ import annotations

import numpy as np


class NegativeSampler:
    """Draws, for each user, an item uniformly among those the user has no training positive with.

    users, items: (n,) the training positives; n_items: size of the catalogue.
    """

    def __init__(self, users: np.ndarray, items: np.ndarray, n_items: int):
        users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
        self.n_items = int(n_items)
        self.keys_ = np.unique(users * self.n_items + items)  # sorted (user, item) codes
        per_user = np.bincount(self.keys_ // self.n_items)
        if len(per_user) and per_user.max() >= self.n_items:
            raise ValueError("a user has a positive with every item: there is no negative to sample")

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = np.asarray(users, np.int64) * self.n_items + np.asarray(items, np.int64)
        pos = np.minimum(np.searchsorted(self.keys_, keys), len(self.keys_) - 1)
        return self.keys_[pos] == keys

    def sample(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(len(users),) int64 items, redrawn while (user, item) is a training positive."""
        users = np.asarray(users, np.int64)
        negatives = rng.integers(0, self.n_items, len(users))
        redraw = np.flatnonzero(self.is_positive(users, negatives))
        while len(redraw):
            negatives[redraw] = rng.integers(0, self.n_items, len(redraw))
            redraw = redraw[self.is_positive(users[redraw], negatives[redraw])]
        return negatives

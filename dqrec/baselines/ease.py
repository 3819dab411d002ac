"""EASE (Steck 2019): a closed-form item-item linear autoencoder with a zero diagonal."""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.linalg

from dqrec.baselines.popular import interaction_matrix
from dqrec.registry import Recommender


class EASE(Recommender):
    """B = I - P / diag(P) with P = (X^T X + lambda I)^-1, so diag(B) = 0; score = X_u B.

    l2: the ridge penalty lambda; dtype: precision of the (n_items, n_items) inverse (float32
    halves the memory of large catalogues).
    """

    def __init__(self, l2: float = 500.0, dtype=np.float64):
        # l2 <= 0 makes X^T X + lambda I singular for any item without train positives (and a singular
        # matrix crashes scipy.linalg.inv(overwrite_a=True) with a segmentation fault: scipy issue 26045).
        if isinstance(l2, bool) or not isinstance(l2, (int, float, np.integer, np.floating)) or not np.isfinite(l2) \
                or l2 <= 0:
            raise ValueError(f"EASE: l2 (the ridge penalty lambda) must be a finite number > 0, got {l2!r}")
        try:
            ok = np.dtype(dtype) in (np.float32, np.float64)
        except TypeError:
            ok = False
        if not ok:
            raise ValueError(f"EASE: dtype must be float32 or float64, got {dtype!r}")
        self.l2, self.dtype = l2, dtype

    def fit(self, split) -> "EASE":
        train, n_users, n_items = split.train, split.n_users, split.n_items
        self.x_ = interaction_matrix(train, n_users, n_items)  # (n_users, n_items)
        gram = (self.x_.T @ self.x_).toarray().astype(self.dtype)  # (n_items, n_items)
        gram[np.diag_indices(n_items)] += self.l2
        p = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)
        p /= -np.diag(p)[None, :]  # B_ij = -P_ij / P_jj off the diagonal
        p[np.diag_indices(n_items)] = 0.0
        self.b_ = p.astype(np.float32, copy=False)  # (n_items, n_items)
        return self

    def score(self, batch: pd.DataFrame, items: np.ndarray) -> np.ndarray:
        """(len(batch), len(items)) reconstructed scores; zero for users without train history."""
        return self.x_[batch.user.to_numpy()] @ self.b_[:, items]

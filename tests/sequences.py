"""Small sequential data sets the sequential-model tests share (not a test module)."""
import numpy as np
import pandas as pd

from dqrec import data

COLUMNS = ["user", "item", "rating", "timestamp"]


def make_split(ratings: pd.DataFrame, kind: str = "temporal"):
    """A prepared split of ``ratings`` (columns :data:`COLUMNS`) with a user table and an item table of
    titles, genres and years, enough for the models that read item text (VQRec)."""
    n_users, n_items = ratings.user.max() + 1, ratings.item.max() + 1
    users = pd.DataFrame({"gender": ["F"] * n_users}, index=pd.Index(range(n_users)))
    items = pd.DataFrame({"title": [f"Film {i}" for i in range(n_items)], "genres": ["Drama|Comedy"] * n_items,
                          "year": [1990.0 + i % 10 for i in range(n_items)]}, index=pd.Index(range(n_items)))
    return data.prepare(data.Dataset("planted", ratings, users, items), split=kind, seq_len=4)


def item_cycle(n_users: int, n_items: int = 60, length: int = 12, seed: int = 0) -> pd.DataFrame:
    """Every user walks the item cycle 0 -> 1 -> ... -> n_items-1 -> 0 from a random start, one step per
    time unit, ``length`` steps: the next item is the last one plus 1, while every item is about equally
    popular."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        start, t0 = rng.integers(0, n_items), rng.integers(0, 1000)
        rows += [(u, (start + k) % n_items, 5.0, float(t0 + k)) for k in range(length)]
    return pd.DataFrame(rows, columns=COLUMNS)

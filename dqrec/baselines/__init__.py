"""Baselines, each a :class:`dqrec.registry.Recommender` (``fit(split)``, ``score(batch, items)``),
registered by name in :mod:`dqrec.registry`."""
from dqrec.baselines.ease import EASE
from dqrec.baselines.itemknn import ItemKNN
from dqrec.baselines.mf import MFBPR
from dqrec.baselines.popular import MostPopular, interaction_matrix

__all__ = ["EASE", "ItemKNN", "MFBPR", "MostPopular", "interaction_matrix"]

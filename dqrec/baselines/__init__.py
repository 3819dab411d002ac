"""Non-quantized baselines, each with ``fit(train, n_users, n_items) -> self`` and
``score(batch, items) -> (len(batch), len(items))`` for :func:`dqrec.evaluate.evaluate`."""
from dqrec.baselines.ease import EASE
from dqrec.baselines.itemknn import ItemKNN
from dqrec.baselines.mf import MFBPR
from dqrec.baselines.popular import MostPopular, interaction_matrix

BASELINES = {"MostPopular": MostPopular, "ItemKNN": ItemKNN, "EASE": EASE, "MF-BPR": MFBPR}

__all__ = ["BASELINES", "EASE", "ItemKNN", "MFBPR", "MostPopular", "interaction_matrix"]

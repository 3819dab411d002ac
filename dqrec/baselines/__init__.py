"""Baselines, each a :class:`dqrec.registry.Recommender` (``fit(split)``, ``score(batch, items)``),
registered by name in :mod:`dqrec.registry`.

:data:`NOT_RUN`: the paper's baselines that have no model here, with the reason, the one place the
tables read it from (they show the paper's number and this reason instead of ours).
:data:`LABELS`: how a table or figure names a model whose inputs differ from its paper's.
"""
from dqrec.baselines.ease import EASE
from dqrec.baselines.itemknn import ItemKNN
from dqrec.baselines.mf import MFBPR
from dqrec.baselines.popular import MostPopular, interaction_matrix

NOT_RUN = {
    "LLMRec": ("LLMRec (Wei et al., WSDM 2024) augments the interaction graph, item attributes and user profiles "
               "with a large language model service (the authors query OpenAI's gpt-3.5-turbo and embed its "
               "answers with text-embedding-ada-002). No such service or model is reachable from the machines "
               "these runs use, so there is no LLMRec run and no stand-in for one."),
}

LABELS = {
    "VQRec": "VQRec (item text: TF-IDF + SVD)",  # the paper encodes item text with BERT; see dqrec.baselines.vqrec
}

__all__ = ["EASE", "LABELS", "MFBPR", "NOT_RUN", "ItemKNN", "MostPopular", "interaction_matrix"]

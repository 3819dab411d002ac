"""VQRec: vector-quantised item representations for sequential recommendation (Hou et al., WWW 2023).

text => code => representation (the paper's Sec. 3):

1. item text (title, genres, year: :func:`dqrec.baselines.itemtext.item_texts`) -> an embedding x_i by
   an :class:`~dqrec.baselines.itemtext.ItemTextEncoder`. The paper uses BERT; this machine reaches no
   model hub, so the default here is the offline ``"tfidf-svd"`` encoder (TF-IDF + truncated SVD,
   fitted on every item's text: side information, not interactions), and every page that shows VQRec
   names it. A ``sentence-transformers`` model name (``text_encoder="all-MiniLM-L6-v2"`` or a local
   folder, extra ``dqrec[text]``) takes the paper's route.
2. x_i -> discrete code c_i = (c_i1, ..., c_iD), c_ik in [0, M), by OPQ (Eq. 1-3; faiss
   ``OPQ{D},IVF1,PQ{D}x{log2 M}`` as the authors' ``pq.py``, D = 32 groups of M = 256 codewords,
   fitted on the items seen in training, the authors' ``strict`` mode): :func:`~dqrec.baselines.itemtext.opq_codes`.
3. e_i = mean_k E^(k)[c_ik] (Eq. 4: the D code embeddings, one table per group, pooled by their mean,
   as the authors' ``pq_code_embedding(...).mean(dim=-2)``; the mean is the sum / D, and the input
   LayerNorm and the cosine scores below make the two equivalent).
4. A causal transformer over the history's e_i plus positions (the shared
   :class:`~dqrec.baselines.sequential.SequenceEncoder`, post-LN, GELU, as RecBole's), output s at the
   last position; score(i) = cos(s, e_i) / tau (Eq. 8, tau = 0.07), trained by softmax cross-entropy
   over all items.

Training here: no cross-domain pre-training (the paper pre-trains on five other Amazon domains, which
are neither part of DQRec's setting nor available here), i.e. the authors' "train from scratch" run
(``finetune.py`` without ``-p``) with the same in-domain loss. The authors' fine-tuning stage also
learns a code-to-embedding permutation (Sec. 3.3.2, Sinkhorn over the first ``reassign_steps`` epochs,
then the encoder frozen); that stage transfers *pre-trained* code embeddings to a new domain, which is
meaningless for randomly initialised ones, so we train codes and encoder jointly from the start.

Training sequences (``train_on``), a deviation: the authors' RecBole-based code feeds one prefix per
training target (``"prefixes"``, kept as an option). The default here is SASRec's windows of each user's
timeline (``"sequences"``, :func:`~dqrec.baselines.sequential.training_windows`, the same loss at every
train target of a window), about max_len times cheaper per epoch (``results/bench/sequential_epoch.json``),
which is what lets the book's CPU runs finish. The Table 1 chapter compares the two schemes where both
ran.

Hyper-parameters (source): dim 64, Adam lr 1e-3, batch 1024 (the DQRec paper, for every baseline;
VQRec's code uses hidden 300); D = 32, M = 256, 2 blocks, 2 heads, dropout 0.5 (hidden and
attention), tau 0.07, GELU, feed-forward 4 x 64 = 256 (= the authors' inner size) (VQRec's
``props/VQRec.yaml``); max_len 50 (UniSRec/VQRec's data); early stopping on validation, patience 5
(the authors' code: 10 on NDCG@10).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dqrec.baselines.itemtext import TFIDF_SVD, ItemTextEncoder, item_texts, opq_codes
from dqrec.baselines.sequential import SequenceEncoder, SequentialRecommender


class CodeItemEmbedding(nn.Module):
    """Item ids -> mean of their D code embeddings (Eq. 4); drop-in for an ``nn.Embedding`` of items.

    codes: (n_items, D) in [0, M). Table row 1 + k*M + c holds codeword c of group k; row 0 is the
    padding code, which the padding and mask ids (n_items, n_items + 1) use in every group.
    """

    def __init__(self, codes: np.ndarray, n_codewords: int, dim: int):
        super().__init__()
        n_items, n_groups = codes.shape
        ids = np.zeros((n_items + 2, n_groups), np.int64)
        ids[:n_items] = 1 + np.arange(n_groups) * n_codewords + codes
        self.register_buffer("code_ids", torch.from_numpy(ids))
        self.codes = nn.Embedding(1 + n_groups * n_codewords, dim, padding_idx=0)

    @property
    def weight(self) -> torch.Tensor:
        """(n_items + 2, dim) every item's representation."""
        return self.codes(self.code_ids).mean(-2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.weight)  # the (n_items + 2, dim) table once, not D lookups per position


class VQRec(SequentialRecommender):
    """VQRec trained from scratch on the target data (see the module docstring)."""

    causal, norm_first, activation = True, False, "gelu"
    train_schemes = ("sequences", "prefixes")

    def __init__(self, dim: int = 64, max_len: int = 50, n_blocks: int = 2, n_heads: int = 2, dropout: float = 0.5,
                 text_encoder: str = TFIDF_SVD, text_dim: int = 256, n_code_groups: int = 32,
                 n_codewords: int = 256, temperature: float = 0.07, epochs: int = 200, lr: float = 1e-3,
                 batch_size: int = 1024, weight_decay: float = 0.0, patience: int = 5, seed: int = 0,
                 device: str = "auto", progress: bool = True, train_on: str = "sequences"):
        super().__init__(dim, max_len, n_blocks, n_heads, dropout, epochs, lr, batch_size, weight_decay, patience,
                         seed, device, progress, train_on)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if int(n_code_groups) != n_code_groups or n_code_groups < 1:
            raise ValueError(f"n_code_groups must be a positive integer, got {n_code_groups!r}")
        self.text_encoder, self.text_dim, self.temperature = text_encoder, text_dim, temperature
        self.n_code_groups, self.n_codewords = n_code_groups, n_codewords
        ItemTextEncoder(text_encoder, text_dim)  # checks the encoder's parameters now, not after loading data

    def item_codes(self, split) -> np.ndarray:
        """(n_items, D) OPQ codes of every item's text, the quantiser fitted on the training items."""
        features = ItemTextEncoder(self.text_encoder, self.text_dim, self.seed).encode(item_texts(split.items))
        return opq_codes(features, np.unique(split.train.item.to_numpy()), self.n_code_groups, self.n_codewords)

    def setup(self, split) -> None:
        self.codes_ = self.item_codes(split)
        super().setup(split)

    def build_net(self, split) -> nn.Module:
        net = super().build_net(split)
        net.item_embedding = CodeItemEmbedding(self.codes_, self.n_codewords, self.dim)
        net.item_embedding.apply(SequenceEncoder._init)  # BERT's normal(0, 0.02), padding row 0
        return net

    def item_scores(self, rep: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """(B, dim) -> (B, len(items)) cos(s, e_i) / tau (Eq. 8); all items when ``items`` is None."""
        emb = self.net_.item_embedding.weight
        emb = emb[:self.n_items_] if items is None else emb[items]
        return F.normalize(rep, dim=-1) @ F.normalize(emb, dim=-1).T / self.temperature

"""NGCF (Wang, He, Wang, Feng, Chua: "Neural Graph Collaborative Filtering", SIGIR 2019).

Implements, on the training graph only, in matrix form (Eq. 7):

    E^(l) = LeakyReLU( (L + I) E^(l-1) W1^(l) + b1 + (L E^(l-1) ⊙ E^(l-1)) W2^(l) + b2 )

with L = D^{-1/2} A D^{-1/2} the bipartite Laplacian of Eq. 8 (:func:`dqrec.baselines.graph.bipartite_adjacency`,
one sparse matmul per layer; the bi-interaction term is element-wise, no dense U x I matrix), LeakyReLU
slope 0.2, message dropout on each layer's output, each layer's output L2-normalised before the
readout (the authors' code), e* = e^(0) || e^(1) || ... || e^(L) (Eq. 9), y_ui = e*_u . e*_i (Eq. 10),
and the BPR loss with L2 regularisation (Eq. 11), the L2 term on the batch's final embeddings divided
by the batch size as in the authors' code.

Hyper-parameters and their sources. Fixed by the DQRec paper for every baseline: dim=64 (embedding and
every layer), Adam lr=1e-3, batch_size=1024. The authors' published defaults (xiangwang1223/
neural_graph_collaborative_filtering README command): 3 layers of size 64, l2 (``regs``) 1e-5, message
dropout 0.1 per layer; node dropout is switched off by default in the authors' code
(``node_dropout_flag=0``) and here (``node_dropout=0``); Xavier-uniform initialisation.
Deviation: we use the paper's symmetric Laplacian L (Eq. 8) where the authors' code defaults to the
row-normalised D^{-1}(A + I) (``adj_type="norm"``); RecBole 1.2.1 also uses the symmetric L.
"""
from __future__ import annotations

import torch
from torch import nn

from dqrec.baselines.graph import EmbeddingRecommender, init_embedding, l2_per_sample, no_history
from dqrec.train import bpr


class NGCFNet(nn.Module):
    def __init__(self, adj, n_users, user, item, dim, n_layers, message_dropout, node_dropout):
        super().__init__()
        self.adj, self.n_users, self.user, self.item = adj, n_users, user, item
        self.w1 = nn.ModuleList(nn.Linear(dim, dim) for _ in range(n_layers))  # (L + I) E W1 + b1
        self.w2 = nn.ModuleList(nn.Linear(dim, dim) for _ in range(n_layers))  # (L E ⊙ E) W2 + b2
        for lin in [*self.w1, *self.w2]:
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)
        self.dropout, self.node_keep = nn.Dropout(message_dropout), 1.0 - node_dropout

    def embeddings(self):
        adj = self.adj.dropped(self.node_keep) if self.training else self.adj
        ego = torch.cat([self.user, self.item])
        out = [ego]
        for w1, w2 in zip(self.w1, self.w2):
            side = adj @ ego  # L E
            ego = nn.functional.leaky_relu(w1(side + ego) + w2(side * ego), 0.2)
            ego = self.dropout(ego)
            out.append(nn.functional.normalize(ego, dim=1))
        e = torch.cat(out, 1)
        return e[:self.n_users], e[self.n_users:]


class NGCF(EmbeddingRecommender):
    """NGCF with BPR (see the module docstring for equations and defaults)."""

    name = "NGCF"

    def __init__(self, dim: int = 64, n_layers: int = 3, l2: float = 1e-5, message_dropout: float = 0.1,
                 node_dropout: float = 0.0, epochs: int = 200, lr: float = 1e-3, batch_size: int = 1024,
                 patience: int = 5, seed: int = 0, device: str = "auto", progress: bool = True):
        self._check(dim, epochs, lr, batch_size, patience, n_layers=n_layers, l2=l2,
                    message_dropout=message_dropout, node_dropout=node_dropout)
        if message_dropout >= 1 or node_dropout >= 1:
            raise ValueError("dropout rates must be below 1")
        self.dim, self.n_layers, self.l2 = dim, n_layers, l2
        self.message_dropout, self.node_dropout = message_dropout, node_dropout
        self.epochs, self.lr, self.batch_size, self.patience = epochs, lr, batch_size, patience
        self.seed, self.device, self.progress = seed, device, progress

    def _build(self, split, generator):
        cold_users, cold_items = no_history(split.train, split.n_users, split.n_items)
        user = init_embedding(split.n_users, self.dim, cold_users, generator, None)
        item = init_embedding(split.n_items, self.dim, cold_items, generator, None)
        return NGCFNet(self.adj_, split.n_users, user, item, self.dim, self.n_layers, self.message_dropout,
                       self.node_dropout)

    def _loss(self, batch):
        u, i, j = batch
        users, items = self.net_.embeddings()
        eu, ei, ej = users[u], items[i], items[j]
        return bpr((eu * ei).sum(-1), (eu * ej).sum(-1)) + self.l2 * l2_per_sample(eu, ei, ej)

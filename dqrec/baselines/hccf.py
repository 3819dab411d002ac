"""HCCF (Xia, Huang, Xu, Dai, Zhang, Yang, Pei, Bo: "Hypergraph Contrastive Collaborative Filtering",
SIGIR 2022).

Per layer l = 1..L, from E^(l-1) = [E_u; E_i] (users first), on the training graph only:

* local view (Section 3.2): Z^(l) = A_hat' E^(l-1), with A_hat the symmetric-normalised user-item
  graph (:func:`dqrec.baselines.graph.bipartite_adjacency`) after edge dropout (keep rate
  ``keep_rate``, kept edges rescaled by 1 / keep_rate);
* global view, learnable hypergraph (Section 3.3): H_u = E_u^(0) W_u (U x h) and H_i = E_i^(0) W_i
  (I x h), the parametric user-hyperedge and item-hyperedge dependencies (h = ``n_hyperedges``, dense
  but U x h and I x h, never U x I), with dropout 1 - keep_rate; Gamma_u^(l) = H_u (H_u^T E_u^(l-1)),
  Gamma_i^(l) likewise (message passing node -> hyperedge -> node);
* E^(l) = Z^(l) + Gamma^(l); readout e = sum_l E^(l) (l = 0..L); y_ui = e_u . e_i.

Loss: BPR on y plus ``ssl_reg`` x the cross-view InfoNCE (Section 3.4) summed over layers,

    L_cl = sum_l [ -log( exp(cos(z_u, g_u) / tau) / sum_{v in batch users} exp(cos(z_u, g_v) / tau) ) ]_mean
         + (the same over the batch's distinct positive items),

with z = Z^(l) held fixed (no gradient, as in the authors' code) and g = Gamma^(l), plus ``l2`` x the
squared norm of every parameter (the authors' weight regulariser).

Hyper-parameters and their sources. Fixed by the DQRec paper for every baseline: dim=64, Adam
lr=1e-3, batch_size=1024. The authors' published defaults (akaxlh/HCCF, torchVersion/Params.py):
n_layers=2, n_hyperedges=128, temperature=1, ssl_reg=1e-3, l2=1e-7, keep_rate=0.5 (edge dropout and
hyperedge dropout), Xavier-uniform initialisation. We follow the authors' PyTorch code where it is
simpler than the paper: no LeakyReLU inside the propagation and a single hyperedge layer (the
paper's hierarchical hypergraph layers are not in that code); its ``leaky`` and ``mult`` flags are
unused there and absent here. Early stopping on our validation criterion replaces the authors' fixed
epoch count.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dqrec.baselines.graph import EmbeddingRecommender, init_embedding, no_history
from dqrec.train import bpr


def info_nce(anchor: torch.Tensor, positive: torch.Tensor, nodes: torch.Tensor, temperature: float,
             negatives: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over ``nodes`` of -log(exp(cos(a_n, p_n)/t) / sum_m exp(cos(a_n, c_m)/t)).

    anchor, positive: (N, d) tables (rows are L2-normalised here); the candidates c are the rows
    ``nodes`` of ``positive`` (HCCF: in-batch negatives) or, when ``negatives`` is given, all rows of
    that table (SimRec's embedding-level distillation: every node).
    """
    a = nn.functional.normalize(anchor[nodes], dim=-1)
    p = nn.functional.normalize(positive[nodes], dim=-1)
    c = p if negatives is None else nn.functional.normalize(negatives, dim=-1)
    logits = a @ c.T / temperature
    return (torch.logsumexp(logits, -1) - (a * p).sum(-1) / temperature).mean()


class HCCFNet(nn.Module):
    def __init__(self, adj, n_users, user, item, dim, n_layers, n_hyperedges, keep_rate, generator):
        super().__init__()
        self.adj, self.n_users, self.n_layers, self.keep_rate = adj, n_users, n_layers, keep_rate
        self.user, self.item = user, item
        self.user_hyper = init_embedding(dim, n_hyperedges, np.zeros(dim, bool), generator, None)  # W_u (d, h)
        self.item_hyper = init_embedding(dim, n_hyperedges, np.zeros(dim, bool), generator, None)  # W_i (d, h)

    def views(self) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """(readout ((U + I), d), local views Z^(l), hypergraph views Gamma^(l)) for l = 1..L."""
        keep = self.keep_rate if self.training else 1.0
        h_user, h_item = self.user @ self.user_hyper, self.item @ self.item_hyper  # (U, h), (I, h)
        layers, local, hyper = [torch.cat([self.user, self.item])], [], []
        for _ in range(self.n_layers):
            last = layers[-1]
            z = self.adj.dropped(keep) @ last
            hu, hi = (nn.functional.dropout(h, 1.0 - keep, self.training) for h in (h_user, h_item))
            g = torch.cat([hu @ (hu.T @ last[:self.n_users]), hi @ (hi.T @ last[self.n_users:])])
            local.append(z)
            hyper.append(g)
            layers.append(z + g)
        return sum(layers), local, hyper

    def embeddings(self):
        e = self.views()[0]
        return e[:self.n_users], e[self.n_users:]


class HCCF(EmbeddingRecommender):
    """HCCF: local graph + learnable hypergraph propagation, cross-view InfoNCE (see the module docstring)."""

    name = "HCCF"

    def __init__(self, dim: int = 64, n_layers: int = 2, n_hyperedges: int = 128, temperature: float = 1.0,
                 ssl_reg: float = 1e-3, l2: float = 1e-7, keep_rate: float = 0.5, epochs: int = 200,
                 lr: float = 1e-3, batch_size: int = 1024, patience: int = 5, seed: int = 0, device: str = "auto",
                 progress: bool = True):
        self._check(dim, epochs, lr, batch_size, patience, n_layers=n_layers, n_hyperedges=n_hyperedges,
                    temperature=temperature, ssl_reg=ssl_reg, l2=l2, keep_rate=keep_rate)
        if not 0 < keep_rate <= 1 or temperature <= 0 or n_hyperedges < 1:
            raise ValueError("need 0 < keep_rate <= 1, temperature > 0 and n_hyperedges >= 1")
        self.dim, self.n_layers, self.n_hyperedges, self.temperature = dim, n_layers, n_hyperedges, temperature
        self.ssl_reg, self.l2, self.keep_rate = ssl_reg, l2, keep_rate
        self.epochs, self.lr, self.batch_size, self.patience = epochs, lr, batch_size, patience
        self.seed, self.device, self.progress = seed, device, progress

    def _build(self, split, generator):
        cold_users, cold_items = no_history(split.train, split.n_users, split.n_items)
        user = init_embedding(split.n_users, self.dim, cold_users, generator, None)
        item = init_embedding(split.n_items, self.dim, cold_items, generator, None)
        return HCCFNet(self.adj_, split.n_users, user, item, self.dim, self.n_layers, self.n_hyperedges,
                       self.keep_rate, generator)

    def _loss(self, batch):
        u, i, j = batch
        e, local, hyper = self.net_.views()
        users, items = e[:self.n_users_], e[self.n_users_:]
        loss = bpr((users[u] * items[i]).sum(-1), (users[u] * items[j]).sum(-1))
        return loss + self.ssl_reg * self.contrast(local, hyper, u, i) + self.l2 * sum(
            w.pow(2).sum() for w in self.net_.parameters())

    def contrast(self, local, hyper, u, i) -> torch.Tensor:
        """Cross-view InfoNCE summed over layers, on the batch's distinct users and positive items."""
        n, uu, ii = self.n_users_, torch.unique(u), torch.unique(i)
        return sum(info_nce(z[:n].detach(), g[:n], uu, self.temperature)
                   + info_nce(z[n:].detach(), g[n:], ii, self.temperature) for z, g in zip(local, hyper))

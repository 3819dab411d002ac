"""LightGCN (He, Deng, Wang, Li, Zhang, Wang: "LightGCN: Simplifying and Powering Graph Convolution
Network for Recommendation", SIGIR 2020).

Implements, on the training graph only (:func:`dqrec.baselines.graph.bipartite_adjacency`):

* Eq. 7 / matrix form Eq. 8-9: E^(k+1) = A_hat E^(k), A_hat = D^{-1/2} A D^{-1/2} of the user-item
  graph (no self-loops, no feature transform, no non-linearity), one sparse matmul per layer;
* Eq. 8 readout: e = sum_k alpha_k e^(k) with alpha_k = 1 / (K + 1) (layer mean, ``readout="mean"``;
  ``"sum"`` is the plain sum that SimRec's teacher uses);
* Eq. 10-11: y_ui = e_u . e_i;
* Eq. 15: BPR loss -ln sigma(y_ui - y_uj) + lambda ||E^(0)_batch||^2, the L2 term on the *ego*
  (layer-0) embeddings of the batch's u, i, j, halved and divided by the batch size as in the
  authors' code.

Hyper-parameters and their sources. Fixed by the DQRec paper for every baseline: dim=64, Adam
lr=1e-3, batch_size=1024. The authors' published defaults (gusye1234/LightGCN-PyTorch, and the paper's
Section 4.1.2): n_layers=3, l2=1e-4, embeddings initialised N(0, 0.1^2), no dropout. Early stopping on
our validation criterion (patience) replaces the authors' fixed 1000 epochs.
"""
from __future__ import annotations

import torch

from dqrec.baselines.graph import EmbeddingRecommender, init_embedding, l2_per_sample, no_history
from dqrec.train import bpr


class LightGCNNet(torch.nn.Module):
    def __init__(self, adj: torch.Tensor, n_users: int, user: torch.nn.Parameter, item: torch.nn.Parameter,
                 n_layers: int, readout: str):
        super().__init__()
        self.adj, self.n_users, self.n_layers, self.readout = adj, n_users, n_layers, readout
        self.user, self.item = user, item

    def layers(self) -> list[torch.Tensor]:
        """[E^(0), ..., E^(K)], each ((U + I), d)."""
        out = [torch.cat([self.user, self.item])]
        for _ in range(self.n_layers):
            out.append(self.adj @ out[-1])
        return out

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        stacked = torch.stack(self.layers())
        e = stacked.mean(0) if self.readout == "mean" else stacked.sum(0)
        return e[:self.n_users], e[self.n_users:]


class LightGCN(EmbeddingRecommender):
    """LightGCN with BPR (see the module docstring for equations and defaults)."""

    name = "LightGCN"

    def __init__(self, dim: int = 64, n_layers: int = 3, l2: float = 1e-4, init_std: float = 0.1,
                 readout: str = "mean", epochs: int = 200, lr: float = 1e-3, batch_size: int = 1024,
                 patience: int = 5, seed: int = 0, device: str = "auto", progress: bool = True):
        self._check(dim, epochs, lr, batch_size, patience, n_layers=n_layers, l2=l2, init_std=init_std)
        if readout not in ("mean", "sum"):
            raise ValueError(f"readout must be 'mean' (LightGCN's Eq. 8) or 'sum', got {readout!r}")
        self.dim, self.n_layers, self.l2, self.init_std, self.readout = dim, n_layers, l2, init_std, readout
        self.epochs, self.lr, self.batch_size, self.patience = epochs, lr, batch_size, patience
        self.seed, self.device, self.progress = seed, device, progress

    def _build(self, split, generator):
        cold_users, cold_items = no_history(split.train, split.n_users, split.n_items)
        user = init_embedding(split.n_users, self.dim, cold_users, generator, self.init_std)
        item = init_embedding(split.n_items, self.dim, cold_items, generator, self.init_std)
        return LightGCNNet(self.adj_, split.n_users, user, item, self.n_layers, self.readout)

    def _loss(self, batch):
        u, i, j = batch
        users, items = self.net_.embeddings()
        eu = users[u]
        loss = bpr((eu * items[i]).sum(-1), (eu * items[j]).sum(-1))
        return loss + self.l2 * l2_per_sample(self.net_.user[u], self.net_.item[i], self.net_.item[j])

"""NCF / NeuMF (He, Liao, Zhang, Nie, Hu, Chua: "Neural Collaborative Filtering", WWW 2017).

Implements NeuMF (Section 3.4, Eq. 11-12), the fusion of

* GMF (Eq. 9): phi_GMF = p^G_u ⊙ q^G_i,
* MLP (Eq. 10): phi_MLP = a_L(W_L^T(... a_2(W_2^T [p^M_u ; q^M_i] + b_2) ...) + b_L), ReLU, a tower
  halving its width per layer,
* y_ui = sigma(h^T [phi_GMF ; phi_MLP]) (Eq. 12), with separate embeddings for the two parts,

trained with its own pointwise log loss (Eq. 7, binary cross-entropy) on every training positive
plus ``n_negatives`` uniformly sampled unobserved items per positive, redrawn every epoch (Section
4.1, "we uniformly sampled negative instances from unobserved interactions"). One epoch is every
(positive or negative) instance once; a batch holds ``batch_size`` instances.

Hyper-parameters and their sources. Fixed by the DQRec paper for every baseline: dim=64 (the GMF
factors and each MLP embedding), Adam lr=1e-3, batch_size=1024. The authors' published defaults
(hexiangnan/neural_collaborative_filtering, NeuMF.py): n_negatives=4, three ReLU layers below the
predictive layer halving in width (their [64, 32, 16, 8] on a 64-wide input; here the input is
2 * dim = 128 wide, so layers 64, 32, 16), no regularisation (reg_mf = reg_layers = 0), no dropout,
embeddings N(0, 0.01^2), dense layers LeCun-uniform, no pre-training (NeuMF from scratch, the
authors' option without --mf_pretrain/--mlp_pretrain). Early stopping on our validation criterion
replaces the authors' fixed 20 epochs.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from dqrec.baselines.graph import EmbeddingRecommender, init_embedding, no_history


def _lecun_uniform(lin: nn.Linear) -> nn.Linear:
    bound = (3.0 / lin.in_features) ** 0.5
    nn.init.uniform_(lin.weight, -bound, bound)
    nn.init.zeros_(lin.bias)
    return lin


class NeuMFNet(nn.Module):
    def __init__(self, n_users, n_items, dim, n_layers, cold_users, cold_items, generator):
        super().__init__()
        self.gmf_user = init_embedding(n_users, dim, cold_users, generator, 0.01)
        self.gmf_item = init_embedding(n_items, dim, cold_items, generator, 0.01)
        self.mlp_user = init_embedding(n_users, dim, cold_users, generator, 0.01)
        self.mlp_item = init_embedding(n_items, dim, cold_items, generator, 0.01)
        widths = [2 * dim // 2 ** k for k in range(n_layers + 1)]  # 128 -> 64 -> 32 -> 16 for dim 64
        if widths[-1] < 1:
            raise ValueError(f"an MLP of {n_layers} halving layers needs dim >= {2 ** (n_layers - 1)}")
        self.tower = nn.ModuleList(_lecun_uniform(nn.Linear(a, b)) for a, b in zip(widths, widths[1:]))
        self.predict = _lecun_uniform(nn.Linear(dim + widths[-1], 1))  # h of Eq. 12

    def _mlp(self, first: torch.Tensor) -> torch.Tensor:
        """phi_MLP from the first layer's pre-activation (..., width_1)."""
        h = torch.relu(first)
        for lin in self.tower[1:]:
            h = torch.relu(lin(h))
        return h

    def forward(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """(B,) logits of the pairs (u_b, i_b)."""
        gmf = self.gmf_user[u] * self.gmf_item[i]
        mlp = self._mlp(self.tower[0](torch.cat([self.mlp_user[u], self.mlp_item[i]], -1)))
        return self.predict(torch.cat([gmf, mlp], -1)).squeeze(-1)

    def cross(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """(len(u), len(i)) logits of every pair; the first MLP layer is split into its user and item
        halves so that only (len(u), len(i), width_1) activations are built."""
        w = self.tower[0].weight  # (width_1, 2 dim)
        d = self.mlp_user.shape[1]
        first = (self.mlp_user[u] @ w[:, :d].T + self.tower[0].bias)[:, None] + (self.mlp_item[i] @ w[:, d:].T)[None]
        h_gmf, h_mlp = self.predict.weight[0, :d], self.predict.weight[0, d:]
        gmf = (self.gmf_user[u] * h_gmf) @ self.gmf_item[i].T
        return gmf + self._mlp(first) @ h_mlp + self.predict.bias


class NCF(EmbeddingRecommender):
    """NeuMF with pointwise log loss and sampled negatives (see the module docstring)."""

    name = "NCF"
    score_chunk = 128  # users per block of (users, items, 64) MLP activations when scoring

    def __init__(self, dim: int = 64, n_layers: int = 3, n_negatives: int = 4, epochs: int = 200, lr: float = 1e-3,
                 batch_size: int = 1024, patience: int = 5, seed: int = 0, device: str = "auto",
                 progress: bool = True):
        self._check(dim, epochs, lr, batch_size, patience, n_layers=n_layers, n_negatives=n_negatives)
        self.dim, self.n_layers, self.n_negatives = dim, n_layers, n_negatives
        self.epochs, self.lr, self.batch_size, self.patience = epochs, lr, batch_size, patience
        self.seed, self.device, self.progress = seed, device, progress

    def _build(self, split, generator):
        cold_users, cold_items = no_history(split.train, split.n_users, split.n_items)
        return NeuMFNet(split.n_users, split.n_items, self.dim, self.n_layers, cold_users, cold_items, generator)

    def _samples(self, split):
        """Instance r is positive r // (1 + n_negatives) itself when r % (1 + n_negatives) == 0, else a
        fresh negative for that positive's user."""
        per = 1 + self.n_negatives
        t = self.triples_

        def batch(idx, rng):
            pos, is_pos = idx // per, idx % per == 0
            users = t.users[pos]
            items = np.where(is_pos, t.items[pos], t.sampler.sample(users, rng))
            return tuple(torch.from_numpy(a).to(self.device_) for a in (users, items, is_pos.astype(np.float32)))

        return per * len(t), batch

    def _loss(self, batch):
        u, i, label = batch
        return nn.functional.binary_cross_entropy_with_logits(self.net_(u, i), label)

    def _readout(self):
        pass  # NeuMF scores pairs directly: there are no final embeddings to cache

    @torch.no_grad()
    def score(self, batch: pd.DataFrame, items: np.ndarray) -> np.ndarray:
        """(len(batch), len(items)) NeuMF logits (Eq. 12 before the sigmoid, same ranking)."""
        u = torch.from_numpy(batch.user.to_numpy(np.int64, copy=True)).to(self.device_)
        i = torch.from_numpy(np.asarray(items, np.int64)).to(self.device_)
        out = [self.net_.cross(u[s:s + self.score_chunk], i) for s in range(0, len(u), self.score_chunk)]
        return torch.cat(out).float().cpu().numpy()

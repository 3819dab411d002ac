"""SimRec (Xia, Huang, Xu, Dai, Zhang, Yang, Pei, Bo: "Graph-less Collaborative Filtering", WWW 2023).

A graph-less MLP student distilled from a trained LightGCN teacher. The teacher is our
:class:`dqrec.baselines.lightgcn.LightGCN` fitted first on the training graph (2 layers, layer-sum
readout as in the authors' teacher; early stopping on validation), then frozen. The student has
its own embeddings e and one residual MLP layer f(e) = LeakyReLU_0.5(e W) + e; y_ui = f(e_u) . f(e_i).

Per batch of training positives (u, i), the student minimises (Section 3, the terms of the
authors' ``calcLoss``):

* main task: -mean y_ui over the batch (the numerator of a softmax over items; its denominator is in
  the contrastive regulariser below);
* prediction-level distillation, ``soft_reg`` x: for ``n_distill_triples`` random (u, i, j),
  -mean[ p log(q + 1e-8) + (1 - p) log(1 - q + 1e-8) ] with p = sigma((t_ui - t_uj) / tau_soft) from
  the teacher's scores t and q = sigma((y_ui - y_uj) / tau_soft) from the student's;
* embedding-level distillation, ``cd_reg`` x: InfoNCE between the teacher's high-order embeddings
  (sum of its layers >= 2) and the student's raw embeddings, positives the same node, negatives
  every student node, temperature tau_cd, on the batch's distinct users and distinct items;
* adaptive contrastive regularisation, ``sc_reg`` x: mean_u w_u log(sum_i exp(y_ui / tau_sc) + 1e-5)
  + mean_u w_u log(sum_v exp(f(e_u) . f(e_v) / tau_sc) + 1e-5) + mean_i w_i log(sum_j exp(f(e_i) . f(e_j)
  / tau_sc) + 1e-5) over the batch's distinct users u and items i, pushing nodes apart against
  over-smoothing. Weight w = 1.2 where the two distillation gradients of that node's embedding,
  summed, agree with the main task's gradient no better (cosine) than they agree with each other,
  else 0.8 (the authors' gradient-similarity rule);
* ``l2`` x the squared norm of the student's embedding tables.

Hyper-parameters and their sources. Fixed by the DQRec paper for every baseline: dim=64, Adam
lr=1e-3, batch_size=1024 (teacher and student). The authors' published defaults (HKUDS/SimRec,
methods/SimRec/Params.py): teacher 2 LightGCN layers, cd_reg=1e-2, soft_reg=1, sc_reg=1,
tau_soft=0.03, tau_cd=0.1, tau_sc=1, n_distill_triples (``topRange``)=100000, l2=1e-7, Xavier
initialisation of the student. Deviation: the teacher is our LightGCN with LightGCN's own
regulariser (batch L2 1e-4 on ego embeddings, N(0, 0.1^2) init) where the authors' teacher script
uses 1e-7 x the squared norm of all parameters and Xavier init. Early stopping on our validation
criterion (teacher and student each) replaces the authors' fixed epoch count.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from dqrec.baselines.graph import EmbeddingRecommender, init_embedding, no_history
from dqrec.baselines.hccf import info_nce
from dqrec.baselines.lightgcn import LightGCN


class StudentMLP(nn.Module):
    def __init__(self, n_users, user, item, dim, generator):
        super().__init__()
        self.n_users, self.user, self.item = n_users, user, item
        self.w = init_embedding(dim, dim, np.zeros(dim, bool), generator, None)  # W (d, d)

    def features(self, e: torch.Tensor) -> torch.Tensor:
        """f(e) = LeakyReLU_0.5(e W) + e, row-wise."""
        return nn.functional.leaky_relu(e @ self.w, 0.5) + e

    def embeddings(self):
        return self.features(self.user), self.features(self.item)


def soft_target_bce(teacher_diff: torch.Tensor, student_diff: torch.Tensor, temperature: float) -> torch.Tensor:
    """Prediction-level distillation: BCE of sigma(student / t) against the soft target sigma(teacher / t)."""
    p, q = torch.sigmoid(teacher_diff / temperature), torch.sigmoid(student_diff / temperature)
    return -(p * torch.log(q + 1e-8) + (1 - p) * torch.log(1 - q + 1e-8)).mean()


def log_partition(anchor: torch.Tensor, others: torch.Tensor, temperature: float) -> torch.Tensor:
    """(len(anchor),) log(sum_m exp(anchor . others_m / t) + 1e-5), computed stably."""
    return torch.logaddexp(torch.logsumexp(anchor @ others.T / temperature, -1),
                           torch.tensor(math.log(1e-5), device=anchor.device))


def gradient_weights(g_cd: torch.Tensor, g_soft: torch.Tensor, g_main: torch.Tensor) -> torch.Tensor:
    """Per row: 1.2 where cos(g_cd + g_soft, g_main) <= cos(g_cd, g_soft), else 0.8."""
    n = lambda g: nn.functional.normalize(g, dim=-1)  # noqa: E731
    sim_distill = (n(g_cd) * n(g_soft)).sum(-1)
    sim_task = (n(g_cd + g_soft) * n(g_main)).sum(-1)
    return torch.where(sim_task <= sim_distill, 1.2, 0.8)


class SimRec(EmbeddingRecommender):
    """SimRec: an MLP student distilled from a LightGCN teacher (see the module docstring)."""

    name = "SimRec"

    def __init__(self, dim: int = 64, teacher_layers: int = 2, cd_reg: float = 1e-2, soft_reg: float = 1.0,
                 sc_reg: float = 1.0, tau_soft: float = 0.03, tau_cd: float = 0.1, tau_sc: float = 1.0,
                 n_distill_triples: int = 100_000, l2: float = 1e-7, epochs: int = 200, lr: float = 1e-3,
                 batch_size: int = 1024, patience: int = 5, seed: int = 0, device: str = "auto", progress: bool = True):
        self._check(dim, epochs, lr, batch_size, patience, teacher_layers=teacher_layers, cd_reg=cd_reg,
                    soft_reg=soft_reg, sc_reg=sc_reg, n_distill_triples=n_distill_triples, l2=l2)
        if min(tau_soft, tau_cd, tau_sc) <= 0 or teacher_layers < 2 or n_distill_triples < 1:
            raise ValueError("need positive temperatures, teacher_layers >= 2 (its layers >= 2 are distilled) "
                             "and n_distill_triples >= 1")
        self.dim, self.teacher_layers, self.cd_reg, self.soft_reg, self.sc_reg = dim, teacher_layers, cd_reg, soft_reg, sc_reg
        self.tau_soft, self.tau_cd, self.tau_sc = tau_soft, tau_cd, tau_sc
        self.n_distill_triples, self.l2 = n_distill_triples, l2
        self.epochs, self.lr, self.batch_size, self.patience = epochs, lr, batch_size, patience
        self.seed, self.device, self.progress = seed, device, progress

    def make_teacher(self) -> LightGCN:
        return LightGCN(dim=self.dim, n_layers=self.teacher_layers, readout="sum", epochs=self.epochs, lr=self.lr,
                        batch_size=self.batch_size, patience=self.patience, seed=self.seed, device=self.device,
                        progress=self.progress)

    def fit(self, split, validate=None):
        self.teacher_ = self.make_teacher().fit(split, validate=validate)
        with torch.no_grad():
            layers = self.teacher_.net_.layers()
            self.teacher_user_, self.teacher_item_ = self.teacher_.user_emb_, self.teacher_.item_emb_
            self.teacher_high_ = sum(layers[2:])  # ((U + I), d): the high-order embeddings distilled
        return super().fit(split, validate)

    def _build(self, split, generator):
        cold_users, cold_items = no_history(split.train, split.n_users, split.n_items)
        user = init_embedding(split.n_users, self.dim, cold_users, generator, None)
        item = init_embedding(split.n_items, self.dim, cold_items, generator, None)
        return StudentMLP(split.n_users, user, item, self.dim, generator)

    def _samples(self, split):
        """(u, i) training positives plus ``n_distill_triples`` uniform random (user, item, item) triples."""
        t, n = self.triples_, self.n_distill_triples

        def batch(idx, rng):
            rand = (rng.integers(0, self.n_users_, n), rng.integers(0, self.n_items_, n), rng.integers(0, self.n_items_, n))
            return tuple(torch.from_numpy(np.asarray(a, np.int64)).to(self.device_)
                         for a in (t.users[idx], t.items[idx], *rand))

        return len(t), batch

    def _loss(self, batch):
        return sum(self.loss_terms(batch)[0].values())

    def loss_terms(self, batch) -> tuple[dict, tuple[torch.Tensor, torch.Tensor]]:
        """The student's loss terms (already weighted) and the adaptive weights (w_u, w_i) of one batch."""
        u, i, ru, ri, rj = batch
        net, n = self.net_, self.n_users_
        uu, ii = torch.unique(u), torch.unique(i)
        fu, fi = net.embeddings()
        high = self.teacher_high_
        cd = self.cd_reg * (info_nce(high[:n], net.user, uu, self.tau_cd, negatives=net.user)
                            + info_nce(high[n:], net.item, ii, self.tau_cd, negatives=net.item))
        t_diff = (self.teacher_user_[ru] * (self.teacher_item_[ri] - self.teacher_item_[rj])).sum(-1)
        s_diff = (fu[ru] * (fi[ri] - fi[rj])).sum(-1)
        soft = self.soft_reg * soft_target_bce(t_diff, s_diff, self.tau_soft)
        main = -(fu[u] * fi[i]).sum(-1).mean()
        grads = [torch.autograd.grad(term, (net.user, net.item), retain_graph=True, allow_unused=True)
                 for term in (cd, soft, main)]
        grads = [[torch.zeros_like(p) if g is None else g for g, p in zip(gs, (net.user, net.item))] for gs in grads]
        w_u = gradient_weights(*(g[0][uu] for g in grads))
        w_i = gradient_weights(*(g[1][ii] for g in grads))
        sc = self.sc_reg * ((w_u * log_partition(fu[uu], fi, self.tau_sc)).mean()
                            + (w_u * log_partition(fu[uu], fu, self.tau_sc)).mean()
                            + (w_i * log_partition(fi[ii], fi, self.tau_sc)).mean())
        reg = self.l2 * (net.user.pow(2).sum() + net.item.pow(2).sum())
        return dict(main=main, contrast_distill=cd, soft_target_distill=soft, contrast_reg=sc, l2=reg), (w_u, w_i)

"""MAERec: graph masked autoencoder for sequential recommendation (Ye et al., SIGIR 2023).

The pieces (paper Sec. 3; :mod:`dqrec.baselines.transition_graph` holds the graph operations):

1. Item transition graph G from the *training* sequences only: an edge between two items at most
   ``distance`` steps apart in some user's chronological training sequence (Sec. 3.1).
2. Adaptive path masking (Sec. 3.2): every ``mask_steps`` batches, ``n_seeds`` seed items are drawn by
   their semantic consistency with their k-hop neighbourhood plus Gumbel noise, and the edges on paths
   of up to ``mask_depth`` hops from them are masked (the frontier thinned by ``path_prob``^k per hop).
   The consistency score enters the loss as -mean(score) times a task-adaptive reward: 1 when the last
   next-item loss decrease beat the mean decrease since the previous mask, else ``reward_eps`` (Eq. 6-8).
3. Graph autoencoder (Sec. 3.3): a ``n_gcn_layers`` LightGCN-style encoder over the kept edges,
   D^-1/2 (A + I) D^-1/2, item representation = the sum of its layers; the decoder scores an item pair
   by an MLP over the products of the two items' layer embeddings (layers 0..L-1 pairwise, as the
   authors' code), and reconstructs each sampled masked edge against ``n_reconstruction_negatives``
   corrupted pairs (half with the head, half with the tail replaced): -sum pos / (pos + sum neg) of
   exp(MLP) scores over at most ``reconstruction_batch`` masked edges (the authors' loss, as written).
4. Sequence encoder (Sec. 3.4): the shared causal transformer
   (:class:`~dqrec.baselines.sequential.SequenceEncoder`) over the history's graph-encoded item
   representations; the next-item loss is binary cross-entropy with one sampled negative (the
   authors' ``cross_entropy``), scores are dot products with the graph-encoded items. At scoring time
   the encoder runs on the whole (unmasked) training graph. Training sequences as SASRec's
   (``train_on="sequences"``, the default: windows of each user's timeline with the loss at every
   position, as the authors' ``SeqRecTrnDataset`` feeds ``target_pos = items[1:]``; or ``"prefixes"``).

Total loss per batch: next-item BCE + reconstruction (+ the masking term on re-masking batches), with
the authors' L2 regulariser 1e-6 * sum ||W||^2 given to Adam as weight_decay 2e-6 (the same gradient).

Hyper-parameters (source): dim 64, Adam lr 1e-3, batch 1024 (the DQRec paper, for every baseline;
MAERec's code uses latdim 32, batch 256); 2 transformer blocks, 4 heads, dropout 0.3, max_len 50,
2 GCN layers, mask_depth 3, path_prob 0.5, 50 seeds, re-mask every 10 batches, 40 reconstruction
negatives, 2048 reconstruction edges per batch, reward eps 0.2, reg 1e-6 (the authors' ``params.py``).
``distance`` = 3: the authors' ``construct.py`` takes it as an argument without a default; 3 is ours.
Deviations: the authors' transformer returns the sum of every layer's output and learns Xavier-
initialised positions; the shared encoder returns the last layer's output (BERT init). The
consistency score averages over all walks of 1..k hops (the authors subtract the walk back to the
item); the graph has no self-loop edges to mask (the authors' adjacency includes them). Early
stopping on validation (the authors run 20 epochs and report the best test epoch).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from dqrec.baselines.sasrec import SASRec
from dqrec.baselines.transition_graph import (
    adjacency,
    consistency_scores,
    mask_paths,
    normalized_adjacency,
    transition_graph,
)


def in_sorted(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Boolean array of ``query``'s shape: which of its values are in ``keys`` (sorted ascending). The same
    as ``np.isin(query, keys)``, by binary search: isin hashes all of ``keys`` on every call, which was
    half of a MAERec training step on ML-1M (477k edge keys, 82k corrupted pairs per step)."""
    if not len(keys):
        return np.zeros(np.shape(query), bool)
    at = np.searchsorted(keys, query).clip(max=len(keys) - 1)
    return keys[at] == query


class GraphItemEmbedding(nn.Module):
    """Item ids -> graph-encoded representations; drop-in for the encoder's ``nn.Embedding`` of items.

    ``propagate(adj)`` runs the GCN on a normalised adjacency and keeps its layers for the batch;
    ``weight`` is (n_items + 2, dim): the sum of the layers, then the padding and mask rows.
    """

    def __init__(self, n_items: int, dim: int, n_layers: int):
        super().__init__()
        self.n_items, self.n_layers = n_items, n_layers
        self.ego = nn.Embedding(n_items + 2, dim, padding_idx=n_items)
        self.layers_ = None

    def propagate(self, adj: torch.Tensor) -> list[torch.Tensor]:
        layers = [self.ego.weight[:self.n_items]]
        for _ in range(self.n_layers):
            layers.append(torch.sparse.mm(adj, layers[-1]))
        self.layers_ = layers
        return layers

    @property
    def weight(self) -> torch.Tensor:
        if self.layers_ is None:
            raise RuntimeError("call propagate(adj) first")
        return torch.cat([sum(self.layers_), self.ego.weight[self.n_items:]])

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.weight)


class EdgeDecoder(nn.Module):
    """Pair (a, b) -> exp(sigmoid(MLP([e_a^(i) * e_b^(j)]_{i,j < L}))), the authors' reconstruction scorer."""

    def __init__(self, dim: int, n_layers: int):
        super().__init__()
        self.n_layers = n_layers
        self.mlp = nn.Sequential(nn.Linear(dim * n_layers ** 2, dim * n_layers), nn.ReLU(),
                                 nn.Linear(dim * n_layers, dim), nn.ReLU(), nn.Linear(dim, 1), nn.Sigmoid())
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, layers: list[torch.Tensor], a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        feats = [layers[i][a] * layers[j][b] for i in range(self.n_layers) for j in range(self.n_layers)]
        return torch.exp(self.mlp(torch.cat(feats, -1)).squeeze(-1))


class MAERecNet(nn.Module):
    """The shared transformer with graph-encoded items, plus the edge decoder."""

    def __init__(self, encoder: nn.Module, n_items: int, dim: int, n_gcn_layers: int):
        super().__init__()
        encoder.item_embedding = GraphItemEmbedding(n_items, dim, n_gcn_layers)
        nn.init.xavier_uniform_(encoder.item_embedding.ego.weight)  # the authors' init of item embeddings
        with torch.no_grad():
            encoder.item_embedding.ego.weight[n_items].zero_()
        self.encoder, self.decoder = encoder, EdgeDecoder(dim, n_gcn_layers)

    @property
    def item_embedding(self) -> GraphItemEmbedding:
        return self.encoder.item_embedding

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        return self.encoder(seq)


class MAERec(SASRec):
    """MAERec (see the module docstring): SASRec's training batches and negatives, its own net and loss."""

    causal, norm_first, activation = True, False, "gelu"
    train_schemes = ("sequences", "prefixes")
    training_state = ("mask_rng_", "steps_", "main_losses_", "masked_", "masked_adj_", "rewards_")

    def __init__(self, dim: int = 64, max_len: int = 50, n_blocks: int = 2, n_heads: int = 4, dropout: float = 0.3,
                 distance: int = 3, n_gcn_layers: int = 2, mask_depth: int = 3, path_prob: float = 0.5,
                 n_seeds: int = 50, mask_steps: int = 10, n_reconstruction_negatives: int = 40,
                 reconstruction_batch: int = 2048, reward_eps: float = 0.2, reg: float = 1e-6, epochs: int = 200,
                 lr: float = 1e-3, batch_size: int = 1024, patience: int = 5, seed: int = 0, device: str = "auto",
                 progress: bool = True, train_on: str = "sequences"):
        super().__init__(dim, max_len, n_blocks, n_heads, dropout, epochs, lr, batch_size, 2 * reg, patience, seed,
                         device, progress, train_on)
        positive = {"distance": distance, "n_gcn_layers": n_gcn_layers, "mask_depth": mask_depth, "n_seeds": n_seeds,
                    "mask_steps": mask_steps, "reconstruction_batch": reconstruction_batch}
        for name, value in positive.items():
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if n_reconstruction_negatives < 2 or n_reconstruction_negatives % 2:
            raise ValueError(f"n_reconstruction_negatives must be even and >= 2, got {n_reconstruction_negatives}")
        if not 0 < path_prob <= 1 or not 0 <= reward_eps <= 1 or reg < 0:
            raise ValueError(f"need 0 < path_prob <= 1, 0 <= reward_eps <= 1, reg >= 0; got {path_prob}, "
                             f"{reward_eps}, {reg}")
        self.distance, self.n_gcn_layers, self.mask_depth, self.path_prob = distance, n_gcn_layers, mask_depth, path_prob
        self.n_seeds, self.mask_steps, self.n_reconstruction_negatives = n_seeds, mask_steps, n_reconstruction_negatives
        self.reconstruction_batch, self.reward_eps, self.reg = reconstruction_batch, reward_eps, reg

    # ------------------------------------------------------------------ setup and training
    def setup(self, split) -> None:
        self.edges_ = transition_graph(split.train, split.n_items, self.distance)
        self.adj_ = adjacency(self.edges_, split.n_items)
        self.edge_keys_ = np.sort(self.edges_[:, 0] * split.n_items + self.edges_[:, 1])
        self.full_adj_ = normalized_adjacency(self.edges_, split.n_items)
        self.mask_rng_ = np.random.default_rng([self.seed, 1])
        self.steps_, self.main_losses_, self.masked_, self.rewards_ = 0, [], None, []
        super().setup(split)

    def build_net(self, split) -> nn.Module:
        return MAERecNet(super().build_net(split), split.n_items, self.dim, self.n_gcn_layers)

    def remask(self) -> torch.Tensor:
        """Draw seeds by consistency + Gumbel noise, mask their paths; returns the scores (with grad)."""
        scores = consistency_scores(self.adj_, self.net_.item_embedding.ego.weight[:self.n_items_].cpu(),
                                    self.mask_depth, self.path_prob, self.mask_rng_)
        seeds = torch.topk(scores.detach(), min(self.n_seeds, self.n_items_)).indices.numpy()
        kept, self.masked_ = mask_paths(self.edges_, seeds, self.mask_depth, self.path_prob, self.mask_rng_)
        self.masked_adj_ = normalized_adjacency(kept, self.n_items_).to(self.device_)
        return scores.to(self.device_)

    def reconstruction_loss(self, layers: list[torch.Tensor]) -> torch.Tensor:
        """-sum pos / (pos + sum neg) over a sample of the masked edges (the authors' decoder loss)."""
        rng, n = self.mask_rng_, self.n_items_
        pos = self.masked_[rng.permutation(len(self.masked_))[:self.reconstruction_batch]]
        if not len(pos):
            return torch.zeros((), device=self.device_)
        half = self.n_reconstruction_negatives // 2
        heads = np.repeat(pos[:, :1], 2 * half, 1)
        tails = np.repeat(pos[:, 1:], 2 * half, 1)
        heads[:, half:] = rng.integers(0, n, (len(pos), half))  # corrupt the head
        tails[:, :half] = rng.integers(0, n, (len(pos), half))  # corrupt the tail
        for _ in range(3):  # redraw corrupted pairs that are edges of the graph (or self-pairs)
            lo, hi = np.minimum(heads, tails), np.maximum(heads, tails)
            bad = in_sorted(self.edge_keys_, lo * n + hi) | (lo == hi)
            if not bad.any():
                break
            bad_tail, bad_head = bad.copy(), bad.copy()
            bad_tail[:, half:], bad_head[:, :half] = False, False
            tails[bad_tail] = rng.integers(0, n, bad_tail.sum())
            heads[bad_head] = rng.integers(0, n, bad_head.sum())
        dev, dec = self.device_, self.net_.decoder
        pos_score = dec(layers, torch.from_numpy(pos[:, 0]).to(dev), torch.from_numpy(pos[:, 1]).to(dev))
        neg_score = dec(layers, torch.from_numpy(heads).to(dev), torch.from_numpy(tails).to(dev)).sum(-1)
        return -(pos_score / (pos_score + neg_score + 1e-8)).sum()

    def reward(self) -> float:
        """1 if the last next-item loss decrease beat the mean decrease since the last re-mask, else eps."""
        losses = self.main_losses_
        if len(losses) < 3:
            return 1.0
        mean_decrease = (losses[0] - losses[-2]) / (len(losses) - 2)
        return 1.0 if losses[-2] - losses[-1] > mean_decrease else self.reward_eps

    def train_loss(self, batch: dict) -> torch.Tensor:
        scores = self.remask() if self.steps_ % self.mask_steps == 0 else None
        self.steps_ += 1
        layers = self.net_.item_embedding.propagate(self.masked_adj_)
        rep = self.represent(batch)
        emb = self.net_.item_embedding
        pos, neg = (rep * emb(batch["target"])).sum(-1), (rep * emb(batch["negative"])).sum(-1)
        main = -(F.logsigmoid(pos) + F.logsigmoid(-neg)).mean()
        self.main_losses_.append(float(main.detach()))
        loss = main + self.reconstruction_loss(layers)
        if scores is not None:
            reward = self.reward()
            self.rewards_.append(reward)
            self.main_losses_ = self.main_losses_[-1:]
            loss = loss - scores.mean() * reward
        return loss

    # ------------------------------------------------------------------ score
    def score(self, batch: pd.DataFrame, items: np.ndarray) -> np.ndarray:
        """(len(batch), len(items)): dot products with the items encoded on the whole training graph."""
        with torch.no_grad():
            self.net_.item_embedding.propagate(self.full_adj_.to(self.device_))
        return super().score(batch, items)

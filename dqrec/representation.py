"""The pre-trained, feature-only dual tower that produces the representations DQ-VAE quantises.

Paper Section 4.2.1: the model sees only features, never IDs, so that what it learns generalises
across users and items. For a sample (u, i, t):

    user tower:  [phi_U(u), mean_{j in S_u} phi_I(j)]  -> MLP (GELU) -> z_u in R^64
    item tower:  [phi_I(i), mean_{v in S_i} phi_U(v)]  -> MLP (GELU) -> z_i in R^64

where phi_U / phi_I embed an entity's attributes (sum of one embedding per categorical field, plus
the mean embedding of its genres). A dataset without user attributes has phi_U = 0, so its user
tower sees only the sequence, as the paper intends.

Training objective: in-batch sampled softmax over L2-normalised embeddings (temperature tau). We use
it rather than BPR because every step then scores each positive against the B-1 other items of the
batch, which trains a well-spread embedding space in a few CPU epochs; the embedding is only an
input to DQ-VAE, so its geometry matters more than its ranking loss. Training uses the train split
only.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .data import FeatureTable, Split


class FeatureEmbedding(nn.Module):
    """phi(x): (n,) entity indices -> (n, dim), the sum of field embeddings of a FeatureTable."""

    def __init__(self, table: FeatureTable, dim: int):
        super().__init__()
        self.register_buffer("categorical", torch.as_tensor(table.categorical, dtype=torch.long))
        multi = torch.tensor(table.multi_hot, dtype=torch.float32)
        self.register_buffer("multi", multi / multi.sum(1, keepdim=True).clamp(min=1))
        self.fields = nn.ModuleList(nn.Embedding(c, dim) for c in table.cardinalities)
        self.genres = nn.Linear(multi.shape[1], dim, bias=False) if multi.shape[1] else None
        self.dim = dim

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(*idx.shape, self.dim, device=idx.device)
        for f, emb in enumerate(self.fields):
            out = out + emb(self.categorical[idx, f])
        if self.genres is not None:
            out = out + self.genres(self.multi[idx])
        return out


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over axis 1 of (B, S, d) ``values`` where (B, S) ``mask`` is true; zeros if none."""
    m = mask.unsqueeze(-1).float()
    return (values * m).sum(1) / m.sum(1).clamp(min=1)


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with GELU between them (paper Eq. 21); no activation after the last."""
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.GELU()]
    return nn.Sequential(*layers[:-1])


class FeatureTowers(nn.Module):
    def __init__(self, split: Split, dim: int, hidden: int):
        super().__init__()
        self.phi_user = FeatureEmbedding(split.user_features, dim)
        self.phi_item = FeatureEmbedding(split.item_features, dim)
        self.user_mlp = mlp([2 * dim, hidden, dim])
        self.item_mlp = mlp([2 * dim, hidden, dim])

    def user(self, users: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
        """users (B,), seq (B, S) item indices with -1 padding -> (B, dim) unit vectors."""
        pooled = masked_mean(self.phi_item(seq.clamp(min=0)), seq >= 0)
        return nn.functional.normalize(self.user_mlp(torch.cat([self.phi_user(users), pooled], 1)), dim=1)

    def item(self, items: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
        pooled = masked_mean(self.phi_user(seq.clamp(min=0)), seq >= 0)
        return nn.functional.normalize(self.item_mlp(torch.cat([self.phi_item(items), pooled], 1)), dim=1)


class RepresentationModel:
    """Fit on a Split's train samples; embed any sample's user side or item side.

    >>> rep = RepresentationModel(epochs=3).fit(split)
    >>> Z_users = rep.entity_embeddings(split, "user")  # (n_users, 64), NaN rows: no train sample
    """

    def __init__(self, dim: int = 64, hidden: int = 128, epochs: int = 3, batch_size: int = 1024, lr: float = 1e-3,
                 temperature: float = 0.1, seed: int = 0, progress: bool = True):
        self.dim, self.hidden, self.epochs, self.batch_size = dim, hidden, epochs, batch_size
        self.lr, self.temperature, self.seed, self.progress = lr, temperature, seed, progress

    def fit(self, split: Split) -> "RepresentationModel":
        torch.manual_seed(self.seed)
        self.towers_ = FeatureTowers(split, self.dim, self.hidden)
        opt = torch.optim.Adam(self.towers_.parameters(), lr=self.lr)
        rows = split.train.index.to_numpy()
        u, i = (torch.tensor(split.samples[c].to_numpy()) for c in ("user", "item"))
        useq, iseq = torch.as_tensor(split.user_seq, dtype=torch.long), torch.as_tensor(split.item_seq, dtype=torch.long)
        gen = torch.Generator().manual_seed(self.seed)
        self.loss_history_ = []
        for epoch in range(self.epochs):
            perm = torch.tensor(rows)[torch.randperm(len(rows), generator=gen)]
            total, bar = 0.0, tqdm(range(0, len(perm), self.batch_size), desc=f"representation epoch {epoch + 1}",
                                   disable=not self.progress, leave=False)
            for start in bar:
                b = perm[start:start + self.batch_size]
                zu, zi = self.towers_.user(u[b], useq[b]), self.towers_.item(i[b], iseq[b])
                logits = zu @ zi.T / self.temperature
                # Duplicated items in a batch are not negatives of each other.
                same = i[b][:, None] == i[b][None, :]
                logits = logits.masked_fill(same & ~torch.eye(len(b), dtype=torch.bool), float("-inf"))
                loss = nn.functional.cross_entropy(logits, torch.arange(len(b)))
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(b)
            self.loss_history_.append(total / len(rows))
        self.towers_.eval()
        return self

    @torch.no_grad()
    def embed(self, split: Split, rows: np.ndarray, side: str) -> np.ndarray:
        """(len(rows), dim) float32 top embeddings of the given samples' user or item side."""
        if not hasattr(self, "towers_"):
            raise RuntimeError("RepresentationModel is not fitted; call fit(split) first")
        if side not in ("user", "item"):
            raise ValueError(f"side must be 'user' or 'item', got {side!r}")
        rows = np.asarray(rows)
        ids = torch.as_tensor(split.samples[side].to_numpy()[rows])
        seq = torch.as_tensor((split.user_seq if side == "user" else split.item_seq)[rows], dtype=torch.long)
        tower = self.towers_.user if side == "user" else self.towers_.item
        out = [tower(ids[s:s + 8192], seq[s:s + 8192]) for s in range(0, len(rows), 8192)]
        return torch.cat(out).numpy() if out else np.zeros((0, self.dim), np.float32)

    def sample_embeddings(self, split: Split, side: str) -> np.ndarray:
        """(N, dim): the representation of every sample's user (or item) side at its time."""
        return self.embed(split, np.arange(len(split.samples)), side)

    def entity_embeddings(self, split: Split, side: str) -> np.ndarray:
        """(n_users or n_items, dim): each entity at its most recent training sample (NaN if none)."""
        last = split.last_train_sample(side)
        out = np.full((len(last), self.dim), np.nan, np.float32)
        has = last >= 0
        out[has] = self.embed(split, last[has], side)
        return out

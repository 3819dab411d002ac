"""DQRec and its base, the ID dual tower (paper Section 4.3.3, Eqs. 20-23).

User tower input (Eq. 20), each part 64-d:

    e_u = [ e_u^ID,  F_1(c_1) .. F_L(c_L),  mean_{i in S_u} e_i^ID,  mean_{v in Q_u^all} e_v^ID ]

then an MLP with GELU (Eq. 21) to z_u; the item tower mirrors it with S_i and Q_i^all. The score is
y_ui = sigma(z_u . z_i) (Eq. 22), trained with BPR against one sampled negative (Eq. 23). ID tables
are shared between the towers' own-ID part and the pooled parts. :class:`DualTower` is the same
model with every augmentation switched off (IDs + sequence pooling): the base DQRec improves on.

States. A sample's user side is its own state: S_u strictly before t, the semantic ID of its own
representation, neighbours from the training store. An item scored as a candidate (a BPR negative,
or any item at evaluation) takes the state of its latest sample strictly before a reference time:
the positive's time for a training negative, the start of the evaluated period at evaluation.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from .augment import SideAugmentation, augment_side
from .baselines.mf import sample_negatives
from .data import Split
from .representation import RepresentationModel, masked_mean, mlp


@dataclass
class DQRecConfig:
    """Hyper-parameters; defaults are the paper's (Section 6.1.4) where it gives them."""

    dim: int = 64
    hidden: int = 256
    lr: float = 1e-3
    batch_size: int = 1024
    epochs: int = 20
    patience: int = 3
    seed: int = 0
    n_layers: int = 4  # L
    codebook_size: int = 128  # J
    beta: float = 0.25
    k: int = 30  # K
    k_latent: int = 2  # K'
    representation_epochs: int = 3
    user_feature_aug: bool = True
    item_feature_aug: bool = True
    user_linkage_aug: bool = True
    item_linkage_aug: bool = True
    latent_exploration: bool = True
    progress: bool = True


class SideState:
    """Per-sample inputs of one tower as tensors, with an extra last row for 'no state' (cold)."""

    def __init__(self, ids: np.ndarray, seq: np.ndarray, aug: SideAugmentation | None, codebook_size: int):
        n = len(ids)
        self.cold = n

        def extend(a, fill):
            return torch.as_tensor(np.concatenate([a, np.full((1, a.shape[1]), fill, a.dtype)]), dtype=torch.long)

        self.seq = extend(seq, -1)
        self.codes = extend(aug.codes, codebook_size) if aug is not None else None
        self.neighbours = extend(aug.neighbours, -1) if aug is not None else None

    def rows(self, rows: np.ndarray) -> torch.Tensor:
        rows = torch.tensor(rows, dtype=torch.long)
        return torch.where(rows < 0, torch.full_like(rows, self.cold), rows)


class Tower(nn.Module):
    """One side of Eq. 20-21: own ID, semantic-ID embeddings, pooled sequence, pooled neighbours."""

    def __init__(self, dim: int, hidden: int, n_layers: int, codebook_size: int, feature_aug: bool, linkage_aug: bool):
        super().__init__()
        self.semantic = nn.ModuleList(nn.Embedding(codebook_size + 1, dim) for _ in range(n_layers)) if feature_aug else None
        self.linkage_aug = linkage_aug
        parts = 2 + (n_layers if feature_aug else 0) + (1 if linkage_aug else 0)
        self.mlp = mlp([parts * dim, hidden, dim])

    def forward(self, own: torch.Tensor, seq: torch.Tensor, codes, neighbours, own_table: nn.Embedding,
                other_table: nn.Embedding) -> torch.Tensor:
        parts = [own_table(own + 1), masked_mean(other_table(seq + 1), seq >= 0)]
        if self.semantic is not None:
            parts += [emb(codes[:, layer]) for layer, emb in enumerate(self.semantic)]
        if self.linkage_aug:
            parts.append(masked_mean(own_table(neighbours + 1), neighbours >= 0))
        return self.mlp(torch.cat(parts, 1))


class DQRecNet(nn.Module):
    def __init__(self, n_users: int, n_items: int, cfg: DQRecConfig):
        super().__init__()
        self.user_emb = nn.Embedding(n_users + 1, cfg.dim, padding_idx=0)  # row 0: padding
        self.item_emb = nn.Embedding(n_items + 1, cfg.dim, padding_idx=0)
        for emb in (self.user_emb, self.item_emb):
            nn.init.normal_(emb.weight, std=0.1)
            emb.weight.data[0] = 0
        self.user_tower = Tower(cfg.dim, cfg.hidden, cfg.n_layers, cfg.codebook_size, cfg.user_feature_aug,
                                cfg.user_linkage_aug)
        self.item_tower = Tower(cfg.dim, cfg.hidden, cfg.n_layers, cfg.codebook_size, cfg.item_feature_aug,
                                cfg.item_linkage_aug)


class DQRec:
    """The two-stage recommender: representation -> DQ-VAE semantic IDs -> augmented dual tower.

    ``fit(split)`` trains on the train split with early stopping on the validation split;
    ``score(batch, items)`` is the evaluator's scorer interface.
    """

    def __init__(self, config: DQRecConfig | None = None, **overrides):
        self.config = DQRecConfig(**{**asdict(config or DQRecConfig()), **overrides})

    @property
    def uses_semantic_ids(self) -> bool:
        c = self.config
        return c.user_feature_aug or c.item_feature_aug or c.user_linkage_aug or c.item_linkage_aug

    # ------------------------------------------------------------------ stage 1: augmentation
    def _augment(self, split: Split) -> dict:
        c = self.config
        if not self.uses_semantic_ids:
            return {"user": None, "item": None}
        self.representation_ = RepresentationModel(dim=c.dim, epochs=c.representation_epochs, seed=c.seed,
                                                   progress=c.progress).fit(split)
        out = {}
        for side in ("user", "item"):
            emb = self.representation_.sample_embeddings(split, side)
            out[side] = augment_side(split, emb, side, c.n_layers, c.codebook_size, c.beta, c.k,
                                     c.k_latent if c.latent_exploration else 0, c.seed)
        return out

    # ------------------------------------------------------------------ stage 2: the dual tower
    def fit(self, split: Split, augmentation: dict | None = None, evaluate_valid=None) -> "DQRec":
        """Train on ``split.train``; early stopping on ``evaluate_valid(self) -> float`` (higher is better).

        ``augmentation``: precomputed {"user": SideAugmentation, "item": ...} to share across runs.
        ``evaluate_valid`` defaults to in-batch NDCG@10 on the validation split.
        """
        c = self.config
        torch.manual_seed(c.seed)
        rng = np.random.default_rng(c.seed)
        self.split_ = split
        self.augmentation_ = augmentation if augmentation is not None else self._augment(split)
        self.users_ = SideState(split.samples.user.to_numpy(), split.user_seq, self.augmentation_["user"], c.codebook_size)
        self.items_ = SideState(split.samples.item.to_numpy(), split.item_seq, self.augmentation_["item"], c.codebook_size)
        self.net_ = DQRecNet(split.n_users, split.n_items, c)
        opt = torch.optim.Adam(self.net_.parameters(), lr=c.lr)
        if evaluate_valid is None:
            from .evaluate import validation_criterion

            evaluate_valid = validation_criterion(split, c.seed)

        train = split.train
        rows = train.index.to_numpy()
        users, times = train.user.to_numpy(), train.timestamp.to_numpy()
        train_keys = np.sort(users.astype(np.int64) * split.n_items + train.item.to_numpy())
        lookup = ItemStateLookup(train)
        best, bad, self.history_ = -np.inf, 0, []
        for epoch in range(c.epochs):
            self.net_.train()
            perm = rng.permutation(len(rows))
            total = 0.0
            bar = tqdm(range(0, len(perm), c.batch_size), desc=f"{type(self).__name__} epoch {epoch + 1}",
                       disable=not c.progress, leave=False)
            for start in bar:
                b = perm[start:start + c.batch_size]
                neg = sample_negatives(users[b], train_keys, split.n_items, rng)
                z_u = self._user(rows[b])
                z_pos = self._item(train.item.to_numpy()[b], rows[b])
                z_neg = self._item(neg, lookup.latest_before(neg, times[b]))
                loss = -nn.functional.logsigmoid((z_u * z_pos).sum(1) - (z_u * z_neg).sum(1)).mean()  # Eq. 23
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(b)
            self.net_.eval()
            score = evaluate_valid(self)
            self.history_.append(dict(epoch=epoch + 1, loss=total / len(rows), valid=score))
            if score > best:
                best, bad, state = score, 0, copy.deepcopy(self.net_.state_dict())
            else:
                bad += 1
                if bad >= c.patience:
                    break
        self.net_.load_state_dict(state)
        self.net_.eval()
        return self

    def _user(self, rows: np.ndarray) -> torch.Tensor:
        r = self.users_.rows(rows)
        own = torch.as_tensor(self.split_.samples.user.to_numpy()[rows])
        return self.net_.user_tower(own, self.users_.seq[r], None if self.users_.codes is None else self.users_.codes[r],
                                    None if self.users_.neighbours is None else self.users_.neighbours[r],
                                    self.net_.user_emb, self.net_.item_emb)

    def _item(self, items: np.ndarray, rows: np.ndarray) -> torch.Tensor:
        r = self.items_.rows(rows)
        return self.net_.item_tower(torch.as_tensor(items), self.items_.seq[r],
                                    None if self.items_.codes is None else self.items_.codes[r],
                                    None if self.items_.neighbours is None else self.items_.neighbours[r],
                                    self.net_.item_emb, self.net_.user_emb)

    # ------------------------------------------------------------------ scoring
    def for_part(self, part: str) -> "PartScorer":
        """A scorer for samples of ``part``: candidate items in their state before that part starts."""
        return PartScorer(self, part)

    def score(self, batch: pd.DataFrame, items: np.ndarray) -> np.ndarray:
        """Scorer interface for the test split (see :mod:`dqrec.evaluate`)."""
        return self.for_part("test").score(batch, items)


class PartScorer:
    def __init__(self, model: DQRec, part: str):
        split = model.split_
        if split.kind == "temporal":
            before = split.part(part).timestamp.min()
            rows = ItemStateLookup(split.samples).latest_before(np.arange(split.n_items), np.full(split.n_items, before))
        else:  # a random split has no 'before': use each item's last training state
            rows = split.last_train_sample("item")
        with torch.no_grad():
            self.item_z = model._item(np.arange(split.n_items), rows).numpy()
        self.model = model

    @torch.no_grad()
    def score(self, batch: pd.DataFrame, items: np.ndarray) -> np.ndarray:
        return self.model._user(batch.index.to_numpy()).numpy() @ self.item_z[items].T


class ItemStateLookup:
    """Row of each item's latest sample strictly before a time, among the given samples."""

    SHIFT = np.int64(1) << 33  # timestamps are Unix seconds < 2**33 (year 2242)

    def __init__(self, samples: pd.DataFrame):
        self.keys = samples.item.to_numpy(np.int64) * self.SHIFT + samples.timestamp.to_numpy(np.int64)
        order = np.argsort(self.keys, kind="stable")
        self.keys, self.rows = self.keys[order], samples.index.to_numpy()[order]

    def latest_before(self, items: np.ndarray, times: np.ndarray) -> np.ndarray:
        """(n,) sample rows, -1 where the item has no sample strictly before that time."""
        items = np.asarray(items, np.int64)
        pos = np.searchsorted(self.keys, items * self.SHIFT + np.asarray(times, np.int64), side="left") - 1
        ok = (pos >= 0) & (self.keys[pos.clip(min=0)] // self.SHIFT == items)
        return np.where(ok, self.rows[pos.clip(min=0)], -1)


class DualTower(DQRec):
    """The base model: IDs and sequence pooling, no semantic IDs, no neighbours."""

    def __init__(self, config: DQRecConfig | None = None, **overrides):
        off = dict(user_feature_aug=False, item_feature_aug=False, user_linkage_aug=False, item_linkage_aug=False,
                   latent_exploration=False)
        super().__init__(config, **{**overrides, **off})

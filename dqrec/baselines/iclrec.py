"""ICLRec: intent contrastive learning for sequential recommendation (Chen et al., WWW 2022).

Latent intents are the k-means clusters of sequence representations, learned in an EM loop (Section 4):

* **E-step** (before every epoch, Eq. 5-6): encode the history of every training sample, pool it (the
  mean over its item positions), and cluster the pooled vectors into K intents with faiss k-means; the
  centroids c_k are the intent prototypes;
* **M-step** (the epoch's batches): each sample's intent is the centroid nearest to its pooled
  representation from the batch's own next-item pass (detached, as the authors' code queries the clusters
  with that pass's output); two augmented views of its history (crop / mask / reorder, one drawn at random
  per view, :mod:`dqrec.baselines.cl4srec`), encoded together in one pass as the authors' code does, are
  pulled to that prototype by the intent contrastive loss (Eq. 10),
  NT-Xent between each view's pooled representation and the prototypes of the batch, averaged over the
  two views; optionally (``instance_weight``) the two views are also contrasted with each other (SeqCL,
  Eq. 7);
* L = L_NextItem + lambda L_ICL + beta L_SeqCL (Eq. 11); L_NextItem: binary cross-entropy with one
  sampled negative at the last position (the authors' code, inherited from S3-Rec; as :mod:`SASRec`).

Hyper-parameters (source): dim 64, Adam lr 1e-3, batch 1024 (DQRec paper); 2 blocks, 2 heads, dropout 0.5,
GELU, post-LN, K = 256 intents, lambda = 0.1, beta = 0 (SeqCL off), temperature 1, crop 0.2, mask 0.7,
reorder 0.2, mean pooling (the authors' code, github.com/salesforce/ICLRec: its ML-1M script
``--contrast_type IntentCL --num_intent_cluster 256 --intent_cf_weight 0.1 --cf_weight 0.0
--seq_representation_type mean`` and main.py's defaults); k-means: faiss, 20 iterations. Deviation: the
pooled mean runs over the history's items only (the authors' mean also counts padded positions).
"""
from __future__ import annotations

import faiss
import numpy as np
import torch

from dqrec.baselines.cl4srec import augment
from dqrec.baselines.sasrec import SASRec
from dqrec.baselines.sequential import info_nce, mask_id


class ICLRec(SASRec):
    """SASRec's next-item loss + intent (and optional instance) contrastive learning in an EM loop."""

    causal, norm_first, activation = True, False, "gelu"
    train_schemes = ("prefixes",)  # its views and intents are of whole per-sample histories
    training_state = ("generator_",)

    def __init__(self, dim: int = 64, max_len: int = 50, n_blocks: int = 2, n_heads: int = 2, dropout: float = 0.5,
                 n_intents: int = 256, intent_weight: float = 0.1, instance_weight: float = 0.0,
                 temperature: float = 1.0, crop_ratio: float = 0.2, mask_ratio: float = 0.7, reorder_ratio: float = 0.2,
                 kmeans_iterations: int = 20, epochs: int = 200, lr: float = 1e-3, batch_size: int = 1024,
                 weight_decay: float = 0.0, patience: int = 5, seed: int = 0, device: str = "auto",
                 progress: bool = True):
        super().__init__(dim, max_len, n_blocks, n_heads, dropout, epochs, lr, batch_size, weight_decay, patience,
                         seed, device, progress, train_on="prefixes")
        if n_intents < 1 or kmeans_iterations < 1 or intent_weight < 0 or instance_weight < 0 or temperature <= 0:
            raise ValueError("need n_intents >= 1, kmeans_iterations >= 1, intent_weight >= 0, instance_weight >= 0 "
                             f"and temperature > 0, got {n_intents}, {kmeans_iterations}, {intent_weight}, "
                             f"{instance_weight}, {temperature}")
        self.n_intents, self.intent_weight, self.instance_weight = n_intents, intent_weight, instance_weight
        self.temperature, self.crop_ratio, self.mask_ratio = temperature, crop_ratio, mask_ratio
        self.reorder_ratio = reorder_ratio
        self.kmeans_iterations = kmeans_iterations

    def pooled(self, seq: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) -> (B, dim): the mean over the history's items of the encoder outputs ``out`` (B, L, dim)
        of ``seq`` (encoded here when not given)."""
        real = (seq != self.n_items_).unsqueeze(-1).float()
        return ((self.net_(seq) if out is None else out) * real).sum(1) / real.sum(1).clamp(min=1.0)

    def represent(self, batch):
        """The next-item representation (last position), keeping in ``batch["pooled"]`` the detached pooled
        output of the same pass: the query of the batch's intents."""
        out = self.net_(batch["seq"])
        batch["pooled"] = self.pooled(batch["seq"], out.detach())
        return out[:, -1]

    def setup(self, split):
        self.generator_ = torch.Generator().manual_seed(self.seed)
        super().setup(split)

    @torch.no_grad()
    def start_epoch(self, epoch):
        """E-step: k-means of the pooled representations of every training sample's history."""
        self.net_.eval()
        reps = torch.cat([self.pooled(torch.from_numpy(self.history_[self.train_rows_[i:i + 4096]]).to(self.device_))
                          for i in range(0, len(self.train_rows_), 4096)]).float().cpu().numpy()
        self.net_.train()
        k = min(self.n_intents, len(reps))
        kmeans = faiss.Kmeans(reps.shape[1], k, niter=self.kmeans_iterations, seed=self.seed + epoch, verbose=False)
        kmeans.train(np.ascontiguousarray(reps, np.float32))
        self.intents_ = torch.from_numpy(kmeans.centroids).to(self.device_)

    def train_batch(self, rows, rng):
        batch = super().train_batch(rows, rng)
        seq = batch["seq"].cpu()
        batch["views"] = [augment(seq, self.n_items_, mask_id(self.n_items_),
                                  torch.from_numpy(rng.integers(0, 3, len(seq))), self.crop_ratio, self.mask_ratio,
                                  self.reorder_ratio, self.generator_).to(self.device_) for _ in range(2)]
        return batch

    def train_loss(self, batch):
        rec = super().train_loss(batch)  # sets batch["pooled"] (:meth:`represent`)
        views = self.pooled(torch.cat(batch["views"])).chunk(len(batch["views"]))
        prototypes = self.intents_[torch.cdist(batch["pooled"], self.intents_).argmin(1)]
        icl = sum(info_nce(v, prototypes, self.temperature) for v in views) / 2
        loss = rec + self.intent_weight * icl
        if self.instance_weight:
            loss = loss + self.instance_weight * info_nce(*views, self.temperature)
        return loss

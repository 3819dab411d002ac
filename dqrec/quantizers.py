"""Baseline quantisers with DQ-VAE's code budget (L layers of J codewords) and semantic-ID diagnostics.

Every quantiser has ``fit(Z)``, ``encode(Z) -> (N, L) int64`` in [0, J) and ``decode(codes) -> (N, d)``,
and is deterministic for a fixed seed:

* ``DQ-VAE`` (:class:`dqrec.dqvae.DQVAE`): SVD rotation, balanced column groups, per-layer k-means.
* ``PQ``: product quantisation of the raw embedding, no rotation: faiss k-means on L contiguous
  blocks of d/L columns. Written with per-block k-means rather than ``faiss.ProductQuantizer`` so
  that any J works, not only powers of two.
* ``OPQ``: non-parametric optimised PQ (Ge et al., 2013): alternate PQ on Z R and the orthogonal
  Procrustes update of the rotation R, starting from R = I (plain PQ). Written here rather than with
  ``faiss.OPQMatrix``, whose internal PQ fixes J = 2**nbits, so that it trains for the same J.
* ``RQ``: residual quantisation as in RQ-VAE: greedy k-means on the residual, level by level (beam
  width 1, for any J; ``faiss.ResidualQuantizer`` would need J a power of two).
* ``VQ``: plain k-means with one codebook of J codewords on the full vector. It has L = 1 whatever
  ``n_layers`` says, so only J distinct IDs: the "plain VQ" reference.

Diagnostics take codes (and Z where needed): :func:`relative_reconstruction_error`,
:func:`layer_variance_share`, :func:`codebook_utilisation`, :func:`collision_rate`,
:func:`layer_nmi`; :func:`compare_quantizers` tabulates them for several quantisers. Chapter 02's
tables of DQ-VAE itself: :func:`spectrum_summary` (Eqs. 5-6), :func:`loss_identity` (Eqs. 11-13),
:func:`compare_fit_methods` (k-means against Adam on L_T) and :func:`latent_ratio_summary` (Eq. 16).
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from .dqvae import DQVAE, NotFittedError, check_codes, check_matrix, kmeans, nearest

OPQ_ITERS = 10  # outer rotation / codebook alternations of OPQ
OPQ_KMEANS_ITERS = 4  # warm-started k-means iterations per OPQ alternation


class Quantizer:
    """Common base: L layers of J codewords; subclasses implement ``_fit``, ``_encode``, ``_decode``."""

    def __init__(self, n_layers: int = 4, codebook_size: int = 128, seed: int = 0, n_iter: int = 25):
        self.n_layers = n_layers
        self.codebook_size = codebook_size
        self.seed = seed
        self.n_iter = n_iter

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_layers={self.n_layers}, codebook_size={self.codebook_size}, seed={self.seed})"

    def fit(self, Z) -> "Quantizer":
        """Learn the codebooks on (N, d) Z."""
        Z = check_matrix(Z)
        if Z.shape[0] < self.codebook_size:
            raise ValueError(f"codebook_size={self.codebook_size} exceeds the number of samples N={Z.shape[0]}")
        self._fit(Z)
        self.d_ = Z.shape[1]
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "d_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(Z) first")

    def _check_input(self, Z) -> np.ndarray:
        self._check_fitted()
        Z = check_matrix(Z)
        if Z.shape[1] != self.d_:
            raise ValueError(f"Z has {Z.shape[1]} columns, the model was fitted on {self.d_}")
        return Z

    def encode(self, Z) -> np.ndarray:
        """(N, L) int64 codes in [0, J)."""
        return self._encode(self._check_input(Z))

    def decode(self, codes) -> np.ndarray:
        """(N, d) reconstruction from (N, L) codes."""
        self._check_fitted()
        return self._decode(check_codes(codes, self.n_layers, self.codebook_size))


class PQ(Quantizer):
    """Product quantisation: one k-means codebook (J, d/L) per contiguous block of d/L columns."""

    def _blocks(self, d: int) -> list[slice]:
        if d % self.n_layers:
            raise ValueError(f"d={d} is not divisible by n_layers={self.n_layers}")
        m = d // self.n_layers
        return [slice(l * m, (l + 1) * m) for l in range(self.n_layers)]

    def _fit(self, Z: np.ndarray) -> None:
        self.codebooks_ = self._train_blocks(Z, self.n_iter)

    def _train_blocks(self, Y: np.ndarray, n_iter: int, init: list[np.ndarray] | None = None) -> list[np.ndarray]:
        """One k-means codebook per block of Y, optionally warm-started from ``init``."""
        return [kmeans(Y[:, b], self.codebook_size, n_iter, self.seed, None if init is None else init[l])
                for l, b in enumerate(self._blocks(Y.shape[1]))]

    def _encode(self, Z: np.ndarray) -> np.ndarray:
        return np.stack([nearest(Z[:, b], c) for b, c in zip(self._blocks(Z.shape[1]), self.codebooks_)], axis=1)

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        return np.concatenate([c[codes[:, l]] for l, c in enumerate(self.codebooks_)], axis=1)


class OPQ(PQ):
    """PQ on Z R with a learned orthogonal rotation R (d, d); decode maps back with R^T."""

    def _fit(self, Z: np.ndarray) -> None:
        self.rotation_ = np.eye(Z.shape[1])
        self.codebooks_ = self._train_blocks(Z, self.n_iter)
        for _ in range(OPQ_ITERS):
            y_hat = super()._decode(super()._encode(Z @ self.rotation_))
            u, _, vt = np.linalg.svd(Z.T @ y_hat)  # argmin_R ||Z R - y_hat||_F over orthogonal R
            self.rotation_ = u @ vt
            self.codebooks_ = self._train_blocks(Z @ self.rotation_, OPQ_KMEANS_ITERS, init=self.codebooks_)

    def _encode(self, Z: np.ndarray) -> np.ndarray:
        return super()._encode(Z @ self.rotation_)

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        return super()._decode(codes) @ self.rotation_.T


class RQ(Quantizer):
    """Residual quantisation: level l quantises the residual left by levels < l, each codebook (J, d)."""

    def _fit(self, Z: np.ndarray) -> None:
        residual = Z.copy()
        self.codebooks_ = []
        for _ in range(self.n_layers):
            c = kmeans(residual, self.codebook_size, self.n_iter, self.seed)
            residual -= c[nearest(residual, c)]
            self.codebooks_.append(c)

    def _encode(self, Z: np.ndarray) -> np.ndarray:
        residual = Z.copy()
        codes = np.empty((len(Z), self.n_layers), dtype=np.int64)
        for l, c in enumerate(self.codebooks_):
            codes[:, l] = nearest(residual, c)
            residual -= c[codes[:, l]]
        return codes

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        return sum(c[codes[:, l]] for l, c in enumerate(self.codebooks_))


class VQ(Quantizer):
    """Plain vector quantisation: one k-means codebook (J, d) on the full vector, so L = 1 and J distinct IDs."""

    def __init__(self, n_layers: int = 1, codebook_size: int = 128, seed: int = 0, n_iter: int = 25):
        super().__init__(1, codebook_size, seed, n_iter)  # n_layers is accepted for a uniform signature, and ignored

    def _fit(self, Z: np.ndarray) -> None:
        self.codebook_ = kmeans(Z, self.codebook_size, self.n_iter, self.seed)

    def _encode(self, Z: np.ndarray) -> np.ndarray:
        return nearest(Z, self.codebook_)[:, None]

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        return self.codebook_[codes[:, 0]]


QUANTIZERS = {"DQ-VAE": DQVAE, "PQ": PQ, "OPQ": OPQ, "RQ": RQ, "VQ": VQ}


def make_quantizer(name: str, n_layers: int = 4, codebook_size: int = 128, seed: int = 0):
    """An unfitted quantiser by name: one of DQ-VAE, PQ, OPQ, RQ, VQ (case-insensitive; VQ has L = 1)."""
    by_key = {k.replace("-", "").upper(): v for k, v in QUANTIZERS.items()}
    key = name.replace("-", "").upper()
    if key not in by_key:
        raise ValueError(f"unknown quantizer {name!r}; choose from {list(QUANTIZERS)}")
    return by_key[key](n_layers=n_layers, codebook_size=codebook_size, seed=seed)


# --------------------------------------------------------------------------- diagnostics

def relative_reconstruction_error(Z, Z_hat) -> float:
    """||Z - Z_hat||_F^2 / ||Z - mean(Z)||_F^2: 0 is perfect, 1 is as bad as predicting the mean."""
    Z, Z_hat = check_matrix(Z), check_matrix(Z_hat, "Z_hat")
    if Z.shape != Z_hat.shape:
        raise ValueError(f"Z and Z_hat differ in shape: {Z.shape} vs {Z_hat.shape}")
    return float(((Z - Z_hat) ** 2).sum() / ((Z - Z.mean(0)) ** 2).sum())


def layer_variance_share(dqvae: DQVAE) -> np.ndarray:
    """(L,) share of the total variance in each DQ-VAE layer: sum of sigma^2 over its group / total (Eqs. 6-7)."""
    if not hasattr(dqvae, "groups_"):
        raise NotFittedError("the DQVAE is not fitted yet: call fit(Z) first")
    var = dqvae.singular_values_ ** 2
    return np.array([var[g].sum() for g in dqvae.groups_]) / var.sum()


def _codes(codes) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim != 2 or not np.issubdtype(codes.dtype, np.integer) or codes.size == 0:
        raise ValueError(f"codes must be a non-empty 2-D (N, L) integer array, got shape {codes.shape}, "
                         f"dtype {codes.dtype}")
    return codes.astype(np.int64)


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def codebook_utilisation(codes, codebook_size: int) -> pd.DataFrame:
    """Per layer: codewords used, their share of J, and perplexity exp(H) of code usage (J if uniform)."""
    codes = _codes(codes)
    rows = []
    for col in codes.T:
        counts = np.bincount(col, minlength=codebook_size)
        rows.append({"used": int((counts > 0).sum()), "used_share": float((counts > 0).sum() / codebook_size),
                     "perplexity": float(np.exp(_entropy(counts)))})
    return pd.DataFrame(rows).rename_axis("layer")


def usage_by_side(codes: dict, codebook_size: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """For semantic IDs per side (``codes``: side -> (N, L)): the :func:`codebook_utilisation` of every
    layer (columns side, layer from 1, used, used_share, perplexity) and, per side, the distinct IDs,
    the number of rows and the :func:`collision_rate`."""
    usage = pd.concat([codebook_utilisation(c, codebook_size).reset_index().assign(side=side)
                       for side, c in codes.items()], ignore_index=True)
    usage["layer"] += 1
    ids = pd.DataFrame({side: dict(distinct_ids=len(np.unique(_codes(c), axis=0)), samples=len(c),
                                   collision_rate=collision_rate(c)) for side, c in codes.items()}).T
    return usage[["side", "layer", "used", "used_share", "perplexity"]], ids.rename_axis("side")


def collision_rate(codes) -> float:
    """Fraction of entities whose full ID tuple is shared with at least one other entity."""
    codes = _codes(codes)
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    return float((counts[inverse.ravel()] > 1).mean())


def _mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    joint = np.zeros((ia.max() + 1, ib.max() + 1))
    np.add.at(joint, (ia, ib), 1.0)
    joint /= joint.sum()
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum())


def layer_nmi(codes) -> np.ndarray:
    """(L, L) normalised mutual information between layers' codes, I(a; b) / ((H(a) + H(b)) / 2).

    1 on identical partitions (two constant layers count as identical), ~0 for independent layers
    when N >> J^2. The plug-in estimate is biased upwards by about (J-1)^2 / (2 N H), which is large
    for J = 128 and a few thousand entities: compare with the NMI of independently shuffled layers
    (``mean_nmi_chance`` in :func:`compare_quantizers`).
    """
    codes = _codes(codes)
    L = codes.shape[1]
    h = [_entropy(np.unique(col, return_counts=True)[1]) for col in codes.T]
    out = np.eye(L)
    for i in range(L):
        for j in range(i + 1, L):
            denom = (h[i] + h[j]) / 2
            out[i, j] = out[j, i] = _mutual_information(codes[:, i], codes[:, j]) / denom if denom > 0 else 1.0
    return out


def _off_diagonal(m: np.ndarray) -> np.ndarray:
    return m[~np.eye(len(m), dtype=bool)]


def compare_quantizers(Z, names=("DQ-VAE", "PQ", "OPQ", "RQ", "VQ"), n_layers: int = 4, codebook_size: int = 128,
                       seed: int = 0, codes: dict | None = None) -> pd.DataFrame:
    """One row per quantiser fitted and evaluated on Z: L, J, fit_seconds, rel_recon_error, mean_perplexity,
    collision_rate, mean_nmi (mean off-diagonal layer NMI, NaN when L = 1), mean_nmi_chance (the same
    with each layer's codes shuffled independently: the estimator's bias at this N and J) and distinct_ids.

    codes: if a dict is given, ``codes[name]`` receives each quantiser's (N, L) codes of Z."""
    Z = check_matrix(Z)
    rng = np.random.default_rng(seed)
    rows = []
    for name in names:
        q = make_quantizer(name, n_layers, codebook_size, seed)
        t0 = time.perf_counter()
        q.fit(Z)
        fit_seconds = time.perf_counter() - t0
        ids = q.encode(Z)
        if codes is not None:
            codes[name] = ids
        off = _off_diagonal(layer_nmi(ids))
        chance = _off_diagonal(layer_nmi(np.column_stack([rng.permutation(col) for col in ids.T])))
        rows.append({"quantizer": name, "L": ids.shape[1], "J": codebook_size, "fit_seconds": fit_seconds,
                     "rel_recon_error": relative_reconstruction_error(Z, q.decode(ids)),
                     "mean_perplexity": float(codebook_utilisation(ids, codebook_size).perplexity.mean()),
                     "collision_rate": collision_rate(ids),
                     "mean_nmi": float(off.mean()) if off.size else float("nan"),
                     "mean_nmi_chance": float(chance.mean()) if chance.size else float("nan"),
                     "distinct_ids": len(np.unique(ids, axis=0))})
    return pd.DataFrame(rows).set_index("quantizer")



def comparison_orderings(comparison: pd.DataFrame) -> str:
    """Per side of a :func:`compare_quantizers` table with a ``side`` column: the quantisers in ascending
    order of reconstruction error, collision rate and fit time, of mean NMI above chance, and which
    reconstruct better than DQ-VAE; one line each."""
    lines = []
    for side, c in comparison.groupby("side", sort=False):
        c = c.set_index("quantizer")
        for metric in ("rel_recon_error", "collision_rate", "fit_seconds"):
            lines.append(f"{side}s, {metric} (ascending): "
                         + ", ".join(f"{q} {v:.3g}" for q, v in c[metric].sort_values().items()))
        excess = (c.mean_nmi - c.mean_nmi_chance).dropna().sort_values()
        lines.append(f"{side}s, mean NMI above chance (ascending): " + ", ".join(f"{q} {v:.3f}" for q, v in excess.items()))
        lower = [q for q in c.index if q != "DQ-VAE" and c.loc[q, "rel_recon_error"] < c.loc["DQ-VAE", "rel_recon_error"]]
        lines.append(f"{side}s: reconstructing better than DQ-VAE: {', '.join(lower) or 'none'}\n")
    return "\n".join(lines)

# --------------------------------------------------------------------------- DQ-VAE's own checks (chapter 02)

def spectrum_summary(variances: dict) -> pd.DataFrame:
    """Per side (``variances``: side -> sigma_n^2 / N in SVD order): the total variance, the largest
    dimension's share, largest / smallest, and how many leading dimensions hold 50 % and 90 % of it."""
    rows = {}
    for side, v in variances.items():
        v = np.asarray(v, dtype=np.float64)
        cum = np.cumsum(v) / v.sum()
        rows[side] = {"total variance": v.sum(), "largest share": v[0] / v.sum(), "largest / smallest": v[0] / v[-1],
                      "dims for 50 %": int(np.searchsorted(cum, 0.5) + 1),
                      "dims for 90 %": int(np.searchsorted(cum, 0.9) + 1)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("side")


def loss_identity(models: dict, Z: dict) -> pd.DataFrame:
    """Eqs. 11-13 per side (``models``, ``Z``: side -> fitted DQVAE, its matrix): L_R, L_C, L_T
    (:meth:`DQVAE.losses`), |L_R - L_C| / L_C (0 up to rounding: the orthogonal split of the error)
    and L_T / L_C (1 + beta)."""
    out = pd.DataFrame({side: models[side].losses(Z[side]) for side in models}).T
    out["|L_R - L_C| / L_C"] = (out.L_R - out.L_C).abs() / out.L_C
    out["L_T / L_C"] = out.L_T / out.L_C
    return out.rename_axis("side")


def compare_fit_methods(Z: dict, n_layers: int, codebook_size: int, beta: float, seed: int = 0,
                        methods=("kmeans", "adam")) -> tuple[pd.DataFrame, dict, dict]:
    """DQ-VAE fitted by each of ``methods`` per side (``Z``: side -> matrix): one row per (side, method)
    with its losses on Z, fit seconds, epochs and ``L_T / k-means L_T``; plus the Adam loss histories and
    the k-means losses per side (for :func:`dqrec.plots.adam_loss_history`)."""
    rows, histories, kmeans_losses = [], {}, {}
    for side, z in Z.items():
        for method in methods:
            start = time.perf_counter()
            m = DQVAE(n_layers, codebook_size, beta, fit_method=method, seed=seed).fit(z)
            seconds = time.perf_counter() - start
            losses = m.losses(z)
            rows.append(dict(side=side, fit_method=method, N=len(z), **losses, fit_seconds=seconds,
                             epochs=len(m.loss_history_)))
            if method == "adam":
                histories[side] = m.loss_history_
            else:
                kmeans_losses[side] = losses
    table = pd.DataFrame(rows)
    if kmeans_losses:
        table["L_T / k-means L_T"] = table.L_T / table.side.map(lambda s: kmeans_losses[s]["L_T"])
    return table, histories, kmeans_losses


def latent_ratio_summary(ratios: dict) -> pd.DataFrame:
    """Per side and layer (``ratios``: side -> :func:`latent_distance_ratio`): the median ratio and the
    shares of entities whose runner-up codeword is within 10 %, 50 % and 100 % of the assigned one's distance."""
    return pd.concat({side: pd.DataFrame({"median": np.median(r, axis=0), "share < 1.1": (r < 1.1).mean(axis=0),
                                          "share < 1.5": (r < 1.5).mean(axis=0), "share < 2": (r < 2).mean(axis=0)},
                                         index=pd.RangeIndex(1, r.shape[1] + 1, name="layer"))
                      for side, r in ratios.items()}, names=["side"]).reset_index()

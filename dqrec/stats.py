"""How sure is a difference between two models? Paired bootstrap over test samples and spread over seeds.

Every run in the run cache (``results/runs/*.npz``) stores the 0-based rank of each test sample's
positive under each protocol, in the order of the test split, so two runs on the same split can be
compared sample by sample. Two sources of noise are measured:

* **test samples**: the paired bootstrap resamples test samples (with replacement) and recomputes
  the difference of the two models' mean metric on the same resampled samples; its percentile
  interval says how much the difference depends on which users happened to be in the test split;
* **seeds**: where a model ran with several seeds, the per-seed metrics give a mean, an sd and a
  t-interval; the difference of two models is taken seed by seed (a deterministic model's one run
  against every seed of the other).

A difference is *inside the noise* when either interval contains 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

RanksBySeed = Mapping[int, np.ndarray]


def per_sample(ranks: np.ndarray, metric: str, k: int) -> np.ndarray:
    """(n,) per-sample Recall@k (1[rank < k]) or NDCG@k (1[rank < k] / log2(rank + 2)) from (n,) 0-based
    ranks; their mean is what :func:`dqrec.evaluate.evaluate` reports."""
    ranks = np.asarray(ranks)
    hit = ranks < k
    if metric == "Recall":
        return hit.astype(float)
    if metric == "NDCG":
        return np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)
    raise ValueError(f"metric {metric!r}: choose 'Recall' or 'NDCG'")


def bootstrap_mean_ci(values: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0,
                      chunk: int = 256) -> tuple[float, float]:
    """Percentile interval of the mean of (n,) ``values`` over ``n_boot`` resamples of its entries
    (seeded; drawn ``chunk`` resamples at a time so memory stays at chunk x n)."""
    values = np.asarray(values, float)
    n = len(values)
    if n == 0:
        raise ValueError("no values to bootstrap")
    rng = np.random.default_rng(seed)
    means = np.concatenate([values[rng.integers(0, n, (min(chunk, n_boot - start), n))].mean(1)
                            for start in range(0, n_boot, chunk)])
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(lo), float(hi)


def seed_count(n_a: int, n_b: int) -> str:
    """'3 seeds', or '1 vs 3 seeds' where the two models ran with different numbers of seeds (the single run
    is then compared with each seed of the other: the interval holds only the other model's seed spread)."""
    return f"{n_a} seeds" if n_a == n_b else f"{n_a} vs {n_b} seeds"


@dataclass(frozen=True)
class SeedSummary:
    """Mean, sd and t-interval of one quantity over seeds (sd and interval NaN for a single run)."""

    mean: float
    sd: float
    n: int
    lo: float
    hi: float

    def text(self, digits: int = 4) -> str:
        """'0.1234 ± 0.0056 (3 seeds)' or '0.1234 (1 run)'."""
        if self.n < 2:
            return f"{self.mean:.{digits}f} (1 run)"
        return f"{self.mean:.{digits}f} ± {self.sd:.{digits}f} ({self.n} seeds)"


def seed_summary(values: Sequence[float], level: float = 0.95) -> SeedSummary:
    """Mean, sample sd and Student-t interval of the mean of per-seed ``values``."""
    from scipy import stats

    v = np.asarray(values, float)
    if len(v) == 0:
        raise ValueError("no values")
    mean = float(v.mean())
    if len(v) < 2:
        return SeedSummary(mean, float("nan"), 1, float("nan"), float("nan"))
    sd = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1)) * sd / np.sqrt(len(v))
    return SeedSummary(mean, sd, len(v), mean - half, mean + half)


@dataclass(frozen=True)
class Difference:
    """``a`` minus ``b`` on metric@k with its uncertainty (see the module docstring)."""

    a: str
    b: str
    metric: str
    k: int
    mean_a: float
    mean_b: float
    diff: float            # mean_a - mean_b (means over samples and seeds)
    lo: float              # paired-bootstrap interval of diff over test samples
    hi: float
    n_samples: int
    n_seeds_a: int
    n_seeds_b: int
    seed_lo: float         # t-interval of the seed-by-seed differences; NaN with fewer than 2
    seed_hi: float
    level: float

    @property
    def relative(self) -> float:
        """diff / mean_b (NaN when b is 0)."""
        return self.diff / self.mean_b if self.mean_b else float("nan")

    @property
    def has_seed_interval(self) -> bool:
        return bool(np.isfinite(self.seed_lo))

    @property
    def inside_noise(self) -> bool:
        """True when the bootstrap interval, or the seed interval where there is one, contains 0."""
        return (self.lo <= 0 <= self.hi) or (self.has_seed_interval and self.seed_lo <= 0 <= self.seed_hi)

    @property
    def verdict(self) -> str:
        """'inside the noise', or which model is ahead beyond it."""
        if self.inside_noise:
            return "inside the noise"
        return f"{self.a if self.diff > 0 else self.b} ahead beyond the noise"

    def text(self) -> str:
        """One sentence fragment with both intervals, e.g. 'DQRec 0.1234 vs DualTower 0.1000: +0.0234
        (+23%), 95% CI [+0.0150, +0.0320] over 5,537 test samples, [+0.0100, +0.0360] over 3 seeds;
        DQRec ahead beyond the noise'."""
        pct = int(round(100 * self.level))
        out = (f"{self.a} {self.mean_a:.4f} vs {self.b} {self.mean_b:.4f}: {self.diff:+.4f} "
               f"({100 * self.relative:+.0f}%), {pct}% CI [{self.lo:+.4f}, {self.hi:+.4f}] over "
               f"{self.n_samples:,} test samples")
        n_seeds = max(self.n_seeds_a, self.n_seeds_b)
        if self.has_seed_interval:
            out += f", [{self.seed_lo:+.4f}, {self.seed_hi:+.4f}] over {seed_count(self.n_seeds_a, self.n_seeds_b)}"
        elif n_seeds < 2:
            out += " (one seed: no seed spread)"
        return f"{out}; {self.verdict}"

    def as_dict(self) -> dict:
        return dict(a=self.a, b=self.b, metric=f"{self.metric}@{self.k}", mean_a=self.mean_a, mean_b=self.mean_b,
                    diff=self.diff, relative=self.relative, ci_lo=self.lo, ci_hi=self.hi, n_samples=self.n_samples,
                    seeds_a=self.n_seeds_a, seeds_b=self.n_seeds_b, seed_ci_lo=self.seed_lo,
                    seed_ci_hi=self.seed_hi, inside_noise=self.inside_noise, verdict=self.verdict)


def _by_seed(ranks) -> dict[int, np.ndarray]:
    """{seed: (n,) ranks} from such a dict or from one array (seed 0)."""
    if isinstance(ranks, Mapping):
        if not ranks:
            raise ValueError("no runs")
        return {int(s): np.asarray(r) for s, r in ranks.items()}
    return {0: np.asarray(ranks)}


def difference(ranks_a: RanksBySeed | np.ndarray, ranks_b: RanksBySeed | np.ndarray, metric: str, k: int,
               a: str = "A", b: str = "B", n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> Difference:
    """``a`` minus ``b`` on metric@k from per-sample ranks of the same test samples under one protocol.

    ranks_a, ranks_b: (n,) ranks of one run, or {seed: (n,) ranks} of several. Per sample, each model's
    metric is averaged over its seeds; the bootstrap resamples samples for both models at once
    (paired). Seed by seed: common seeds are paired; a model with a single run is compared with each
    seed of the other; two single runs (or no common seeds) give no seed interval.
    """
    ra, rb = _by_seed(ranks_a), _by_seed(ranks_b)
    n = {len(r) for r in (*ra.values(), *rb.values())}
    if len(n) != 1:
        raise ValueError(f"runs cover different numbers of test samples: {sorted(n)}")
    va = {s: per_sample(r, metric, k) for s, r in ra.items()}
    vb = {s: per_sample(r, metric, k) for s, r in rb.items()}
    sample_a, sample_b = np.mean(list(va.values()), 0), np.mean(list(vb.values()), 0)
    lo, hi = bootstrap_mean_ci(sample_a - sample_b, n_boot, level, seed)
    if len(va) == 1 or len(vb) == 1:
        only_a, only_b = next(iter(va.values())).mean(), next(iter(vb.values())).mean()
        seed_diffs = ([v.mean() - only_b for v in va.values()] if len(vb) == 1 and len(va) > 1
                      else [only_a - v.mean() for v in vb.values()] if len(va) == 1 and len(vb) > 1 else [])
    else:
        seed_diffs = [va[s].mean() - vb[s].mean() for s in sorted(set(va) & set(vb))]
    seeds = seed_summary(seed_diffs, level) if len(seed_diffs) >= 2 else None
    return Difference(a, b, metric, k, float(sample_a.mean()), float(sample_b.mean()),
                      float(sample_a.mean() - sample_b.mean()), lo, hi, next(iter(n)), len(va), len(vb),
                      seeds.lo if seeds else float("nan"), seeds.hi if seeds else float("nan"), level)


def cached_ranks(cache, split, model: str, seeds: Sequence[int], params: dict) -> dict[int, dict[str, np.ndarray]]:
    """{seed: {protocol: (n,) ranks}} of the runs of ``model`` on ``split`` found in the run cache
    ``cache`` under their current key (:func:`dqrec.experiment.run_key`); seeds without a valid file
    are left out (a deterministic model has one run, under the first seed)."""
    from pathlib import Path

    from .experiment import read_cached_run, run_key

    out = {}
    for s in seeds:
        found = read_cached_run(Path(cache) / run_key(split, model, s, params), len(split.test))
        if found is not None:
            out[s] = found[1]
    return out

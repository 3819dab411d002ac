import numpy as np
import pytest

from dqrec.evaluate import _metrics_from_ranks
from dqrec.stats import bootstrap_mean_ci, difference, per_sample, seed_summary


def test_per_sample_means_are_the_evaluator_metrics():
    ranks = np.random.default_rng(0).integers(0, 50, 1000)
    recall, ndcg = _metrics_from_ranks(ranks, (5, 10, 20))
    for k, r, n in zip((5, 10, 20), recall, ndcg):
        assert per_sample(ranks, "Recall", k).mean() == pytest.approx(r)
        assert per_sample(ranks, "NDCG", k).mean() == pytest.approx(n)
    with pytest.raises(ValueError):
        per_sample(ranks, "MRR", 5)


def test_bootstrap_interval_is_seeded_and_covers_the_mean_at_its_width():
    v = np.random.default_rng(1).normal(0.3, 1.0, 4000)
    lo, hi = bootstrap_mean_ci(v, n_boot=1000, seed=3)
    assert (lo, hi) == bootstrap_mean_ci(v, n_boot=1000, seed=3)
    assert lo < v.mean() < hi
    se = v.std(ddof=1) / np.sqrt(len(v))  # a 95% interval is about 2 x 1.96 standard errors wide
    assert 3.4 * se < hi - lo < 4.4 * se


def test_seed_summary_t_interval():
    s = seed_summary([0.1, 0.2, 0.3])
    assert s.mean == pytest.approx(0.2) and s.sd == pytest.approx(0.1) and s.n == 3
    assert s.hi - s.mean == pytest.approx(4.302653 * 0.1 / np.sqrt(3), rel=1e-5)  # t(0.975, 2 df)
    one = seed_summary([0.5])
    assert one.n == 1 and np.isnan(one.sd) and "1 run" in one.text()


def test_difference_sign_and_clear_gap_is_beyond_noise():
    rng = np.random.default_rng(0)
    better = rng.integers(0, 8, 3000)          # mostly inside the top 10
    worse = better + rng.integers(5, 40, 3000)  # same samples, pushed down
    d = difference(better, worse, "Recall", 10, a="A", b="B")
    assert d.diff == pytest.approx(per_sample(better, "Recall", 10).mean() - per_sample(worse, "Recall", 10).mean())
    assert d.diff > 0 and d.lo > 0 and not d.inside_noise and d.verdict == "A ahead beyond the noise"
    flipped = difference(worse, better, "Recall", 10, a="B", b="A")
    assert flipped.diff == pytest.approx(-d.diff) and flipped.hi < 0 and flipped.verdict == "A ahead beyond the noise"


def test_identical_and_exchangeable_runs_are_inside_noise():
    rng = np.random.default_rng(1)
    r = rng.integers(0, 100, 2000)
    same = difference(r, r.copy(), "NDCG", 10)
    assert same.diff == 0 and same.inside_noise
    # two independent draws from one model: a difference, if any, inside the noise
    noisy = difference(rng.integers(0, 100, 2000), rng.integers(0, 100, 2000), "Recall", 10)
    assert noisy.inside_noise and "inside the noise" in noisy.text()


def test_pairing_narrows_the_interval_for_correlated_runs():
    rng = np.random.default_rng(2)
    base = rng.integers(0, 60, 3000)
    a = np.maximum(base - rng.integers(0, 3, 3000), 0)  # a small, consistent improvement per sample
    paired = difference(a, base, "Recall", 10)
    unpaired = difference(a, rng.permutation(base), "Recall", 10)  # same marginals, pairing destroyed
    assert paired.hi - paired.lo < 0.6 * (unpaired.hi - unpaired.lo)
    assert not paired.inside_noise


def test_seed_level_interval_can_put_a_difference_inside_the_noise():
    rng = np.random.default_rng(3)
    n = 4000
    # per seed the two models swap places: big sample-level gap each time, no consistent sign
    a = {0: rng.integers(0, 5, n), 1: rng.integers(30, 60, n), 2: rng.integers(0, 5, n)}
    b = {0: rng.integers(30, 60, n), 1: rng.integers(0, 5, n), 2: rng.integers(30, 60, n)}
    d = difference(a, b, "Recall", 10)
    assert d.n_seeds_a == d.n_seeds_b == 3 and d.has_seed_interval
    assert d.lo > 0  # test samples alone would call it
    assert d.seed_lo < 0 < d.seed_hi and d.inside_noise
    # one deterministic run against three seeds: seed differences against the single run
    det = difference(a, rng.integers(40, 60, n), "Recall", 10)
    assert det.n_seeds_b == 1 and det.has_seed_interval
    assert "over 3 vs 1 seeds" in det.text() and "over 3 seeds" in d.text()  # an unequal count is said, not hidden
    single = difference(a[0], b[0], "Recall", 10)
    assert not single.has_seed_interval and "one seed" in single.text()


def test_difference_rejects_runs_on_different_samples():
    with pytest.raises(ValueError, match="different numbers"):
        difference(np.zeros(10, int), np.zeros(11, int), "Recall", 5)

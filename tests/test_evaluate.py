import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from dqrec.evaluate import candidate_counts, evaluate, expected_random_metrics


def frame(users, items):
    return pd.DataFrame({"user": users, "item": items, "timestamp": np.arange(len(users), dtype=np.int64)})


def known_matrix(pairs, n_users, n_items):
    u, i = zip(*pairs)
    return sp.csr_matrix((np.ones(len(u)), (u, i)), shape=(n_users, n_items))


class TableScorer:
    """score(u, i) = table[u, i]."""

    def __init__(self, table):
        self.table = np.asarray(table, dtype=float)

    def score(self, batch, items):
        return self.table[batch.user.to_numpy()][:, items]


class ConstantScorer:
    def score(self, batch, items):
        return np.zeros((len(batch), len(items)))


class RandomScorer:
    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)

    def score(self, batch, items):
        return self.rng.random((len(batch), len(items)))


class OracleScorer:
    def score(self, batch, items):
        return (items[None, :] == batch.item.to_numpy()[:, None]).astype(float)


# Tiny example: 3 users, 6 items, every user scores item i as i (item 5 best).
# Samples (u, pos): (0, 3), (1, 1), (2, 1), (0, 4); item 1 appears twice in the batch.
# Known: u0 {3, 4, 5}, u1 {0, 1}, u2 {1}.
TINY = frame([0, 1, 2, 0], [3, 1, 1, 4])
TINY_KNOWN = known_matrix([(0, 3), (0, 4), (0, 5), (1, 0), (1, 1), (2, 1)], 3, 6)
TINY_SCORER = TableScorer(np.tile(np.arange(6.0), (3, 1)))


def test_hand_computed_ranks_in_batch():
    # batch items {1, 3, 4}; s0 drops 4 (u0 likes it) -> {1, 3}: rank 0; s1, s2: {1, 3, 4} -> rank 2
    # (item 1 counted once although twice in the batch); s3 drops 3 -> {1, 4}: rank 0.
    df, ranks = evaluate(TINY_SCORER, TINY, TINY_KNOWN, 6, protocols=("in_batch",), ks=(1, 3),
                         progress=False, return_ranks=True)
    np.testing.assert_array_equal(ranks["in_batch"], [0, 2, 2, 0])
    np.testing.assert_array_equal(candidate_counts(TINY, TINY_KNOWN, 6, "in_batch"), [2, 3, 3, 2])
    values = df.set_index(["metric", "k"]).value
    assert values["Recall", 1] == 0.5 and values["Recall", 3] == 1.0
    assert values["NDCG", 3] == pytest.approx((1 + 1 / np.log2(4) + 1 / np.log2(4) + 1) / 4)
    assert set(df.columns) == {"protocol", "metric", "k", "value", "n_samples"}
    assert (df.n_samples == 4).all()


def test_hand_computed_ranks_full():
    # s0: all items minus {4, 5} -> rank 0 (2 without the exclusion); s1: minus {0} -> items 2..5 above
    # -> rank 4; s2: nothing excluded -> rank 4; s3: minus {3, 5} -> rank 0.
    df, ranks = evaluate(TINY_SCORER, TINY, TINY_KNOWN, 6, protocols=("full",), ks=(1, 5),
                         progress=False, return_ranks=True)
    np.testing.assert_array_equal(ranks["full"], [0, 4, 4, 0])
    np.testing.assert_array_equal(candidate_counts(TINY, TINY_KNOWN, 6, "full"), [4, 5, 6, 4])
    values = df.set_index(["metric", "k"]).value
    assert values["Recall", 1] == 0.5 and values["Recall", 5] == 1.0
    assert values["NDCG", 5] == pytest.approx((2 + 2 / np.log2(6)) / 4)


def test_batch_of_one_has_only_the_positive():
    _, ranks = evaluate(ConstantScorer(), TINY, TINY_KNOWN, 6, protocols=("in_batch",), batch_size=1,
                        progress=False, return_ranks=True)
    np.testing.assert_array_equal(ranks["in_batch"], 0)
    np.testing.assert_array_equal(candidate_counts(TINY, TINY_KNOWN, 6, "in_batch", batch_size=1), 1)


def test_scorer_sees_original_index():
    seen = []

    class Recorder(ConstantScorer):
        def score(self, batch, items):
            seen.extend(batch.index)
            return super().score(batch, items)

    samples = TINY.set_index(pd.Index([10, 20, 30, 40]))
    evaluate(Recorder(), samples, TINY_KNOWN, 6, batch_size=3, progress=False)
    assert sorted(seen) == [10, 10, 20, 20, 30, 30, 40, 40]


@pytest.fixture(scope="module")
def synthetic():
    """3,000 samples of 100 users over 40 items; each user knows ~5 other positives."""
    rng = np.random.default_rng(1)
    n_users, n_items = 100, 40
    samples = frame(rng.integers(0, n_users, 3000), rng.integers(0, n_items, 3000))
    pairs = list(zip(samples.user, samples.item)) + list(zip(rng.integers(0, n_users, 500),
                                                             rng.integers(0, n_items, 500)))
    return samples, known_matrix(pairs, n_users, n_items), n_items


@pytest.mark.parametrize("scorer", [ConstantScorer(), RandomScorer(3)], ids=["constant", "random"])
def test_uninformative_scorers_match_chance_level(synthetic, scorer):
    samples, known, n_items = synthetic
    kw = dict(ks=(1, 5, 10), batch_size=64, seed=7)
    got = evaluate(scorer, samples, known, n_items, progress=False, **kw)
    expected = expected_random_metrics(samples, known, n_items, **kw)
    pd.testing.assert_frame_equal(got.drop(columns="value"), expected.drop(columns="value"))
    # standard error of a mean of 3,000 Bernoulli/bounded draws is < 0.01
    np.testing.assert_allclose(got.value, expected.value, atol=0.03)
    assert (got[got.k == 1].value < 0.1).all()  # far from the rank-0 a naive tie rule would give


def test_constant_scorer_ranks_are_uniform():
    n_items, n = 8, 16_000
    samples = frame(np.zeros(n, int), np.arange(n) % n_items)
    known = sp.csr_matrix((1, n_items))
    _, ranks = evaluate(ConstantScorer(), samples, known, n_items, protocols=("full",),
                        progress=False, return_ranks=True)
    freq = np.bincount(ranks["full"], minlength=n_items) / n
    np.testing.assert_allclose(freq, 1 / n_items, atol=0.015)


def test_oracle_is_perfect(synthetic):
    samples, known, n_items = synthetic
    df = evaluate(OracleScorer(), samples, known, n_items, batch_size=100, progress=False)
    np.testing.assert_array_equal(df.value, 1.0)


def test_deterministic_for_a_seed(synthetic):
    samples, known, n_items = synthetic
    run = lambda seed: evaluate(ConstantScorer(), samples, known, n_items, seed=seed, batch_size=128,
                                progress=False, return_ranks=True)[1]
    a, b, c = run(0), run(0), run(1)
    for protocol in a:
        np.testing.assert_array_equal(a[protocol], b[protocol])
        assert not np.array_equal(a[protocol], c[protocol])


def test_expected_random_metrics_formula():
    # m = 2 candidates: P(hit@1) = 1/2, E[NDCG@1] = 1/2, P(hit@5) = 1, E[NDCG@5] = (1 + 1/log2 3) / 2
    samples = frame([0], [0])
    df = expected_random_metrics(samples, sp.csr_matrix((1, 2)), 2, protocols=("full",), ks=(1, 5))
    values = df.set_index(["metric", "k"]).value
    assert values["Recall", 1] == 0.5 and values["NDCG", 1] == 0.5 and values["Recall", 5] == 1.0
    assert values["NDCG", 5] == pytest.approx((1 + 1 / np.log2(3)) / 2)


class WrongShape:
    def score(self, batch, items):
        return np.zeros((len(batch), len(items) + 1))


class NaNScorer:
    def score(self, batch, items):
        return np.full((len(batch), len(items)), np.nan)


@pytest.mark.parametrize("kwargs, match", [
    (dict(samples=TINY.iloc[:0]), "no samples"),
    (dict(samples=frame([0], [6])), "item indices"),
    (dict(samples=frame([0], [-1])), "item indices"),
    (dict(samples=frame([3], [0])), "user indices"),
    (dict(samples=TINY[["user"]]), "lack columns"),
    (dict(scorer=WrongShape()), "shape"),
    (dict(scorer=NaNScorer()), "NaN"),
    (dict(protocols=("sampled",)), "unknown protocols"),
    (dict(ks=(0, 5)), "ks"),
    (dict(n_items=7), "known has 6 items"),
])
def test_errors(kwargs, match):
    args = dict(scorer=TINY_SCORER, samples=TINY, known=TINY_KNOWN, n_items=6, progress=False) | kwargs
    with pytest.raises(ValueError, match=match):
        evaluate(**args)


def test_known_with_duplicate_entries_and_explicit_zeros():
    # u0's row stores item 4 twice and an explicit zero for item 2: same as known {3, 4, 5}.
    known = sp.csr_matrix((np.array([1, 1, 1, 1, 0, 1, 1, 1.0]), np.array([4, 4, 5, 3, 2, 0, 1, 1]),
                           np.array([0, 5, 7, 8])), shape=(3, 6))
    np.testing.assert_array_equal(candidate_counts(TINY, known, 6, "full"), [4, 5, 6, 4])
    _, ranks = evaluate(TINY_SCORER, TINY, known, 6, protocols="full", progress=False, return_ranks=True)
    np.testing.assert_array_equal(ranks["full"], [0, 4, 4, 0])


def test_default_ranks_are_pinned():
    """The evaluator's default path on a fixed case with ties, exclusions and both protocols. Cached runs
    count evaluate.py by its EVALUATOR_VERSION, not its text: if this fails, a default result changed, so
    bump EVALUATOR_VERSION (which re-keys every cached run) and update the pinned digest."""
    import hashlib

    from dqrec.evaluate import EVALUATOR_VERSION, validation_criterion

    rng = np.random.default_rng(7)
    n_users, n_items, n = 40, 60, 300
    samples = frame(rng.integers(0, n_users, n), rng.integers(0, n_items, n))
    known = sp.csr_matrix((np.ones(n), (samples.user, samples.item)), shape=(n_users, n_items))
    scorer = TableScorer(rng.integers(0, 4, (n_users, n_items)))  # few distinct values: many ties
    res, ranks = evaluate(scorer, samples, known, n_items, batch_size=64, seed=3, progress=False, return_ranks=True)
    digest = hashlib.sha256(b"".join(ranks[p].astype("<i8").tobytes() for p in ("in_batch", "full")))
    digest.update(res.value.to_numpy().astype("<f8").tobytes())

    split = type("Split", (), dict(valid=samples, n_items=n_items, matrix=lambda self, parts: known))()

    class Model:
        def scorer(self, part):
            return scorer

    digest.update(np.float64(validation_criterion(split, seed=5)(Model())).tobytes())
    assert (EVALUATOR_VERSION, digest.hexdigest()[:16]) == (1, "443c67300a270b0a")
    full = evaluate(scorer, samples, known, n_items, protocols=("full",), ks=(10,), seed=5, progress=False)
    by_full = validation_criterion(split, seed=5, protocol="full")(Model())  # RecBole's selection (sasrec_variants)
    assert by_full == full.set_index("metric").value["NDCG"] != validation_criterion(split, seed=5)(Model())

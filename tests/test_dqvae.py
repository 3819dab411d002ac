"""DQ-VAE (paper Section 4.2): planted structure, the L_R = L_C identity, the balanced split, the Adam
path, latent codes (Eqs. 16-17), persistence and bad input."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dqrec.dqvae import (DQVAE, NotFittedError, balanced_groups, group_imbalance, imbalance_lower_bound,
                         naive_groups)


def planted(repeats=2, seed=1):
    """Z = Y Q^T + 3 with Y the full factorial of signs times sqrt([8..1]): centred, Y^T Y diagonal.

    Every direction n holds two values +-s_n, so the balanced split pairs variances (8,1), (7,2),
    (6,3), (5,4) (all sums 9) and each layer's latent takes exactly 4 values: 4 clusters.
    """
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=8)))
    y = np.tile(signs * np.sqrt(np.arange(8, 0, -1.0)), (repeats, 1))
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((8, 8)))
    return y @ q.T + 3.0, np.tile(signs, (repeats, 1)), q


@pytest.fixture(scope="module")
def gaussian():
    rng = np.random.default_rng(0)
    return rng.standard_normal((1500, 16)) * np.exp(-np.arange(16) / 6) + 0.5


@pytest.fixture(scope="module")
def fitted(gaussian):
    return DQVAE(n_layers=4, codebook_size=32, seed=0).fit(gaussian)


def test_planted_groups_codes_and_exact_reconstruction():
    Z, signs, q = planted()
    dq = DQVAE(n_layers=4, codebook_size=4, seed=0).fit(Z)
    assert [g.tolist() for g in dq.groups_] == [[0, 7], [1, 6], [2, 5], [3, 4]]
    np.testing.assert_allclose(dq.singular_values_ ** 2 / len(Z), np.arange(8, 0, -1.0), rtol=1e-10)
    assert group_imbalance(dq.singular_values_ ** 2, dq.groups_).objective < 1e-8 * len(Z)
    codes = dq.encode(Z)
    # W's columns are Q's up to sign, so layer l's code is a bijection of the signs of its two directions
    np.testing.assert_allclose(np.abs(dq.components_.T @ q), np.eye(8), atol=1e-10)
    for l, g in enumerate(dq.groups_):
        pairs = {(tuple(s), c) for s, c in zip(signs[:, g], codes[:, l])}
        assert len(pairs) == 4 and len({c for _, c in pairs}) == 4
    assert np.abs(dq.quantize(Z) - Z).max() < 1e-5


def test_decode_of_encode_is_eq10(gaussian, fitted):
    codes = fitted.encode(gaussian[:50])
    manual = fitted.mean_ + sum(fitted.codebooks_[l][codes[:, l]] @ fitted.components_[:, g].T
                                for l, g in enumerate(fitted.groups_))
    np.testing.assert_allclose(fitted.quantize(gaussian[:50]), manual, rtol=1e-12, atol=1e-12)
    assert codes.dtype == np.int64 and codes.shape == (50, 4)


def test_reconstruction_loss_equals_codebook_loss(gaussian, fitted):
    x = fitted.transform(gaussian)
    codes = fitted.encode(gaussian)
    for l, (xl, c) in enumerate(zip(x, fitted.codebooks_)):  # Eq. 9: each code is the nearest codeword
        dist = ((xl[:, None, :] - c[None]) ** 2).sum(-1)
        np.testing.assert_allclose(dist[np.arange(len(xl)), codes[:, l]], dist.min(1), rtol=1e-12, atol=1e-12)
    loss_r = ((fitted.decode(codes) - gaussian) ** 2).sum(1).mean()
    loss_c = sum(((xl - c[codes[:, l]]) ** 2).sum(1) for l, (xl, c) in enumerate(zip(x, fitted.codebooks_))).mean()
    assert abs(loss_r - loss_c) <= 1e-6 * loss_c
    losses = fitted.losses(gaussian)
    assert losses["L_R"] == pytest.approx(loss_r, rel=1e-12) and losses["L_C"] == pytest.approx(loss_c, rel=1e-12)
    assert losses["L_T"] == pytest.approx(1.25 * loss_c, rel=1e-9)


def test_components_are_orthonormal_and_groups_partition(fitted):
    w = fitted.components_
    np.testing.assert_allclose(w.T @ w, np.eye(16), atol=1e-12)
    assert sorted(np.concatenate(fitted.groups_).tolist()) == list(range(16))
    assert all(len(g) == 4 and np.all(np.diff(g) > 0) for g in fitted.groups_)


def brute_force_optimum(v, n_groups):
    """Smallest Eq. 7 objective over all splits into equal groups (small d only)."""
    m = len(v) // n_groups

    def splits(rest):
        if not rest:
            yield []
            return
        first, others = rest[0], rest[1:]
        for combo in itertools.combinations(others, m - 1):
            left = [i for i in others if i not in combo]
            for tail in splits(left):
                yield [[first, *combo], *tail]

    return min(group_imbalance(v, [np.array(g) for g in s]).objective for s in splits(list(range(len(v)))))


variances = st.lists(st.floats(0, 1e3, allow_nan=False), min_size=1, max_size=48)


@settings(max_examples=60, deadline=None)
@given(variances, st.sampled_from([1, 2, 3, 4, 6, 8]))
def test_balanced_never_worse_than_naive_nor_below_bound(values, n_groups):
    d = len(values) - len(values) % n_groups
    if d == 0:
        return
    v = np.sort(np.array(values[:d]))[::-1]  # SVD order: descending
    groups = balanced_groups(v, n_groups)
    assert sorted(np.concatenate(groups).tolist()) == list(range(d))
    assert all(len(g) == d // n_groups for g in groups)
    tol = 1e-9 * max(v.sum(), 1.0)
    objective = group_imbalance(v, groups).objective
    assert objective <= group_imbalance(v, naive_groups(d, n_groups)).objective + tol
    assert objective >= imbalance_lower_bound(v, n_groups) - tol


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=8, max_size=8), st.sampled_from([2, 4]))
def test_lower_bound_holds_for_the_exact_optimum(values, n_groups):
    v = np.array(values)
    optimum = brute_force_optimum(v, n_groups)
    assert imbalance_lower_bound(v, n_groups) <= optimum + 1e-9 * max(v.sum(), 1.0)
    assert group_imbalance(v, balanced_groups(v, n_groups)).objective >= optimum - 1e-9 * max(v.sum(), 1.0)


def test_balanced_split_known_answers():
    groups = balanced_groups(np.arange(8, 0, -1.0), 4)
    assert [g.tolist() for g in groups] == [[0, 7], [1, 6], [2, 5], [3, 4]]
    v = np.array([100.0, 1, 1, 1])  # one dominant column: the bound is attained
    obj = group_imbalance(v, balanced_groups(v, 2))
    assert obj.objective == imbalance_lower_bound(v, 2) == 2 * 99 and obj.ratio == 101 / 2
    assert group_imbalance([1.0, 0.0], [np.array([0]), np.array([1])]).ratio == float("inf")


@pytest.mark.parametrize("method", ["kmeans", "adam"])
def test_deterministic_for_a_seed(gaussian, method):
    kw = dict(n_layers=4, codebook_size=16, fit_method=method, adam_epochs=3, seed=3)
    a, b = DQVAE(**kw).fit(gaussian), DQVAE(**kw).fit(gaussian)
    for ca, cb in zip(a.codebooks_, b.codebooks_):
        np.testing.assert_array_equal(ca, cb)
    np.testing.assert_array_equal(a.loss_history_, b.loss_history_)
    np.testing.assert_array_equal(a.encode(gaussian), b.encode(gaussian))


def test_adam_reaches_kmeans_loss(gaussian):
    km = DQVAE(n_layers=4, codebook_size=16, seed=0).fit(gaussian)
    adam = DQVAE(n_layers=4, codebook_size=16, seed=0, fit_method="adam", adam_epochs=30, batch_size=256).fit(gaussian)
    assert adam.loss_history_.shape == (30, 3)
    assert adam.loss_history_[-1, 2] < adam.loss_history_[0, 2]
    np.testing.assert_allclose(adam.loss_history_[:, 2], adam.loss_history_[:, 0] + 0.25 * adam.loss_history_[:, 1])
    assert adam.losses(gaussian)["L_T"] <= 1.03 * km.losses(gaussian)["L_T"]


def test_latent_codes_are_second_nearest(gaussian, fitted):
    codes, latent = fitted.encode(gaussian), fitted.latent_codes(gaussian)
    assert latent.shape == codes.shape and latent.dtype == np.int64
    assert np.all(latent != codes)
    for l, (xl, c) in enumerate(zip(fitted.transform(gaussian), fitted.codebooks_)):
        dist = ((xl[:, None, :] - c[None]) ** 2).sum(-1)
        second = np.sort(dist, 1)[:, 1]
        np.testing.assert_allclose(dist[np.arange(len(xl)), latent[:, l]], second, rtol=1e-9, atol=1e-12)


def test_latent_reconstructions_change_exactly_one_layer(gaussian, fitted):
    Z = gaussian[:200]
    codes, latent = fitted.encode(Z), fitted.latent_codes(Z)
    recon = fitted.latent_reconstructions(Z)
    assert recon.shape == (4, 200, 16)
    for l in range(4):
        expected = codes.copy()
        expected[:, l] = latent[:, l]
        np.testing.assert_array_equal(fitted.encode(recon[l]), expected)
        np.testing.assert_allclose(recon[l], fitted.decode(expected), atol=1e-12)
        moved = recon[l] - fitted.quantize(Z)
        others = np.concatenate([g for k, g in enumerate(fitted.groups_) if k != l])
        np.testing.assert_allclose(moved @ fitted.components_[:, others], 0, atol=1e-12)


@pytest.mark.parametrize("method", ["kmeans", "adam"])
def test_save_load_round_trip(tmp_path, gaussian, method):
    dq = DQVAE(n_layers=2, codebook_size=8, fit_method=method, adam_epochs=2, seed=5).fit(gaussian)
    path = tmp_path / "dq.npz"
    dq.save(path)
    back = DQVAE.load(path)
    assert back.get_params() == dq.get_params()
    np.testing.assert_array_equal(back.encode(gaussian), dq.encode(gaussian))
    np.testing.assert_array_equal(back.quantize(gaussian), dq.quantize(gaussian))
    np.testing.assert_array_equal(back.loss_history_, dq.loss_history_)
    assert [g.tolist() for g in back.groups_] == [g.tolist() for g in dq.groups_]


@pytest.mark.parametrize("Z, kwargs, message", [
    (np.ones((50, 10)), dict(n_layers=4), "divisible"),
    (np.random.default_rng(0).standard_normal((20, 4)), dict(n_layers=2, codebook_size=32), "exceeds"),
    (np.full((50, 4), np.nan), dict(n_layers=2, codebook_size=4), "NaN or inf"),
    (np.where(np.eye(50, 4) > 0, np.inf, 0.0), dict(n_layers=2, codebook_size=4), "NaN or inf"),
    (np.random.default_rng(0).standard_normal((8, 8)), dict(n_layers=2, codebook_size=4), "N > d"),
    (np.ones(40), dict(n_layers=1, codebook_size=4), "2-D"),
    (np.ones((40, 4, 2)), dict(n_layers=1, codebook_size=4), "2-D"),
    (np.ones((40, 4)), dict(n_layers=2, codebook_size=4, fit_method="sgd"), "fit_method"),
    (np.ones((40, 4)), dict(n_layers=2, codebook_size=1), "codebook_size must be an integer >= 2"),
])
def test_bad_fit_input(Z, kwargs, message):
    with pytest.raises(ValueError, match=message):
        DQVAE(**kwargs).fit(Z)


def test_bad_use_after_fit(gaussian, fitted):
    with pytest.raises(NotFittedError, match="not fitted"):
        DQVAE().transform(gaussian)
    assert issubclass(NotFittedError, RuntimeError)
    with pytest.raises(ValueError, match=r"\[0, 32\)"):
        fitted.decode(np.full((3, 4), 32))
    with pytest.raises(ValueError, match=r"\[0, 32\)"):
        fitted.decode(-np.ones((3, 4), dtype=int))
    with pytest.raises(ValueError, match="shape"):
        fitted.decode(np.zeros((3, 3), dtype=int))
    with pytest.raises(ValueError, match="integers"):
        fitted.decode(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="columns"):
        fitted.encode(gaussian[:, :8])
    with pytest.raises(ValueError, match="divisible"):
        balanced_groups(np.ones(10), 4)


# --------------------------------------------------------------------------- numerical-check helpers (notebook 02)

def test_decorrelation_check_on_fitting_data_and_off_it(gaussian, fitted):
    from dqrec.dqvae import decorrelation_check

    check = decorrelation_check(fitted, gaussian)
    assert check["off_diagonal_ratio"] < 1e-12 and check["max_diagonal_error"] < 1e-12
    assert check["max_diagonal"] == pytest.approx(fitted.singular_values_[0] ** 2 / len(gaussian), rel=1e-12)
    other = np.random.default_rng(9).standard_normal((500, 16)) @ np.random.default_rng(8).standard_normal((16, 16))
    assert decorrelation_check(fitted, other)["off_diagonal_ratio"] > 1e-3


def test_grouping_summary_and_shares_known_answers():
    from dqrec.dqvae import group_shares, grouping_summary

    v = np.arange(8, 0, -1.0)  # balanced: pairs (8,1), (7,2), ... all sum to 9; naive: 15, 11, 7, 3
    table = grouping_summary(v, 4).set_index("grouping")
    assert list(table.index) == ["balanced", "naive", "lower bound"]
    assert table.loc["balanced", "objective"] == 0 and table.loc["balanced", "max_min_ratio"] == 1
    assert table.loc["naive", "objective"] == group_imbalance(v, naive_groups(8, 4)).objective == 80
    assert table.loc["naive", "relative_objective"] == pytest.approx(80 / 36)
    assert table.loc["naive", "max_min_ratio"] == 5 and np.isnan(table.loc["lower bound", "max_min_ratio"])
    assert table.loc["balanced", "columns"] == "0,7 | 1,6 | 2,5 | 3,4"
    shares = group_shares(v, 4)
    assert shares.groupby("grouping").share.sum().tolist() == pytest.approx([1.0, 1.0])
    np.testing.assert_allclose(shares[shares.grouping == "naive"].share, [15 / 36, 11 / 36, 7 / 36, 3 / 36])
    with pytest.raises(ValueError, match="descending"):
        grouping_summary(v[::-1], 4)


def test_latent_distance_ratio(gaussian, fitted):
    from dqrec.dqvae import latent_distance_ratio

    ratio = latent_distance_ratio(fitted, gaussian)
    assert ratio.shape == (len(gaussian), 4) and np.all(ratio >= 1 - 1e-9)
    codes, latent = fitted.encode(gaussian), fitted.latent_codes(gaussian)
    x = fitted.transform(gaussian)
    l = 2
    d1 = np.linalg.norm(x[l] - fitted.codebooks_[l][codes[:, l]], axis=1)
    d2 = np.linalg.norm(x[l] - fitted.codebooks_[l][latent[:, l]], axis=1)
    np.testing.assert_allclose(ratio[:, l], d2 / d1, rtol=1e-12)
    on_codeword = np.array([fitted.mean_ + fitted.codebooks_[0][0] @ fitted.components_[:, fitted.groups_[0]].T])
    assert latent_distance_ratio(fitted, on_codeword)[0, 0] > 1e6  # on its codeword up to rounding


def test_compare_quantizers_returns_codes(gaussian):
    from dqrec.quantizers import compare_quantizers

    codes = {}
    table = compare_quantizers(gaussian[:400], names=("DQ-VAE", "VQ"), n_layers=4, codebook_size=8, codes=codes)
    assert set(codes) == {"DQ-VAE", "VQ"} and codes["DQ-VAE"].shape == (400, 4) and codes["VQ"].shape == (400, 1)
    assert table.loc["VQ", "distinct_ids"] == len(np.unique(codes["VQ"], axis=0))
    dq = DQVAE(n_layers=4, codebook_size=8, seed=0).fit(gaussian[:400])
    np.testing.assert_array_equal(codes["DQ-VAE"], dq.encode(gaussian[:400]))


def test_encode_with_latent_matches_encode_and_latent_codes():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(800, 16)) * np.linspace(3, 0.5, 16)
    dq = DQVAE(n_layers=4, codebook_size=16, seed=0).fit(Z)
    codes, latent = dq.encode_with_latent(Z)
    np.testing.assert_array_equal(codes, dq.encode(Z))
    np.testing.assert_array_equal(latent, dq.latent_codes(Z))

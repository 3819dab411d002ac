"""Baseline quantisers (same code budget as DQ-VAE) and semantic-ID diagnostics on known answers."""
import numpy as np
import pytest

from dqrec.dqvae import DQVAE, NotFittedError
from dqrec.quantizers import (OPQ, PQ, QUANTIZERS, RQ, VQ, codebook_utilisation, collision_rate, compare_quantizers,
                              layer_nmi, layer_variance_share, make_quantizer, relative_reconstruction_error)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    mix = np.linalg.qr(rng.standard_normal((16, 16)))[0]
    return (rng.standard_normal((800, 16)) * np.exp(-np.arange(16) / 5)) @ mix + 1.0


@pytest.mark.parametrize("name", list(QUANTIZERS))
def test_quantizer_contract(data, name):
    q = make_quantizer(name, n_layers=4, codebook_size=16, seed=0).fit(data)
    codes = q.encode(data)
    n_layers = 1 if name == "VQ" else 4
    assert codes.shape == (800, n_layers) and codes.dtype == np.int64
    assert codes.min() >= 0 and codes.max() < 16
    z_hat = q.decode(codes)
    assert z_hat.shape == data.shape
    assert relative_reconstruction_error(data, z_hat) < 1.0
    again = make_quantizer(name, n_layers=4, codebook_size=16, seed=0).fit(data)
    np.testing.assert_array_equal(again.encode(data), codes)


def test_more_structure_lowers_error(data):
    errors = {name: relative_reconstruction_error(data, q.decode(q.encode(data)))
              for name, q in ((n, make_quantizer(n, 4, 16, 0).fit(data)) for n in ("DQ-VAE", "PQ", "OPQ", "VQ"))}
    assert errors["OPQ"] < errors["PQ"]  # OPQ starts from PQ (R = I) and only lowers the error
    assert errors["DQ-VAE"] < errors["VQ"] and errors["PQ"] < errors["VQ"]


def test_opq_rotation_is_orthogonal(data):
    q = OPQ(n_layers=4, codebook_size=16).fit(data)
    np.testing.assert_allclose(q.rotation_.T @ q.rotation_, np.eye(16), atol=1e-10)


def test_rq_levels_shrink_the_residual(data):
    q = RQ(n_layers=3, codebook_size=8).fit(data)
    codes = q.encode(data)
    errors = [((data - sum(c[codes[:, l]] for l, c in enumerate(q.codebooks_[:k]))) ** 2).sum() for k in (1, 2, 3)]
    assert errors[0] > errors[1] > errors[2]


def test_quantizer_bad_input(data):
    with pytest.raises(ValueError, match="unknown quantizer"):
        make_quantizer("LSH")
    assert isinstance(make_quantizer("dqvae"), DQVAE) and isinstance(make_quantizer("pq"), PQ)
    assert make_quantizer("VQ", n_layers=4).n_layers == 1
    with pytest.raises(NotFittedError):
        PQ().encode(data)
    with pytest.raises(ValueError, match="divisible"):
        PQ(n_layers=3, codebook_size=4).fit(data)
    with pytest.raises(ValueError, match="exceeds"):
        VQ(codebook_size=1000).fit(data)
    q = PQ(n_layers=4, codebook_size=4).fit(data)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        q.decode(np.full((2, 4), 4))
    with pytest.raises(ValueError, match="NaN"):
        q.encode(np.full((2, 16), np.nan))


def test_relative_reconstruction_error_known_answers(data):
    assert relative_reconstruction_error(data, data) == 0.0
    assert relative_reconstruction_error(data, np.tile(data.mean(0), (len(data), 1))) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        relative_reconstruction_error(data, data[:10])


def test_layer_variance_share_sums_to_one(data):
    dq = DQVAE(n_layers=4, codebook_size=8).fit(data)
    share = layer_variance_share(dq)
    assert share.shape == (4,) and share.sum() == pytest.approx(1.0)
    var = dq.singular_values_ ** 2
    np.testing.assert_allclose(share, [var[g].sum() / var.sum() for g in dq.groups_])
    x = dq.transform(data)  # the share is also each layer's share of the latent variance
    np.testing.assert_allclose(share, [(xl ** 2).sum() for xl in x] / sum((xl ** 2).sum() for xl in x))


def test_codebook_utilisation_known_answers():
    codes = np.column_stack([np.tile(np.arange(8), 10), np.zeros(80, int), np.repeat([0, 1], [60, 20])])
    usage = codebook_utilisation(codes, 8)
    assert usage.used.tolist() == [8, 1, 2]
    assert usage.used_share.tolist() == [1.0, 0.125, 0.25]
    np.testing.assert_allclose(usage.perplexity, [8.0, 1.0, np.exp(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25)))])


def test_collision_rate_known_answers():
    assert collision_rate(np.array([[0, 1], [0, 1], [0, 2], [1, 1]])) == 0.5
    assert collision_rate(np.array([[0, 1], [1, 0], [1, 1]])) == 0.0
    assert collision_rate(np.zeros((5, 3), int)) == 1.0
    with pytest.raises(ValueError, match="integer"):
        collision_rate(np.zeros((3, 2)))


def test_layer_nmi_known_answers():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, 20000)
    relabelled = (a + 1) % 4  # same partition, other labels
    independent = rng.integers(0, 4, 20000)
    nmi = layer_nmi(np.column_stack([a, a, relabelled, independent]))
    assert nmi.shape == (4, 4)
    np.testing.assert_allclose(nmi, nmi.T)
    np.testing.assert_allclose(nmi[:3, :3], 1.0, atol=1e-12)
    assert nmi[3, :3].max() < 1e-3
    half = layer_nmi(np.column_stack([a, a // 2]))[0, 1]  # a//2 is a function of a: I = H(a//2) = ln 2
    assert half == pytest.approx(np.log(2) / ((np.log(4) + np.log(2)) / 2), abs=1e-3)
    assert layer_nmi(np.zeros((10, 2), int))[0, 1] == 1.0


def test_compare_quantizers_table(data):
    table = compare_quantizers(data, names=("DQ-VAE", "PQ", "VQ"), n_layers=4, codebook_size=8, seed=0)
    assert table.index.tolist() == ["DQ-VAE", "PQ", "VQ"]
    assert {"fit_seconds", "rel_recon_error", "mean_perplexity", "collision_rate", "mean_nmi", "mean_nmi_chance",
            "distinct_ids"} <= set(table.columns)
    assert table.loc["VQ", "distinct_ids"] <= 8 and np.isnan(table.loc["VQ", "mean_nmi"])
    assert (table.rel_recon_error < 1).all() and (table.mean_perplexity <= 8).all()


# ----------------------------------------------------------------------------- chapter 02's tables
def test_spectrum_summary_known_answers():
    from dqrec.quantizers import spectrum_summary

    row = spectrum_summary({"user": np.array([4.0, 2.0, 1.0, 1.0])}).loc["user"]
    assert row["total variance"] == 8 and row["largest share"] == 0.5 and row["largest / smallest"] == 4
    assert row["dims for 50 %"] == 1 and row["dims for 90 %"] == 4  # cumulative shares .5, .75, .875, 1


def test_loss_identity_and_fit_methods_on_a_real_fit(data):
    from dqrec.quantizers import compare_fit_methods, loss_identity

    model = DQVAE(4, 16, beta=0.25, seed=0).fit(data)
    identity = loss_identity({"user": model}, {"user": data}).loc["user"]
    assert identity["|L_R - L_C| / L_C"] < 1e-10 and identity["L_T / L_C"] == pytest.approx(1.25, rel=1e-10)
    table, histories, kmeans_losses = compare_fit_methods({"user": data, "item": data[:400]}, 4, 16, 0.25, seed=0)
    assert table[["side", "fit_method"]].values.tolist() == [["user", "kmeans"], ["user", "adam"],
                                                              ["item", "kmeans"], ["item", "adam"]]
    kmeans = table[table.fit_method == "kmeans"]
    assert (kmeans["L_T / k-means L_T"] == 1).all() and kmeans.L_T.tolist() == [kmeans_losses[s]["L_T"]
                                                                                 for s in ("user", "item")]
    assert table.N.tolist() == [800, 800, 400, 400] and set(histories) == {"user", "item"}
    assert kmeans_losses["user"]["L_T"] == pytest.approx(model.losses(data)["L_T"])  # the same seeded k-means fit


def test_latent_ratio_summary_counts_per_layer():
    from dqrec.quantizers import latent_ratio_summary

    ratios = np.array([[1.05, 3.0], [1.2, 1.6], [1.8, 1.4], [2.5, 1.01]])
    t = latent_ratio_summary({"item": ratios}).set_index(["side", "layer"])
    assert t.loc[("item", 1), "share < 1.1"] == 0.25 and t.loc[("item", 1), "share < 2"] == 0.75
    assert t.loc[("item", 2), "median"] == pytest.approx(1.5) and t.loc[("item", 2), "share < 1.5"] == 0.5


def test_comparison_orderings_rank_and_name_better_reconstructions():
    import pandas as pd

    from dqrec.quantizers import comparison_orderings

    c = pd.DataFrame(dict(side="user", quantizer=["DQ-VAE", "PQ", "RQ"], rel_recon_error=[0.2, 0.3, 0.1],
                          collision_rate=[0.1, 0.5, 0.0], fit_seconds=[1.0, 2.0, 3.0], mean_nmi=[0.3, 0.5, 0.2],
                          mean_nmi_chance=[0.25, 0.25, 0.25]))
    lines = comparison_orderings(c).splitlines()
    assert lines[0] == "users, rel_recon_error (ascending): RQ 0.1, DQ-VAE 0.2, PQ 0.3"
    assert lines[3] == "users, mean NMI above chance (ascending): RQ -0.050, DQ-VAE 0.050, PQ 0.250"
    assert lines[4] == "users: reconstructing better than DQ-VAE: RQ"


def test_usage_by_side_per_layer_and_per_side():
    from dqrec.quantizers import usage_by_side

    codes = {"user": np.array([[0, 1], [0, 2], [0, 1]]), "item": np.array([[3, 3], [2, 2]])}
    usage, ids = usage_by_side(codes, codebook_size=4)
    assert usage[["side", "layer", "used"]].values.tolist() == [["user", 1, 1], ["user", 2, 2], ["item", 1, 2],
                                                                 ["item", 2, 2]]
    assert usage.used_share.tolist() == [0.25, 0.5, 0.5, 0.5]
    assert ids.loc["user"].tolist() == [2, 3, pytest.approx(2 / 3)] and ids.loc["item"].tolist() == [2, 2, 0.0]

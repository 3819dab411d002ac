import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from types import SimpleNamespace

from dqrec.baselines import EASE, MFBPR, ItemKNN, MostPopular, interaction_matrix
from dqrec.evaluate import evaluate, expected_random_metrics
from dqrec.registry import model_names
from dqrec.sampling import NegativeSampler

N_USERS, N_ITEMS = 300, 80


def fast_mf(**kw):
    return MFBPR(dim=16, epochs=40, patience=40, lr=0.01, batch_size=256, progress=False, **kw)


def as_split(train):
    """The part of a Split the classical models read: train, n_users, n_items."""
    return SimpleNamespace(train=train, n_users=N_USERS, n_items=N_ITEMS)


def no_validation(model):
    return 0.0


FACTORIES = {"MostPopular": MostPopular, "ItemKNN": lambda: ItemKNN(k=20), "EASE": lambda: EASE(l2=10.0),
             "MF-BPR": fast_mf}


@pytest.fixture(scope="module")
def planted():
    """Two user groups, each liking 15 items of its own 40-item block (Zipf-like popularity within
    the block); 2 positives per user held out for test. User 0 has no train history."""
    rng = np.random.default_rng(0)
    block = np.arange(40)
    weights = 1.0 / (block + 5.0)
    rows = []
    for user in range(N_USERS):
        items = rng.choice(block, 15, replace=False, p=weights / weights.sum()) + 40 * (user % 2)
        rows += [(user, item, t) for t, item in enumerate(items)]
    df = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    is_test = df.groupby("user").timestamp.rank(ascending=False) <= 2
    train, test = df[~is_test & (df.user != 0)], df[is_test]
    known = interaction_matrix(df, N_USERS, N_ITEMS)
    return train, test.reset_index(drop=True), known


@pytest.fixture(scope="module")
def fitted(planted):
    split = as_split(planted[0])
    return {name: make().fit(split, validate=lambda m: full_recall10(m, planted)) if name == "MF-BPR"
            else make().fit(split) for name, make in FACTORIES.items()}


def full_recall10(model, planted):
    _, test, known = planted
    df = evaluate(model, test, known, N_ITEMS, protocols=("full",), ks=(10,), progress=False)
    return df.set_index("metric").value["Recall"]


def test_registry():
    assert set(FACTORIES) <= set(model_names())


def test_most_popular_beats_chance(planted, fitted):
    _, test, known = planted
    chance = expected_random_metrics(test, known, N_ITEMS, protocols=("full",), ks=(10,))
    assert full_recall10(fitted["MostPopular"], planted) > chance.set_index("metric").value["Recall"] + 0.05


@pytest.mark.parametrize("name", ["ItemKNN", "EASE", "MF-BPR"])
def test_personalised_baselines_beat_most_popular(planted, fitted, name):
    assert full_recall10(fitted[name], planted) > full_recall10(fitted["MostPopular"], planted) + 0.1


@pytest.mark.parametrize("name", list(FACTORIES))
def test_score_shape(planted, fitted, name):
    test = planted[1]
    items = np.array([3, 50, 7])
    scores = fitted[name].score(test.iloc[:5], items)
    assert scores.shape == (5, 3) and np.isfinite(scores).all()


@pytest.mark.parametrize("name", ["ItemKNN", "EASE", "MF-BPR"])
def test_user_without_history_scores_zero(planted, fitted, name):
    test = planted[1]
    np.testing.assert_array_equal(fitted[name].score(test[test.user == 0], np.arange(N_ITEMS)), 0.0)


def test_ease_matches_closed_form(planted, fitted):
    x = interaction_matrix(planted[0], N_USERS, N_ITEMS).toarray().astype(float)
    p = np.linalg.inv(x.T @ x + 10.0 * np.eye(N_ITEMS))
    b = np.eye(N_ITEMS) - p / np.diag(p)[None, :]
    np.testing.assert_array_equal(np.diag(fitted["EASE"].b_), 0.0)
    np.testing.assert_allclose(fitted["EASE"].b_, b, atol=1e-6)


def test_itemknn_keeps_top_k_cosine_neighbours(planted):
    train = planted[0]
    x = interaction_matrix(train, N_USERS, N_ITEMS).toarray()
    norms = np.linalg.norm(x, axis=0)
    cosine = x.T @ x / np.outer(norms, norms)
    np.fill_diagonal(cosine, 0.0)
    full = ItemKNN(k=N_ITEMS).fit(as_split(train))
    np.testing.assert_allclose(full.w_.toarray(), cosine, atol=1e-6)
    pruned = ItemKNN(k=5, chunk=7).fit(as_split(train))
    assert (np.diff(pruned.w_.indptr) <= 5).all()  # at most k neighbours per item (csc columns)
    kept = pruned.w_.toarray()
    np.testing.assert_allclose(kept[kept > 0], cosine[kept > 0], atol=1e-6)
    np.testing.assert_allclose(np.sort(kept, 0)[-5:], np.sort(cosine, 0)[-5:], atol=1e-6)


def test_most_popular_counts_distinct_users():
    train = pd.DataFrame({"user": [0, 0, 1, 2], "item": [1, 1, 1, 0], "timestamp": [0, 1, 2, 3]})
    model = MostPopular().fit(SimpleNamespace(train=train, n_users=3, n_items=3))
    np.testing.assert_array_equal(model.score(train.iloc[:2], np.array([0, 1, 2])), [[1, 2, 0]] * 2)


def test_mf_bpr_deterministic_for_a_seed(planted):
    train, test, _ = planted
    items = np.arange(N_ITEMS)
    run = lambda seed: MFBPR(dim=8, epochs=2, progress=False, seed=seed).fit(as_split(train), validate=no_validation)
    a, b, c = run(0), run(0), run(1)
    np.testing.assert_array_equal(a.score(test, items), b.score(test, items))
    assert not np.allclose(a.score(test, items), c.score(test, items))
    assert [h["loss"] for h in a.history_] == [h["loss"] for h in b.history_]


def test_mf_bpr_early_stopping_restores_best(planted):
    train = planted[0]
    scores = iter([0.1, 0.5, 0.4, 0.3, 0.2, 0.1])
    snapshots = []

    def valid_fn(model):
        snapshots.append(model.net_.item.detach().clone())
        return next(scores)

    model = MFBPR(dim=8, epochs=6, patience=2, progress=False).fit(as_split(train), validate=valid_fn)
    assert [h["valid"] for h in model.history_] == [0.1, 0.5, 0.4, 0.3]
    assert torch_equal(model.net_.item, snapshots[1])


def torch_equal(a, b):
    return np.array_equal(a.detach().numpy(), b.numpy())


def test_mf_bpr_negatives_avoid_train_positives():
    users = np.repeat(np.arange(3), 1000)
    keys = np.sort(np.array([0 * 4 + 0, 0 * 4 + 1, 0 * 4 + 2, 1 * 4 + 3]))
    neg = NegativeSampler(keys // 4, keys % 4, 4).sample(users, np.random.default_rng(0))
    assert (neg[users == 0] == 3).all()
    assert set(neg[users == 1]) == {0, 1, 2} and set(neg[users == 2]) == {0, 1, 2, 3}
    assert not np.isin(users * 4 + neg, keys).any()


def test_fit_rejects_out_of_range_indices():
    train = pd.DataFrame({"user": [0, 5], "item": [0, 1], "timestamp": [0, 1]})
    with pytest.raises(ValueError, match="out of range"):
        EASE().fit(SimpleNamespace(train=train, n_users=3, n_items=3))
    assert isinstance(interaction_matrix(train, 6, 2), sp.csr_matrix)

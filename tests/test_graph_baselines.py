"""NCF, NGCF, LightGCN, HCCF and SimRec on tiny data: shapes, learning, determinism, training edges
only, and one-step loss values of HCCF and SimRec against hand computations (numpy)."""
import itertools
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from dqrec.baselines import MostPopular, interaction_matrix
from dqrec.baselines.graph import bipartite_adjacency
from dqrec.baselines.hccf import HCCF
from dqrec.baselines.lightgcn import LightGCN
from dqrec.baselines.ncf import NCF
from dqrec.baselines.ngcf import NGCF
from dqrec.baselines.simrec import SimRec, gradient_weights
from dqrec.evaluate import evaluate
from dqrec.registry import make_model, model_names

N_USERS, N_ITEMS = 200, 60
FAST = dict(dim=16, lr=0.01, batch_size=256, progress=False, device="cpu")
FACTORIES = {
    "NCF": lambda **kw: NCF(**FAST, **kw),
    "NGCF": lambda **kw: NGCF(**FAST, **kw),
    "LightGCN": lambda **kw: LightGCN(**FAST, **kw),
    "HCCF": lambda **kw: HCCF(**FAST, n_hyperedges=16, **kw),
    "SimRec": lambda **kw: SimRec(**FAST, n_distill_triples=2000, **kw),
}


def make_split(samples: pd.DataFrame) -> SimpleNamespace:
    """The parts of a Split these models read."""
    part = lambda p: samples[samples.part == p]  # noqa: E731
    return SimpleNamespace(samples=samples, train=part("train"), valid=part("valid"), test=part("test"),
                           n_users=N_USERS, n_items=N_ITEMS)


@pytest.fixture(scope="module")
def planted():
    """Two user groups, each liking 12 items of its own 30-item block (Zipf-like within the block);
    per user the last 2 positives are test, the 2 before valid. User 0 has no train history."""
    rng = np.random.default_rng(0)
    block = np.arange(30)
    weights = 1.0 / (block + 4.0)
    rows = []
    for user in range(N_USERS):
        items = rng.choice(block, 12, replace=False, p=weights / weights.sum()) + 30 * (user % 2)
        rows += [(user, item, t) for t, item in enumerate(items)]
    df = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    rank = df.groupby("user").timestamp.rank(ascending=False)
    df["part"] = np.where(rank <= 2, "test", np.where(rank <= 4, "valid", "train"))
    df = df[(df.part != "train") | (df.user != 0)].reset_index(drop=True)
    return make_split(df)


def full_recall10(model, split, part="test"):
    samples = getattr(split, part)
    res = evaluate(model, samples, interaction_matrix(split.samples, N_USERS, N_ITEMS), N_ITEMS,
                   protocols=("full",), ks=(10,), progress=False)
    return res.set_index("metric").value["Recall"]


@pytest.fixture(scope="module")
def fitted(planted):
    valid = lambda m: full_recall10(m, planted, "valid")  # noqa: E731
    return {name: make(epochs=40, patience=8).fit(planted, validate=valid) for name, make in FACTORIES.items()}


def test_registered():
    assert set(FACTORIES) <= set(model_names())
    assert make_model("LightGCN").get_params()["dim"] == 64 and make_model("NCF").get_params()["lr"] == 1e-3


@pytest.mark.parametrize("name", list(FACTORIES))
def test_learns_planted_structure(planted, fitted, name):
    popular = MostPopular().fit(planted)
    assert full_recall10(fitted[name], planted) > full_recall10(popular, planted) + 0.1


@pytest.mark.parametrize("name", list(FACTORIES))
def test_score_shape(planted, fitted, name):
    scores = fitted[name].score(planted.test.iloc[:5], np.array([3, 50, 7]))
    assert scores.shape == (5, 3) and np.isfinite(scores).all()
    assert fitted[name].trainer_.summary()["epochs_run"] >= 1


def with_other_holdout(split: SimpleNamespace) -> SimpleNamespace:
    """Same train part; valid and test positives replaced by other (random) items."""
    s = split.samples.copy()
    held = s.part != "train"
    s.loc[held, "item"] = np.random.default_rng(1).integers(0, N_ITEMS, held.sum())
    return make_split(s)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_deterministic_and_uses_training_edges_only(planted, name):
    """Same seed, same scores; another seed, other scores; other valid/test positives (same train),
    the same scores: nothing but the training part reaches the model."""
    items = np.arange(N_ITEMS)

    def run(split, seed):
        epoch = itertools.count()
        model = FACTORIES[name](epochs=2, seed=seed).fit(split, validate=lambda m: next(epoch))
        return model.score(planted.test, items)

    a = run(planted, 0)
    np.testing.assert_array_equal(a, run(planted, 0))
    np.testing.assert_array_equal(a, run(with_other_holdout(planted), 0))
    assert not np.allclose(a, run(planted, 1))


def test_adjacency_is_the_normalised_training_graph(planted):
    adj = bipartite_adjacency(planted.train, N_USERS, N_ITEMS).to_dense()
    x = interaction_matrix(planted.train, N_USERS, N_ITEMS).toarray()
    a = np.block([[np.zeros((N_USERS, N_USERS)), x], [x.T, np.zeros((N_ITEMS, N_ITEMS))]])
    d = a.sum(1)
    inv = np.where(d > 0, 1 / np.sqrt(np.maximum(d, 1)), 0.0)
    np.testing.assert_allclose(adj, inv[:, None] * a * inv[None, :], rtol=1e-6)
    assert not adj[0].any()  # user 0 has no training edge


# ---- tiny graph, hand computations -------------------------------------------------------------
TINY_USERS, TINY_ITEMS = 3, 4


@pytest.fixture
def tiny():
    train = pd.DataFrame({"user": [0, 0, 1, 1, 2], "item": [0, 1, 1, 2, 3], "timestamp": range(5)})
    a = np.zeros((7, 7))
    for u, i in zip(train.user, train.item):
        a[u, 3 + i] = a[3 + i, u] = 1.0
    d = a.sum(1)
    return SimpleNamespace(train=train, n_users=TINY_USERS, n_items=TINY_ITEMS, a_hat=a / np.sqrt(np.outer(d, d)))


def init_on(model, split):
    """The fitted state of ``model`` before its first step: fit for one epoch with a learning rate so
    small the weights stay put (the Trainer always runs one epoch)."""
    model.lr = 1e-30
    return model.fit(split, validate=lambda m: 0.0)


def bce_bpr(pos, neg):
    return -np.mean(np.log(1 / (1 + np.exp(-(pos - neg)))))


def test_lightgcn_propagation_and_loss(tiny):
    model = init_on(LightGCN(dim=4, progress=False, device="cpu", l2=0.1), tiny)
    e0 = torch.cat([model.net_.user, model.net_.item]).detach().numpy().astype(np.float64)
    layers = [e0]
    for _ in range(3):
        layers.append(tiny.a_hat @ layers[-1])
    e = np.mean(layers, 0)
    np.testing.assert_allclose(model.user_emb_.numpy(), e[:3], rtol=1e-5, atol=1e-7)
    u, i, j = np.array([0, 1, 2]), np.array([0, 2, 3]), np.array([3, 0, 1])
    batch = tuple(torch.from_numpy(a) for a in (u, i, j))
    want = bce_bpr((e[u] * e[3 + i]).sum(1), (e[u] * e[3 + j]).sum(1)) \
        + 0.1 * ((e0[u] ** 2).sum() + (e0[3 + i] ** 2).sum() + (e0[3 + j] ** 2).sum()) / 2 / 3
    assert float(model._loss(batch).detach()) == pytest.approx(want, rel=1e-5)


def test_ncf_cross_scores_match_pairwise_forward(planted, fitted):
    net = fitted["NCF"].net_
    u, i = torch.arange(7), torch.arange(N_ITEMS)
    pairs = net(u.repeat_interleave(N_ITEMS), i.repeat(7)).reshape(7, N_ITEMS)
    torch.testing.assert_close(net.cross(u, i), pairs, rtol=1e-5, atol=1e-6)


def info_nce_np(anchor, positive, nodes, temperature, negatives=None):
    n = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    a, p = n(anchor[nodes]), n(positive[nodes])
    c = p if negatives is None else n(negatives)
    logits = a @ c.T / temperature
    return np.mean(-np.log(np.exp((a * p).sum(1) / temperature) / np.exp(logits).sum(1)))


def test_hccf_one_step_loss_by_hand(tiny):
    model = init_on(HCCF(dim=4, n_hyperedges=3, keep_rate=1.0, temperature=0.5, ssl_reg=0.3, l2=0.01,
                         progress=False, device="cpu"), tiny)
    net = model.net_
    eu, ei = (p.detach().numpy().astype(np.float64) for p in (net.user, net.item))
    wu, wi = (p.detach().numpy().astype(np.float64) for p in (net.user_hyper, net.item_hyper))
    hu, hi = eu @ wu, ei @ wi
    layers, local, hyper = [np.vstack([eu, ei])], [], []
    for _ in range(2):
        last = layers[-1]
        z = tiny.a_hat @ last
        g = np.vstack([hu @ (hu.T @ last[:3]), hi @ (hi.T @ last[3:])])
        local.append(z), hyper.append(g), layers.append(z + g)
    e = sum(layers)
    u, i, j = np.array([0, 1, 1]), np.array([1, 2, 2]), np.array([2, 0, 0])
    bpr = bce_bpr((e[u] * e[3 + i]).sum(1), (e[u] * e[3 + j]).sum(1))
    users, items = np.unique(u), np.unique(i)
    cl = sum(info_nce_np(z[:3], g[:3], users, 0.5) + info_nce_np(z[3:], g[3:], items, 0.5) for z, g in zip(local, hyper))
    reg = sum((w ** 2).sum() for w in (eu, ei, wu, wi))
    batch = tuple(torch.from_numpy(a) for a in (u, i, j))
    assert float(model._loss(batch).detach()) == pytest.approx(bpr + 0.3 * cl + 0.01 * reg, rel=1e-5)


def test_simrec_gradient_weights():
    g_cd, g_soft = torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    g_main = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])  # agrees with the distillation sum / opposes it
    np.testing.assert_allclose(gradient_weights(g_cd, g_soft, g_main).numpy(), [0.8, 1.2])


def test_simrec_one_step_loss_by_hand(tiny):
    model = SimRec(dim=4, n_distill_triples=5, cd_reg=0.5, soft_reg=0.7, sc_reg=0.9, tau_soft=0.5, tau_cd=0.2,
                   tau_sc=2.0, l2=0.01, epochs=1, progress=False, device="cpu")
    model = init_on(model, tiny)
    net = model.net_
    eu, ei, w = (p.detach().numpy().astype(np.float64) for p in (net.user, net.item, net.w))
    f = lambda e: np.where(e @ w > 0, e @ w, 0.5 * (e @ w)) + e  # noqa: E731
    fu, fi = f(eu), f(ei)
    tu, ti = model.teacher_user_.numpy().astype(np.float64), model.teacher_item_.numpy().astype(np.float64)
    high = model.teacher_high_.numpy().astype(np.float64)
    teacher = model.teacher_.net_
    t0 = np.vstack([p.detach().numpy() for p in (teacher.user, teacher.item)]).astype(np.float64)
    np.testing.assert_allclose(high, tiny.a_hat @ tiny.a_hat @ t0, rtol=1e-5, atol=1e-7)  # layer 2 of 2
    np.testing.assert_allclose(np.vstack([tu, ti]), t0 + tiny.a_hat @ t0 + high, rtol=1e-5, atol=1e-7)

    u, i = np.array([0, 1, 2]), np.array([1, 2, 3])
    ru, ri, rj = np.array([0, 2, 1, 0, 1]), np.array([3, 0, 1, 2, 2]), np.array([1, 1, 0, 3, 0])
    batch = tuple(torch.from_numpy(a) for a in (u, i, ru, ri, rj))
    terms, (w_u, w_i) = model.loss_terms(batch)
    users, items = np.unique(u), np.unique(i)
    want = dict(main=-np.mean((fu[u] * fi[i]).sum(1)),
                contrast_distill=0.5 * (info_nce_np(high[:3], eu, users, 0.2, eu) + info_nce_np(high[3:], ei, items, 0.2, ei)))
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    p = sig((tu[ru] * (ti[ri] - ti[rj])).sum(1) / 0.5)
    q = sig((fu[ru] * (fi[ri] - fi[rj])).sum(1) / 0.5)
    want["soft_target_distill"] = 0.7 * -np.mean(p * np.log(q + 1e-8) + (1 - p) * np.log(1 - q + 1e-8))
    lp = lambda a, b: np.log(np.exp(a @ b.T / 2.0).sum(1) + 1e-5)  # noqa: E731
    wu_, wi_ = w_u.numpy(), w_i.numpy()
    assert set(wu_) | set(wi_) <= {np.float32(0.8), np.float32(1.2)}
    want["contrast_reg"] = 0.9 * (np.mean(wu_ * lp(fu[users], fi)) + np.mean(wu_ * lp(fu[users], fu))
                                  + np.mean(wi_ * lp(fi[items], fi)))
    want["l2"] = 0.01 * ((eu ** 2).sum() + (ei ** 2).sum())
    assert {k: float(v) for k, v in terms.items()} == pytest.approx(want, rel=1e-5)

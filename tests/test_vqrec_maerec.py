"""VQRec (text -> OPQ codes -> mean code embeddings -> transformer) and MAERec (training-only transition
graph, adaptive path masking, graph autoencoder): the pieces, that both learn planted sequential
structure, determinism, causal masking."""
import numpy as np
import pandas as pd
import pytest
import torch

from dqrec.baselines import LABELS, NOT_RUN, MostPopular
from dqrec.baselines.itemtext import ItemTextEncoder, item_texts, opq_codes
from dqrec.baselines.maerec import MAERec, in_sorted
from dqrec.baselines.transition_graph import mask_paths, transition_graph
from dqrec.baselines.vqrec import CodeItemEmbedding, VQRec
from dqrec.evaluate import evaluate
from dqrec.registry import make_model, model_names
from tests.sequences import COLUMNS, item_cycle, make_split

SMALL = {"dim": 16, "max_len": 8, "batch_size": 128, "lr": 5e-3, "epochs": 15, "patience": 15, "progress": False,
         "device": "cpu"}
VQ_SMALL = dict(SMALL, text_dim=32, n_code_groups=8, n_codewords=16, dropout=0.1)
MAE_SMALL = dict(SMALL, n_seeds=5, reconstruction_batch=256, n_reconstruction_negatives=8)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def planted():
    """The item cycle (:func:`tests.sequences.item_cycle`): the next item is the last one plus 1."""
    return make_split(item_cycle(240))


def recall10(model, split):
    res = evaluate(model, split.test, split.known(), split.n_items, protocols=("full",), ks=(10,), progress=False)
    return res.set_index("metric").value["Recall"]


@pytest.fixture(scope="module")
def fitted(planted):
    return {"VQRec": VQRec(**VQ_SMALL).fit(planted), "MAERec": MAERec(**MAE_SMALL).fit(planted)}


# ----------------------------------------------------------------------------- VQRec: text and codes
def test_item_texts_hold_title_genres_year():
    items = pd.DataFrame({"title": ["Toy Story (1995)", "Heat"], "genres": ["Animation|Comedy", None],
                          "year": [1995.0, np.nan]})
    assert item_texts(items) == ["Toy Story (1995). Genres: Animation, Comedy. Year: 1995.", "Heat."]


def test_tfidf_svd_is_deterministic_and_separates_texts():
    texts = [f"Film {i}. Genres: {'Drama' if i % 2 else 'Comedy'}." for i in range(40)]
    enc = ItemTextEncoder("tfidf-svd", dim=16)
    a, b = enc.encode(texts), enc.encode(texts)
    assert a.shape == (40, 16) and a.dtype == np.float32 and np.array_equal(a, b)
    same, other = np.corrcoef(a[[0, 2, 1]])[0, 1:]  # same genre vs other genre
    assert same > other


def test_opq_codes_shape_range_determinism_and_strict_fit():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 40)).astype(np.float32)
    fit_rows = np.arange(200)
    codes = opq_codes(x, fit_rows, n_groups=8, n_codewords=16)
    assert codes.shape == (300, 8) and codes.dtype == np.int64
    assert codes.min() >= 0 and codes.max() < 16 and len(np.unique(codes)) == 16
    assert np.array_equal(codes, opq_codes(x, fit_rows, 8, 16))  # deterministic
    y = x.copy()
    y[200:] = rng.standard_normal((100, 40))  # items outside the fit rows change: the quantiser must not
    assert np.array_equal(codes[:200], opq_codes(y, fit_rows, 8, 16)[:200])
    z = x.copy()
    z[:5] += 3.0  # a fit row changes: the quantiser (and so the codes) does
    assert not np.array_equal(codes[5:], opq_codes(z, fit_rows, 8, 16)[5:])
    dup = np.vstack([x, x[:1]])
    assert np.array_equal(opq_codes(dup, fit_rows, 8, 16)[-1], opq_codes(dup, fit_rows, 8, 16)[0])
    with pytest.raises(ValueError, match="power of two"):
        opq_codes(x, fit_rows, 8, 12)


def test_opq_codes_keep_neighbours_close():
    """Two well separated clusters of texts: same-cluster items share more codes than cross-cluster ones."""
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((2, 32)) * 5
    x = (centres[np.arange(400) % 2] + rng.standard_normal((400, 32))).astype(np.float32)
    codes = opq_codes(x, np.arange(400), n_groups=4, n_codewords=16)
    shared = (codes[:, None, :] == codes[None, :, :]).mean(-1)
    same = np.equal.outer(np.arange(400) % 2, np.arange(400) % 2)
    assert shared[same].mean() > 3 * shared[~same].mean()


def test_item_representation_is_the_mean_of_its_code_embeddings():
    codes = np.array([[0, 3, 1], [2, 2, 0], [3, 0, 3]])
    emb = CodeItemEmbedding(codes, n_codewords=4, dim=5)
    torch.nn.init.normal_(emb.codes.weight)
    w = emb.codes.weight
    for i in range(3):
        expected = torch.stack([w[1 + k * 4 + codes[i, k]] for k in range(3)]).mean(0)
        assert torch.allclose(emb.weight[i], expected)
    assert torch.allclose(emb(torch.tensor([[2, 0]])), emb.weight[[2, 0]][None])
    assert emb.code_ids[3:].eq(0).all()  # padding and mask ids use the padding code only


def test_sentence_transformer_route_with_a_local_tiny_model(tmp_path, monkeypatch):
    st = pytest.importorskip("sentence_transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    texts = item_texts(pd.DataFrame({"title": ["Toy Story", "Heat", "Alien"], "genres": ["Comedy", "Crime", "Horror"],
                                     "year": [1995.0, 1995.0, 1979.0]}))
    words = sorted({w for t in texts for w in t.lower().replace(".", " ").replace(",", " ").replace(":", " ").split()})
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    folder = tmp_path / "tiny-bert"
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                            sep_token="[SEP]", mask_token="[MASK]").save_pretrained(folder)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(folder)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    st.SentenceTransformer(str(folder), device="cpu").save(str(tmp_path / "st"))  # wraps it: BERT + mean pooling
    out = ItemTextEncoder(str(tmp_path / "st")).encode(texts)
    assert out.shape == (3, 32) and out.dtype == np.float32 and np.isfinite(out).all()
    assert not np.allclose(out[0], out[1])
    assert np.allclose(out, ItemTextEncoder(str(tmp_path / "st")).encode(texts), atol=1e-6)


# ----------------------------------------------------------------------------- MAERec: graph and masking
def test_transition_graph_links_items_within_distance_of_a_users_training_sequence():
    train = pd.DataFrame({"user": [0, 1, 0, 0, 1, 0], "item": [0, 5, 1, 2, 6, 3]})  # time-sorted
    edges = {tuple(e) for e in transition_graph(train, 8, distance=2)}
    assert edges == {(0, 1), (0, 2), (1, 2), (1, 3), (2, 3), (5, 6)}


def test_maerec_graph_uses_training_transitions_only():
    """Users first walk items 0..4 (early: the training part), then each rates a new item 10 + u late
    (validation/test): those last transitions must not be edges of the graph MAERec trains on."""
    rows = [(u, (u + k) % 5, 5.0, float(10 * u + k)) for u in range(10) for k in range(4)]
    rows += [(u, 10 + u, 5.0, 1000.0 + u) for u in range(10)]
    split = make_split(pd.DataFrame(rows, columns=COLUMNS))
    assert set(split.part("train").item) <= set(range(5)) and len(split.train) == 40
    model = MAERec(**{**MAE_SMALL, "epochs": 1}).fit(split)
    got = {tuple(e) for e in model.edges_}
    assert got == {tuple(e) for e in transition_graph(split.train, split.n_items, model.distance)}
    assert all(a < 5 and b < 5 for a, b in got)  # no edge reaches a held-out item
    assert {(a, b) for a in range(5) for b in range(a + 1, 5)} <= got


def test_path_masking_on_a_chain_removes_exactly_the_paths_from_the_seed():
    chain = np.array([[i, i + 1] for i in range(9)])
    rng = np.random.default_rng(0)
    for depth in (1, 2, 3):
        kept, masked = mask_paths(chain, np.array([0]), depth, 1.0, rng)
        assert {tuple(e) for e in masked} == {(i, i + 1) for i in range(depth)}
        assert len(kept) + len(masked) == len(chain)
        assert not ({tuple(e) for e in kept} & {tuple(e) for e in masked})


def test_path_masking_thins_the_frontier_by_path_prob_per_hop():
    """Star 0-(1..8), each leaf i also linked to 10+i. Hop 1 masks the 8 spokes; of the 9 nodes reached,
    floor(9 * 0.5) = 4 go on, so hop 2 masks one outer edge per leaf among them: 3 or 4 edges."""
    star = np.array([[0, i] for i in range(1, 9)] + [[i, 10 + i] for i in range(1, 9)])
    counts = set()
    for s in range(30):
        _, masked = mask_paths(star, np.array([0]), 2, 0.5, np.random.default_rng(s))
        outer = [e for e in masked if e[0] != 0]
        assert len(masked) - len(outer) == 8
        counts.add(len(outer))
    assert counts <= {3, 4} and 4 in counts
    _, masked = mask_paths(star, np.array([0]), 2, 1.0, np.random.default_rng(0))
    assert len(masked) == 16  # path_prob 1: every reached node goes on


def test_in_sorted_is_set_membership():
    """MAERec's test of corrupted pairs against the graph's sorted edge keys: np.isin's answer, for
    queries below, between, on and above the keys, in the query's shape; no keys: nothing is in."""
    rng = np.random.default_rng(0)
    keys = np.unique(rng.integers(0, 1000, 300))
    query = np.r_[keys[:50], rng.integers(-5, 1100, 230)].reshape(40, 7)
    got = in_sorted(keys, query)
    assert got.shape == query.shape and got.sum() >= 50
    np.testing.assert_array_equal(got, np.isin(query, keys))
    assert not in_sorted(keys[:0], query).any()


# ----------------------------------------------------------------------------- both: learning, determinism, masks
@pytest.mark.parametrize("name", ["VQRec", "MAERec"])
def test_learns_planted_sequential_structure(fitted, planted, name):
    popular = recall10(MostPopular().fit(planted), planted)
    got = recall10(fitted[name], planted)
    assert got > popular + 0.3, (name, got, popular)
    assert fitted[name].trainer_.summary()["epochs_run"] >= 1


@pytest.mark.parametrize("name,params", [("VQRec", VQ_SMALL), ("MAERec", MAE_SMALL)])
def test_same_seed_same_scores(planted, name, params):
    short = dict(params, epochs=2)
    a, b = (make_model(name, **short).fit(planted) for _ in range(2))
    batch = planted.test.iloc[:50]
    items = np.arange(planted.n_items)
    assert np.array_equal(a.score(batch, items), b.score(batch, items))


@pytest.mark.parametrize("name", ["VQRec", "MAERec"])
def test_a_later_item_never_changes_an_earlier_output(fitted, name):
    model = fitted[name]
    net = model.net_.eval()
    if name == "MAERec":
        net.item_embedding.propagate(model.full_adj_)
    seq = torch.tensor([[60, 3, 5, 7, 9, 11, 13, 15], [60, 60, 2, 4, 6, 8, 10, 12]])
    later = seq.clone()
    later[:, 5] = torch.tensor([40, 41])
    with torch.no_grad():
        a, b = net(seq), net(later)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-6)
    assert not torch.allclose(a[:, 5:], b[:, 5:], atol=1e-6)


def test_registered_and_llmrec_has_a_reason_not_a_model():
    assert {"VQRec", "MAERec"} <= set(model_names())
    assert "LLMRec" not in model_names()
    assert "language model" in NOT_RUN["LLMRec"]
    assert VQRec().text_encoder == "tfidf-svd" and "TF-IDF" in LABELS["VQRec"]  # the default is named where shown



def test_consistency_scores_stay_finite_when_a_draw_rounds_to_one():
    """A uniform draw just below 1 is 1.0 in float32; its Gumbel noise must stay finite (it made MAERec's
    loss -inf on ML-100K), and draws below 1 must keep their value."""
    import scipy.sparse as sp

    from dqrec.baselines.transition_graph import consistency_scores

    class Draws:
        def __init__(self, value):
            self.value = value

        def random(self, n):
            return np.full(n, self.value)

    adj = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], np.float32))
    emb = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(consistency_scores(adj, emb, 1, 0.5, Draws(1 - 1e-9))).all()
    half = consistency_scores(adj, emb, 1, 0.5, Draws(0.5))
    cos = torch.nn.functional.cosine_similarity(emb, torch.sparse.mm(torch.from_numpy(adj.toarray()).to_sparse(), emb)
                                                / torch.from_numpy(adj.sum(1).A), dim=-1)
    assert torch.allclose(half, cos - np.log(-np.log(0.5)), atol=1e-6)

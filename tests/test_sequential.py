"""Sequential baselines (SASRec, BERT4Rec, CL4SRec, DuoRec, ICLRec): histories, masking, augmentations,
that they learn planted sequential structure, determinism."""
import numpy as np
import pandas as pd
import pytest
import torch

from dqrec.baselines import MostPopular
from dqrec.baselines.cl4srec import augment, crop, mask, reorder
from dqrec.baselines.duorec import same_target_partner
from dqrec.baselines.sequential import SequenceEncoder, history, history_rows, info_nce, training_windows
from dqrec.evaluate import evaluate
from dqrec.registry import make_model
from tests.sequences import item_cycle, make_split

SEQUENTIAL = ("SASRec", "BERT4Rec", "CL4SRec", "DuoRec", "ICLRec")
SMALL = dict(dim=16, max_len=8, batch_size=128, lr=5e-3, epochs=10, patience=10, progress=False, device="cpu")
EXTRA = {"ICLRec": dict(n_intents=8), "BERT4Rec": dict(epochs=40, patience=40)}  # windows: ~rho targets a row

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def planted():
    """The item cycle (:func:`tests.sequences.item_cycle`): the next item is the last one plus 1."""
    return make_split(item_cycle(160))


@pytest.fixture(scope="module")
def tied():
    """Random histories with many ties in time (timestamps drawn from 8 values)."""
    rng = np.random.default_rng(1)
    ratings = pd.DataFrame({"user": rng.integers(0, 30, 600), "item": rng.integers(0, 50, 600), "rating": 5.0,
                            "timestamp": rng.integers(0, 8, 600).astype(float) + 1e9})
    return make_split(ratings.drop_duplicates(["user", "item"]), kind="random")


def recall10(model, split):
    res = evaluate(model, split.test, split.known(), split.n_items, protocols=("full",), ks=(10,), progress=False)
    return res.set_index("metric").value["Recall"]


def fit(name, split, **kw):
    return make_model(name, **{**SMALL, **EXTRA.get(name, {}), **kw}).fit(split)


# ----------------------------------------------------------------------------- histories
@pytest.mark.parametrize("max_len", [3, 20])
def test_history_is_the_users_items_strictly_before(tied, max_len):
    s = tied.samples
    rows, items = history_rows(tied, max_len), history(tied, max_len)
    assert rows.shape == items.shape == (len(s), max_len)
    user, t, item = s.user.to_numpy(), s.timestamp.to_numpy(), s.item.to_numpy()
    for r in range(len(s)):
        before = np.flatnonzero((user == user[r]) & (t < t[r]))  # all parts, ties excluded
        got = rows[r][rows[r] >= 0]
        assert len(got) == min(len(before), max_len)
        assert (user[got] == user[r]).all() and (t[got] < t[r]).all()
        assert (np.diff(t[got]) >= 0).all()  # oldest -> newest
        assert (rows[r][:max_len - len(got)] == -1).all()  # left-padded
        assert (items[r] == np.where(rows[r] >= 0, item[rows[r]], tied.n_items)).all()
        if len(before) > max_len:  # the most recent ones are kept
            assert t[got].min() >= np.sort(t[before])[-max_len]


@pytest.mark.parametrize("max_len", [2, 5, 20])
def test_training_windows_read_each_target_from_strictly_earlier_items(tied, max_len):
    """train_on="sequences": a target is read at p(q), and through a causal encoder sees the window's
    items up to p(q): they must be its user's, strictly earlier (ties excluded), the newest ones of its
    history, oldest -> newest. Exactly the train rows with an earlier row and a tie group shorter than
    max_len are targets, each once."""
    s = tied.samples
    rows, context = training_windows(tied, max_len)
    assert rows.shape == context.shape and rows.shape[1] == max_len
    user, t, part = s.user.to_numpy(), s.timestamp.to_numpy(), s.part.to_numpy()
    hist = history_rows(tied, max_len)
    seen = []
    for w, q in zip(*np.nonzero(context >= 0)):
        r, p = rows[w, q], context[w, q]
        visible = rows[w, :p + 1][rows[w, :p + 1] >= 0]
        assert p < q and part[r] == "train"
        assert (user[visible] == user[r]).all() and (t[visible] < t[r]).all()
        newest = hist[r][hist[r] >= 0]
        assert np.array_equal(visible, newest[len(newest) - len(visible):])  # the same items scoring sees
        seen.append(r)
    assert len(seen) == len(set(seen))
    tie_group = pd.Series(1, index=s.index).groupby([user, t]).transform("size").to_numpy()
    expected = {r for r in np.flatnonzero(part == "train") if (hist[r] >= 0).any() and tie_group[r] < max_len}
    assert set(seen) == expected
    assert (context[rows < 0] == -1).all() and (rows[:, -1] >= 0).all()  # left-padded windows


@pytest.mark.parametrize("name", ["SASRec", "CL4SRec", "MAERec", "VQRec"])
def test_a_window_target_is_represented_without_itself_or_later_items(tied, name):
    """The representation a window target is trained from must not change when its own item or any
    later one in the window changes (it would learn from the answer)."""
    model = make_model(name, **SMALL, **({"text_dim": 16, "n_code_groups": 4, "n_codewords": 16} if name == "VQRec" else {}))
    model.setup(tied)
    model.net_.eval()
    if name == "MAERec":  # item representations come from the transition graph
        model.net_.item_embedding.propagate(model.full_adj_)
    batch = model.window_batch(np.arange(len(model.window_rows_)), np.random.default_rng(0))
    rep = model.represent(batch)
    w, p = (t.numpy() for t in batch["at"])
    q = np.array([np.flatnonzero(model.window_rows_[wi] == r)[0] for wi, r in zip(w, batch["rows"])])
    for m in range(0, len(w), 7):
        changed = dict(batch, seq=batch["seq"].clone())
        changed["seq"][w[m], q[m]:] = (changed["seq"][w[m], q[m]:] + 1) % tied.n_items
        assert torch.allclose(model.represent(changed)[m], rep[m], atol=1e-6)


def test_bert4rec_windows_end_at_their_last_train_row_and_mask_only_train_rows(tied):
    """BERT4Rec's encoder reads both ways, so a window must hold nothing later than its last train row
    (later valid/test rows would reach every target), end there, and mask only train rows."""
    model = make_model("BERT4Rec", **{**SMALL, "mask_ratio": 0.5})
    model.setup(tied)
    windows = np.arange(len(model.window_rows_))
    batch = model.window_batch(windows, np.random.default_rng(0))
    part, item = tied.samples.part.to_numpy(), tied.samples.item.to_numpy()
    seq, masked = batch["seq"].numpy(), batch["masked"].numpy()
    cut_somewhere, targets = False, []
    for w in windows:
        rows = model.window_rows_[w][model.window_rows_[w] >= 0]
        kept = rows[: np.flatnonzero(part[rows] == "train").max() + 1]  # up to the last train row
        cut_somewhere |= len(kept) < len(rows)
        real = seq[w] != tied.n_items
        assert real.sum() == len(kept) and real[-len(kept):].all()  # left-padded, the last train row last
        shown = np.where(masked[w][-len(kept):], item[kept], seq[w][-len(kept):])
        assert np.array_equal(shown, item[kept])  # the window's items, masks aside
        assert (part[kept[masked[w][-len(kept):]]] == "train").all()
        targets.append(item[kept[masked[w][-len(kept):]]])
    assert cut_somewhere  # the fixture has windows with later valid/test rows
    assert np.array_equal(batch["target"].numpy(), np.concatenate(targets))  # the masked items, in order


def test_cl4srec_window_views_hold_only_items_before_a_target(tied):
    """CL4SRec's views of a window are encoded whole: with identity augmentations (crop all, mask and
    reorder none) a view must be the window's items strictly before its latest target."""
    model = make_model("CL4SRec", **{**SMALL, "crop_ratio": 1.0, "mask_ratio": 0.0, "reorder_ratio": 0.0})
    model.setup(tied)
    windows = np.arange(len(model.window_rows_))
    batch = model.window_batch(windows, np.random.default_rng(0))
    t, item = tied.samples.timestamp.to_numpy(), tied.samples.item.to_numpy()
    cut_somewhere = False
    for w in windows:
        rows, context = model.window_rows_[w], model.window_context_[w]
        latest = t[rows[context >= 0]].max()
        before = rows[(rows >= 0) & (t[np.clip(rows, 0, None)] < latest)]
        cut_somewhere |= len(before) < (rows >= 0).sum()
        for view in batch["views"]:
            v = view[w].numpy()
            assert np.array_equal(v[v != tied.n_items], item[before]) and (v[-len(before):] != tied.n_items).all()
    assert cut_somewhere


def test_only_models_that_can_train_on_windows_accept_it():
    for name in ("SASRec", "BERT4Rec", "CL4SRec", "MAERec", "VQRec"):
        assert make_model(name).train_on == "sequences"
        assert make_model(name, train_on="prefixes").train_on == "prefixes"
    for name in ("DuoRec", "ICLRec"):
        with pytest.raises(ValueError, match="train_on"):
            make_model(name, train_on="sequences")
    with pytest.raises(ValueError, match="max_len"):
        make_model("SASRec", max_len=1)


# ----------------------------------------------------------------------------- masking
@pytest.mark.parametrize("causal", [True, False])
def test_a_later_item_changes_no_earlier_output_when_causal(causal):
    torch.manual_seed(0)
    enc = SequenceEncoder(n_items=20, dim=16, max_len=6, n_layers=2, n_heads=2, dropout=0.1, causal=causal).eval()
    seq = torch.tensor([[20, 3, 5, 7, 9, 11], [20, 20, 2, 4, 6, 8]])
    later = seq.clone()
    later[:, 4] = torch.tensor([1, 13])
    a, b = enc(seq), enc(later)
    earlier_same = torch.allclose(a[:, :4], b[:, :4], atol=1e-6)
    assert earlier_same == causal  # BERT4Rec's bidirectional encoder is the deliberate exception
    assert not torch.allclose(a[:, 4:], b[:, 4:], atol=1e-6)


def test_padding_is_never_attended():
    torch.manual_seed(0)
    enc = SequenceEncoder(n_items=20, dim=16, max_len=6, n_layers=2, n_heads=2, dropout=0.0, causal=False).eval()
    seq = torch.tensor([[20, 20, 2, 4, 6, 8]])
    with torch.no_grad():
        enc.item_embedding.weight[20] = torch.randn(16)  # a padding row that leaked would change the outputs
    short = enc(torch.tensor([[2, 4, 6, 8]]))  # the same items without padding, at the same positions
    assert torch.allclose(enc(seq)[:, 2:], short, atol=1e-5)


@pytest.mark.parametrize("name,causal", [("SASRec", True), ("CL4SRec", True), ("DuoRec", True), ("ICLRec", True),
                                         ("BERT4Rec", False)])
def test_models_use_the_encoder_they_claim(name, causal):
    assert make_model(name).causal is causal


# ----------------------------------------------------------------------------- augmentations
PAD, MASK = 50, 51
SEQ = torch.tensor([[PAD] * 6 + [1, 2, 3, 4], [PAD] * 2 + [10, 11, 12, 13, 14, 15, 16, 17], [PAD] * 9 + [7]])


def items_of(row):
    return row[row != PAD].tolist()


def test_crop_keeps_a_contiguous_run_of_floor_eta_n_items():
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        out = crop(SEQ, PAD, 0.6, gen)
        assert out.shape == SEQ.shape
        for row, orig in zip(out, SEQ):
            kept, items = items_of(row), items_of(orig)
            assert len(kept) == int(np.floor(0.6 * len(items)))
            assert (row[:len(row) - len(kept)] == PAD).all()  # still left-padded
            starts = [i for i in range(len(items)) if items[i:i + len(kept)] == kept]
            assert starts, (kept, items)


def test_mask_replaces_floor_gamma_n_items_and_nothing_else():
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        out = mask(SEQ, PAD, 0.3, MASK, gen)
        assert out.shape == SEQ.shape
        for row, orig in zip(out, SEQ):
            n = len(items_of(orig))
            assert (row == MASK).sum() == int(np.floor(0.3 * n))
            kept = row != MASK
            assert (row[kept] == orig[kept]).all()
            assert ((row == PAD) == (orig == PAD)).all()


def test_reorder_shuffles_one_run_and_keeps_the_items():
    gen = torch.Generator().manual_seed(0)
    changed = False
    for _ in range(20):
        out = reorder(SEQ, PAD, 0.6, gen)
        for row, orig in zip(out, SEQ):
            assert sorted(row.tolist()) == sorted(orig.tolist())  # same items, same padding
            assert ((row == PAD) == (orig == PAD)).all()
            moved = np.flatnonzero((row != orig).numpy())
            if len(moved):
                changed = True
                assert moved.max() - moved.min() < int(np.floor(0.6 * len(items_of(orig))))  # one run
    assert changed


def test_augment_leaves_histories_shorter_than_two():
    gen = torch.Generator().manual_seed(0)
    out = augment(SEQ, PAD, MASK, torch.tensor([1, 1, 1]), 0.6, 0.9, 0.6, gen)
    assert out[2].tolist() == SEQ[2].tolist()
    assert (out[1] == MASK).sum() == 7


def test_same_target_partner():
    targets = np.array([3, 1, 3, 2, 3, 1])
    partner = same_target_partner(targets, np.random.default_rng(0))
    assert (targets[partner] == targets).all()
    assert partner[3] == 3  # alone with its target
    assert all(partner[i] != i for i in (0, 1, 2, 4, 5))


def test_info_nce_by_hand():
    a, b = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    z = torch.cat([a, b])
    sim = z @ z.T
    want = np.mean([-(sim[i, (i + 2) % 4] - torch.logsumexp(sim[i][torch.arange(4) != i], 0)).item()
                    for i in range(4)])
    assert info_nce(a, b).item() == pytest.approx(want, rel=1e-6)


# ----------------------------------------------------------------------------- learning, determinism
@pytest.fixture(scope="module")
def fitted(planted):
    return {name: fit(name, planted) for name in SEQUENTIAL}


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_learns_the_planted_sequence(planted, fitted, name):
    popular = recall10(MostPopular().fit(planted), planted)
    assert recall10(fitted[name], planted) > popular + 0.3


@pytest.mark.parametrize("name", ["SASRec", "BERT4Rec", "CL4SRec"])
def test_learns_from_prefixes_too(planted, name):
    popular = recall10(MostPopular().fit(planted), planted)
    assert recall10(fit(name, planted, train_on="prefixes"), planted) > popular + 0.3


@pytest.mark.parametrize("name", ["SASRec", "BERT4Rec", "CL4SRec", "ICLRec"])
def test_same_seed_same_scores(planted, fitted, name):
    again = fit(name, planted)
    test = planted.test.iloc[:50]
    items = np.arange(planted.n_items)
    assert np.array_equal(fitted[name].score(test, items), again.score(test, items))
    other = fit(name, planted, seed=1, epochs=1)
    assert not np.allclose(fitted[name].score(test, items), other.score(test, items))


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_profile_parameters_do_not_leak_into_sequential_models(name):
    """A profile's n_layers, k and beta are DQRec's; a sequential model must not take them."""
    from dqrec.experiment import model_kwargs, profile_params

    assert set(model_kwargs(name, 0, profile_params("paper"))) <= {"epochs", "patience", "progress", "device", "seed"}


def test_iclrec_queries_intents_with_its_next_item_pass(planted, fitted):
    """As the authors' code: the batch's intents come from the (detached) output of the next-item pass itself,
    not from another, differently dropped-out pass; the two views share one pass."""
    model = fitted["ICLRec"]
    model.net_.train()  # dropout on: a second pass over the same histories would give other outputs
    batch = model.train_batch(model.train_rows_[:32], np.random.default_rng(0))
    passes = []
    hook = model.net_.register_forward_hook(lambda module, args, out: passes.append((args[0], out)))
    try:
        model.train_loss(batch)
    finally:
        hook.remove()
        model.net_.eval()
    (seq, out), (views, _) = passes  # exactly two passes: the next-item one, then both views at once
    assert torch.equal(seq, batch["seq"]) and len(views) == 2 * len(seq)
    assert torch.equal(batch["pooled"], model.pooled(seq, out.detach()))
    assert not batch["pooled"].requires_grad

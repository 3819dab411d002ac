"""scripts/sasrec_variants.py: each RecBole choice it switches on is that choice, and nothing else moves."""
import importlib.util

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from dqrec.baselines.sasrec import SASRec
from dqrec.baselines.sequential import SequenceEncoder
from dqrec.experiment import ROOT
from tests.sequences import item_cycle, make_split

spec = importlib.util.spec_from_file_location("sasrec_variants", ROOT / "scripts" / "sasrec_variants.py")
variants = importlib.util.module_from_spec(spec)
spec.loader.exec_module(variants)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
N_ITEMS, MAX_LEN = 30, 8


def encoders():
    torch.manual_seed(0)
    base = SequenceEncoder(N_ITEMS, 16, MAX_LEN, 2, 2, 0.0, causal=True, norm_first=True, activation="relu").eval()
    start = variants.StartAnchoredEncoder(N_ITEMS, 16, MAX_LEN, 2, 2, 0.0, causal=True, norm_first=True,
                                          activation="relu").eval()
    start.load_state_dict(base.state_dict())
    return base, start


def padded(items):
    return torch.tensor([[N_ITEMS] * (MAX_LEN - len(items)) + list(items)])


def test_start_positions_match_ours_on_a_full_history():
    base, start = encoders()
    seq = torch.randint(0, N_ITEMS, (4, MAX_LEN))
    torch.testing.assert_close(start(seq), base(seq))


def test_start_positions_keep_an_items_position_when_a_later_item_arrives():
    """Counted from the oldest item, appending an item moves no earlier item's position, so (causal) no
    earlier output changes; counted from the latest item (ours), every earlier output moves."""
    base, start = encoders()
    short, longer = padded([3, 7, 11]), padded([3, 7, 11, 5])
    torch.testing.assert_close(start(longer)[0, -4:-1], start(short)[0, -3:])
    assert not torch.allclose(base(longer)[0, -4:-1], base(short)[0, -3:])


def switched(*on):
    return {name: name in on for name in variants.SWITCHES}


def test_switches_off_is_our_sasrec_and_each_switch_changes_what_it_names():
    split = make_split(item_cycle(40))
    kw = dict(dim=16, max_len=MAX_LEN, epochs=1, batch_size=64, progress=False, device="cpu", train_on="prefixes")
    ours, same = SASRec(**kw), variants.variant_model(switched(), **kw)
    for m in (ours, same):
        m.setup(split)
    assert type(same.net_) is SequenceEncoder and same.net_.norm_first
    batch = ours.train_batch(ours.train_rows_[:64], np.random.default_rng(0))
    ours.net_.eval(), same.net_.eval()
    torch.testing.assert_close(same.train_loss(batch), ours.train_loss(batch))

    bpr = variants.variant_model(switched("bpr"), **kw)
    bpr.setup(split)
    bpr.net_.eval()
    rep, emb = bpr.represent(batch), bpr.net_.item_embedding
    margin = (rep * emb(batch["target"])).sum(-1) - (rep * emb(batch["negative"])).sum(-1)
    torch.testing.assert_close(bpr.train_loss(batch), -F.logsigmoid(margin).mean())

    post = variants.variant_model(switched("post_ln", "start_positions"), **kw)
    post.setup(split)
    assert isinstance(post.net_, variants.StartAnchoredEncoder) and not post.net_.norm_first


def test_one_feed_forward_dropout_drops_after_the_second_layer_only():
    """RecBole's feed-forward: with dropout 0.5 in training, the first layer's activations are never
    dropped (its output is the exact no-dropout output wherever not zeroed, scaled by 2), and the same weights
    as ours (the block's class is swapped, not rebuilt)."""
    torch.manual_seed(0)
    ours = variants.Block(16, 2, 0.5, True, "relu").train()
    x = torch.randn(4, 8, 16)
    torch.manual_seed(1)
    one = variants.Block(16, 2, 0.5, True, "relu")
    one.load_state_dict(ours.state_dict())
    one.__class__ = variants.OneDropoutFeedForwardBlock
    clean = one.ff2(one.act(one.ff1(x)))
    out = one.train().feed_forward(x)
    kept = out != 0
    torch.testing.assert_close(out[kept], 2 * clean[kept])
    assert 0.3 < kept.float().mean() < 0.7
    m = variants.variant_model(switched("one_ffn_dropout"), dim=16, max_len=MAX_LEN, progress=False, device="cpu",
                               train_on="prefixes")
    m.setup(make_split(item_cycle(40)))
    assert all(type(b) is variants.OneDropoutFeedForwardBlock for b in m.net_.blocks)


def test_recbole_layer_norm_normalises_the_input_before_its_dropout_with_eps_1e12(monkeypatch):
    """RecBole's input is dropout(LayerNorm(item + position)): in training, every position's kept entries are
    the LayerNorm'd input scaled by 1 / (1 - p) (after ours, LayerNorm(dropout(.)), they are not); every
    LayerNorm of the net has eps 1e-12."""
    kw = dict(dim=16, max_len=MAX_LEN, dropout=0.5, progress=False, device="cpu", train_on="prefixes")
    m = variants.variant_model(switched("post_ln", "recbole_layer_norm"), **kw)
    m.setup(make_split(item_cycle(40)))
    net = m.net_
    norms = [mod for mod in net.modules() if isinstance(mod, torch.nn.LayerNorm)]
    assert len(norms) == 5 and all(n.eps == 1e-12 for n in norms)
    net.blocks = torch.nn.ModuleList()  # the input alone
    seq = torch.randint(0, N_ITEMS, (4, MAX_LEN))
    x = net.item_embedding(seq) + net.position_embedding(torch.arange(MAX_LEN))
    normed = F.layer_norm(x, (16,), net.drop.weight, net.drop.bias, 1e-12)
    out = net.train()(seq)
    kept = out != 0
    torch.testing.assert_close(out[kept], 2 * normed[kept])
    assert 0.3 < kept.float().mean() < 0.7
    monkeypatch.setattr("sys.argv", ["sasrec_variants.py", "--recbole-layer-norm"])
    with pytest.raises(SystemExit):  # it changes the post-LN input: asked for without --post-ln, an error
        variants.main()


def test_recbole_negatives_exclude_only_the_target():
    """RecBole's RepeatableSampler: a negative is never the row's own target, but may be an item of the user's
    history (ours: never a training positive of the user); over the 30 items it is drawn uniformly."""
    split = make_split(item_cycle(40))
    kw = dict(dim=16, max_len=MAX_LEN, progress=False, device="cpu", train_on="prefixes")
    rows = None
    for on, may_be_positive in ((), False), (("recbole_negatives",), True):
        m = variants.variant_model(switched(*on), **kw)
        m.setup(split)
        rows = m.train_rows_ if rows is None else rows
        batches = [m.train_batch(rows, np.random.default_rng(s)) for s in range(20)]
        negative = np.concatenate([b["negative"].numpy() for b in batches])
        target = np.concatenate([b["target"].numpy() for b in batches])
        users = np.tile(m.users_[rows], 20)
        assert not (negative == target).any()
        assert m.sampler_.is_positive(users, negative).any() == may_be_positive
    counts = np.bincount(negative, minlength=N_ITEMS)
    assert counts.min() > 0.5 * counts.mean()

"""Which of RecBole's choices separate its SASRec from ours: our SASRec with some of them switched on.

    python scripts/sasrec_variants.py --post-ln --bpr --start-positions --select-full --one-ffn-dropout \
        --recbole-layer-norm --recbole-negatives                                          # all
    python scripts/sasrec_variants.py --bpr                                             # one at a time

On RecBole's training scheme (one prefix per target) and our exact split, our SASRec was above RecBole 1.2.1's
in full-ranking Recall@10 (``results/bench/recbole_sequential.json``), and RecBole's early stop was shown not to
be the reason (its patience 20 kept the same best epoch). What still differs, each a switch here:

``--post-ln``          RecBole's post-LN blocks, LayerNorm(x + f(x)), with a LayerNorm on the input; ours are
                       pre-LN as SASRec's Eq. 5 writes them, x + f(LayerNorm(x)), with a final LayerNorm.
``--bpr``              RecBole's BPR loss, -log sigma(r_pos - r_neg); ours is SASRec's Eq. 7 binary
                       cross-entropy, -log sigma(r_pos) - log(1 - sigma(r_neg)) (one sampled negative each).
``--start-positions``  RecBole right-pads a history, so position 0 is its oldest item; ours, as the authors'
                       code, left-pads, so position max_len - 1 is always the latest item.
``--select-full``      RecBole stops on full-ranking validation NDCG@10; ours on in-batch NDCG@10.
``--one-ffn-dropout``  RecBole's feed-forward drops out after its second layer only; ours, as SASRec's code,
                       after each of its two layers.
``--recbole-layer-norm`` (with ``--post-ln``) RecBole's LayerNorm details: eps 1e-12 (torch's default: 1e-5) and,
                       on the input, the LayerNorm before the dropout (ours: after).
``--recbole-negatives`` RecBole's negative: any item but the sample's own target. Sequential models must be
                       ``repeatable`` in RecBole, and its ``RepeatableSampler`` excludes only the row's positive,
                       so a negative may be an item of the user's own history. Ours, as SASRec's code, draws an
                       item the user has no training positive with.

Initialisation (normal, sd 0.02), dropout rate, sizes, optimiser and batch are the same on both sides. Each
variant trains on prefixes with the paper profile's settings (patience 5), checkpointed each epoch under ``results/checkpoints/sasrec-variants/...`` (run
again to resume), and is scored by our evaluator on the test samples with a history (the set RecBole is
scored on) and on all of them. Writes one entry per variant to ``results/sasrec_variants.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from recbole_sequential import MAX_LEN, export, metrics  # noqa: E402

from dqrec import data, train  # noqa: E402
from dqrec.baselines.sasrec import SASRec  # noqa: E402
from dqrec.baselines.sequential import Block, SequenceEncoder  # noqa: E402
from dqrec.evaluate import validation_criterion  # noqa: E402
from dqrec.experiment import git_sha, machine, profile_params  # noqa: E402
from dqrec.sampling import NegativeSampler  # noqa: E402

SWITCHES = ("post_ln", "bpr", "start_positions", "select_full", "one_ffn_dropout", "recbole_layer_norm",
            "recbole_negatives")
OUT = ROOT / "results" / "sasrec_variants.json"


class PositionsFromOldest(nn.Embedding):
    """The encoder's position embedding, looked up from each history's oldest item: the encoder passes the
    positions (L,) of a left-padded window, max_len - L .. max_len - 1; with ``pad`` (B, 1), each history's
    left padding, the item at index j gets position j - pad (padding: 0)."""

    pad = None

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return super().forward((positions - positions[0] - self.pad).clamp_min(0))  # (B, L, dim)


class StartAnchoredEncoder(SequenceEncoder):
    """Positions counted from the oldest item of each (left-padded) history, as RecBole's right padding
    counts them: item j of a history of n items sits at position j, not at max_len - n + j."""

    def __init__(self, n_items: int, dim: int, max_len: int, *args, **kwargs):
        super().__init__(n_items, dim, max_len, *args, **kwargs)
        weight = self.position_embedding.weight
        self.position_embedding = PositionsFromOldest(max_len, dim)
        self.position_embedding.weight = weight  # as the encoder initialised it

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        self.position_embedding.pad = (seq == self.n_items).sum(1, keepdim=True)
        return super().forward(seq)


class OneDropoutFeedForwardBlock(Block):
    """RecBole's feed-forward: dropout after its second layer only (SASRec's code and ours: after each)."""

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.ff2(self.act(self.ff1(x))))


def variant_model(switches: dict, **params) -> SASRec:
    """Our SASRec (``params``: its constructor's) with the RecBole choices ``switches`` (name -> on) turns on."""

    class Variant(SASRec):
        norm_first = not switches["post_ln"]

        def build_net(self, split):
            net = super().build_net(split) if not switches["start_positions"] else StartAnchoredEncoder(
                split.n_items, self.dim, self.max_len, self.n_blocks, self.n_heads, self.dropout, causal=self.causal,
                norm_first=self.norm_first, activation=self.activation)
            if switches["one_ffn_dropout"]:
                for block in net.blocks:  # same weights, as initialised; only the forward differs
                    block.__class__ = OneDropoutFeedForwardBlock
            if switches["recbole_layer_norm"]:
                for module in net.modules():
                    if isinstance(module, nn.LayerNorm):
                        module.eps = 1e-12
                # post-LN, the encoder's input is input_norm(drop(x)): with the two swapped, drop(LayerNorm(x))
                net.drop, net.input_norm = net.input_norm, net.drop
            return net

        def setup(self, split):
            super().setup(split)
            if switches["recbole_negatives"]:  # RecBole's RepeatableSampler: a row's used ids are its own target
                rows = np.arange(len(split.samples))
                self.row_sampler_ = NegativeSampler(rows, split.samples.item.to_numpy(), split.n_items)

        def with_negatives(self, batch, rng):
            if not switches["recbole_negatives"]:
                return super().with_negatives(batch, rng)
            batch["negative"] = torch.from_numpy(self.row_sampler_.sample(batch["rows"], rng)).to(self.device_)
            return batch

        def train_loss(self, batch):
            if not switches["bpr"]:
                return super().train_loss(batch)
            rep, emb = self.represent(batch), self.net_.item_embedding
            pos, neg = (rep * emb(batch["target"])).sum(-1), (rep * emb(batch["negative"])).sum(-1)
            return -F.logsigmoid(pos - neg).mean()

    return Variant(**params)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--split", default="temporal", choices=["temporal", "random"])
    ap.add_argument("--seed", type=int, default=0)
    for name in SWITCHES:
        ap.add_argument("--" + name.replace("_", "-"), action="store_true")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    switches = {name: getattr(args, name) for name in SWITCHES}
    if switches["recbole_layer_norm"] and not switches["post_ln"]:
        ap.error("--recbole-layer-norm changes RecBole's post-LN input; it needs --post-ln")
    variant = "+".join(n.replace("_", "-") for n, on in switches.items() if on) or "ours"
    entry = f"{args.dataset}/{args.split}/s{args.seed}/{variant}"

    params = profile_params("paper", progress=False)
    split = data.prepare(data.load(args.dataset), args.split, seq_len=params["seq_len"], seed=0)
    model = variant_model(switches, max_len=MAX_LEN, epochs=params["epochs"], patience=params["patience"],
                          seed=args.seed, progress=True, train_on="prefixes")
    folder = ROOT / "results" / "checkpoints" / "sasrec-variants" / entry.replace("/", "_")
    start = time.perf_counter()
    with train.resumable(folder):
        model.fit(split, validate=validation_criterion(split, args.seed, "full" if switches["select_full"] else "in_batch"))
    fit_seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        with_history = export(split, Path(tmp), "x")
    test = split.test
    test_h = test.loc[test.index.intersection(with_history)]
    hist = model.trainer_.history_
    result = dict(variant=variant, switches=switches, dataset=args.dataset, split=args.split, seed=args.seed,
                  train_on="prefixes", patience=model.patience,
                  test_with_history=metrics(model, test_h, split), test_all=metrics(model, test, split),
                  epochs_run=len(hist), best_epoch=model.trainer_.best_epoch_,
                  valid_curve=[h["valid"] for h in hist], fit_seconds_this_process=round(fit_seconds, 1),
                  git_sha=git_sha(), machine=machine(), command=" ".join(sys.argv))
    out = Path(args.out)
    report = json.loads(out.read_text()) if out.exists() else {}
    report[entry] = result
    out.write_text(json.dumps(report, indent=1) + "\n")
    for f in sorted(folder.glob("fit*.pt")):  # the run landed: its checkpoints are no longer needed
        f.unlink()
    print(json.dumps({k: result[k] for k in ("variant", "test_with_history", "epochs_run", "best_epoch")}, indent=1))


if __name__ == "__main__":
    main()

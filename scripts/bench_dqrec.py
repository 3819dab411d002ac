"""Benchmarks for issue 4 on ML-1M (temporal split), written to results/bench/dqrec.json.

* neighbours: semantic IDs + explicit and latent neighbours for every sample, both sides
  (K=30, K'=2, L=4, J=128), given the representations; target <= 5 s. Three timed repeats after one
  untimed warm-up on a small input (numba compiles its kernels, or loads them from its cache); the
  warm-up time is reported. The same neighbours are also found with faiss IndexFlatL2 on the decoded
  z_hat (the usual exact search) to time it and to compare the neighbours of every sample in float64.
* epoch: training epochs of DQRec (K=30, L=4, J=128, batch 1024) given the augmentation, with the
  trainer's per-step breakdown (data, forward, backward, optimizer, validation); the median of
  three epochs, in float32 (the default) and with bfloat16 autocast; target <= 5 s. Beside each, in
  the same run, a floor for this machine with torch's kernels: the towers' dense layers alone (the
  model's own Tower without semantic IDs, on random inputs of one step's shapes that need gradients,
  forward and backward of the same loss, no data step and no optimizer), timed over 60 steps and scaled
  to an epoch's steps. Any implementation of the model computes at least these layers, so the epoch is
  reported as a ratio to this floor, and the floor itself against the 5 s target, alone and with the
  epoch's own optimizer and validation seconds added (what an epoch with a free data step and free
  pooling would take). Below that floor, an estimate of the towers' matrix products alone at this
  machine's measured rate for the step's largest product (:func:`gemm_bound`): what the products would
  cost with no GELU, data step, optimizer or validation.
* end to end: one DQRec run (representation, DQ-VAE, neighbours, training until validation stops
  it, both evaluations of the test split) with the paper profile's settings; target <= 300 s.

Usage: python scripts/bench_dqrec.py [--skip-neighbours] [--skip-end-to-end]
"""
import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dqrec import data  # noqa: E402
from dqrec.augment import augment_side, flat_search_agreement  # noqa: E402
from dqrec.evaluate import evaluate  # noqa: E402
from dqrec.experiment import fit_model, git_sha, profile_params  # noqa: E402
from dqrec.model import DQRec, Tower  # noqa: E402
from dqrec.representation import RepresentationModel  # noqa: E402
from dqrec.train import sigmoid_bpr  # noqa: E402

NEIGHBOURS = dict(n_layers=4, codebook_size=128, k=30, k_latent=2)


def neighbour_bench(split, emb) -> dict:
    """Semantic IDs and neighbours of every sample, both sides: three timed repeats and a faiss check."""
    small = data.prepare(data.load("ml-100k", download=False), split="temporal", seq_len=20)
    start = time.perf_counter()
    augment_side(small, np.random.default_rng(0).normal(size=(len(small.samples), 64)), "user", **NEIGHBOURS)
    warm_up = time.perf_counter() - start

    repeats = []
    for _ in range(3):
        run = {}
        for side in ("user", "item"):
            start = time.perf_counter()
            aug = augment_side(split, emb[side], side, **NEIGHBOURS)
            run[side] = dict(seconds=round(time.perf_counter() - start, 2),
                             steps={k: round(v, 2) for k, v in aug.seconds.items()})
        run["total_seconds"] = round(run["user"]["seconds"] + run["item"]["seconds"], 2)
        repeats.append(run)
    totals = sorted(r["total_seconds"] for r in repeats)
    reference = {}
    for side in ("user", "item"):
        aug = augment_side(split, emb[side], side, **NEIGHBOURS)
        reference[side] = dict(distinct_ids=int(len(np.unique(aug.codes, axis=0))),
                               **flat_search_agreement(split, aug, emb[side]))
    return dict(params=NEIGHBOURS, warm_up_seconds=round(warm_up, 2), repeats=repeats,
                median_total_seconds=totals[1], target_seconds=5.0, meets_target=totals[1] <= 5.0,
                faiss_reference=reference, git_sha=git_sha())


def dense_floor(n_samples: int, precision: str, batch_size: int = 1024, dim: int = 64, hidden: int = 256,
                n_steps: int = 60) -> dict:
    """Seconds per epoch of the two towers' dense layers alone: per step the user tower on (B, 3 dim)
    and the item tower on (2B, 3 dim) random inputs (own, pooled sequence, pooled neighbours, all
    needing gradients), Eq. 22-23 on the scores, backward; 5 untimed steps, then ``n_steps`` timed."""
    torch.manual_seed(0)
    towers = [Tower(dim, hidden, NEIGHBOURS["n_layers"], NEIGHBOURS["codebook_size"], False, True) for _ in range(2)]
    inputs = [[torch.randn(rows, dim, requires_grad=True) for _ in range(3)] for rows in (batch_size, 2 * batch_size)]

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            z_u = towers[0](*inputs[0], None)
            z_pos, z_neg = towers[1](*inputs[1], None).split(batch_size)
            loss = sigmoid_bpr((z_u * z_pos).sum(1), (z_u * z_neg).sum(1)).float()
        loss.backward()

    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(n_steps):
        step()
    per_step = (time.perf_counter() - start) / n_steps
    steps = -(-n_samples // batch_size)
    return dict(seconds_per_step=round(per_step, 5), steps_per_epoch=steps, epoch_seconds=round(per_step * steps, 2),
                gemm_bound=gemm_bound(steps, precision, batch_size, dim, hidden))


def gemm_bound(steps: int, precision: str, batch_size: int, dim: int, hidden: int, repeats: int = 200) -> dict:
    """Seconds per epoch of the towers' matrix products alone at this machine's own rate: the products'
    floating-point operations (per row 3 dim x hidden + hidden x dim multiply-adds forward, twice that
    backward; 3 B rows per step) over the rate of the step's largest product, (2B, 3 dim) @ (3 dim, hidden),
    timed alone and back to back. An estimate, not a proof: smaller products run at lower rates, so
    it errs low; it says what the products alone would cost with GELU, the data step, the optimizer and
    validation all free."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, w = torch.randn(2 * batch_size, 3 * dim, dtype=dtype), torch.randn(hidden, 3 * dim, dtype=dtype)
    for _ in range(10):
        a @ w.T
    start = time.perf_counter()
    for _ in range(repeats):
        a @ w.T
    rate = 2 * a.shape[0] * a.shape[1] * w.shape[0] * repeats / (time.perf_counter() - start)
    flops_per_epoch = steps * 3 * (3 * batch_size) * 2 * (3 * dim * hidden + hidden * dim)
    return dict(gflops_per_second=round(rate / 1e9, 1), gflops_per_epoch=round(flops_per_epoch / 1e9, 1),
                epoch_seconds=round(flops_per_epoch / rate, 2))


def epoch_bench(split, aug, precision: str) -> dict:
    """Three training epochs of DQRec given its augmentation: per-step seconds, the median epoch, and
    the ratio to :func:`dense_floor` measured right after."""
    model = DQRec(epochs=3, patience=3, precision=precision, progress=False).fit(split, augmentation=aug)
    epochs = model.trainer_.history_
    totals = [sum(v for k, v in h.items() if k.endswith("_seconds")) for h in epochs]
    median = sorted(totals)[1]
    steps = {k: sorted(h[k] for h in epochs)[1] for k in epochs[0] if k.endswith("_seconds")}
    floor = dense_floor(len(split.train), precision)
    floor_rest = floor["epoch_seconds"] + steps["optimizer_seconds"] + steps["validation_seconds"]
    return dict(params=dict(NEIGHBOURS, batch_size=1024, dim=64, hidden=256, precision=precision), epochs=epochs,
                total_seconds=[round(t, 2) for t in totals], median_total_seconds=round(median, 2),
                median_steps=steps, target_seconds=5.0, meets_target=median <= 5.0,
                dense_floor=dict(floor, ratio_epoch_to_floor=round(median / floor["epoch_seconds"], 2),
                                 ratio_forward_backward_to_floor=round(
                                     (steps["forward_seconds"] + steps["backward_seconds"]) / floor["epoch_seconds"], 2),
                                 floor_meets_target=floor["epoch_seconds"] <= 5.0,
                                 floor_plus_optimizer_and_validation_seconds=round(floor_rest, 2),
                                 floor_plus_optimizer_and_validation_meets_target=floor_rest <= 5.0,
                                 gemm_bound_meets_target=floor["gemm_bound"]["epoch_seconds"] <= 5.0),
                device=str(model.device_), torch_threads=torch.get_num_threads(),
                load_average_1min=round(os.getloadavg()[0], 2), git_sha=git_sha())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-neighbours", action="store_true", help="keep the stored neighbour timings")
    parser.add_argument("--skip-end-to-end", action="store_true", help="skip the converged end-to-end run")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    split = data.prepare(data.load("ml-1m", download=False), split="temporal", seq_len=20)
    rep = RepresentationModel(epochs=1, progress=False).fit(split)
    emb = {side: rep.sample_embeddings(split, side) for side in ("user", "item")}

    path = ROOT / "results" / "bench" / "dqrec.json"
    out = json.loads(path.read_text()) if path.exists() else {}
    out.update(dataset="ml-1m", split="temporal", samples=len(split.samples), cpus=os.cpu_count())
    if not args.skip_neighbours:
        out["neighbours"] = neighbour_bench(split, emb)

    aug = {side: augment_side(split, emb[side], side, **NEIGHBOURS) for side in ("user", "item")}
    out["epoch"] = {precision: epoch_bench(split, aug, precision) for precision in ("fp32", "bf16")}
    print(json.dumps(out["epoch"], indent=2))
    path.write_text(json.dumps(out, indent=2, default=float) + "\n")

    if not args.skip_end_to_end:
        params = profile_params("paper", progress=False)
        start = time.perf_counter()
        model = fit_model("DQRec", split, 0, params)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        res = evaluate(model.scorer("test"), split.test, split.known(), split.n_items, progress=False)
        eval_s = time.perf_counter() - start
        total = fit_s + eval_s
        out["end_to_end"] = dict(
            fit_seconds=round(fit_s, 1), eval_seconds=round(eval_s, 1), total_seconds=round(total, 1),
            **model.trainer_.summary(),
            history=model.history_, target_seconds=300.0, meets_target=total <= 300.0, git_sha=git_sha(),
            test_recall10=res[(res.k == 10) & (res.metric == "Recall")].set_index("protocol").value.to_dict())
        print(json.dumps(out["end_to_end"], indent=2, default=float))
        path.write_text(json.dumps(out, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()

"""Seconds per training epoch of the sequential baselines, estimated from timed training steps.

    python scripts/bench_sequential.py --datasets ml-100k ml-1m --steps 5

For each model trained on prefixes (DuoRec, ICLRec): ``setup(split)`` (histories, the untrained net), one
warm-up step, then ``--steps`` timed steps exactly as the Trainer runs them (batch, loss, backward, Adam
step) on random training batches of 1024; seconds per epoch = median seconds per step x steps per epoch,
plus one ``start_epoch`` call (ICLRec's k-means E-step). A model trained on windows of each timeline (the
default of SASRec, BERT4Rec, CL4SRec, VQRec, MAERec) is timed over one real epoch of ``fit`` instead.
Validation is excluded. Writes results/bench/sequential_epoch.json.

    python scripts/bench_sequential.py --datasets ml-100k --models SASRec SASRec:prefixes --fit-epochs 2

``--fit-epochs N`` measures instead through the real training path: ``fit`` capped at N epochs, the
seconds of each epoch's data, forward, backward and optimizer steps from the Trainer's history (median
over the epochs; validation excluded). ``NAME:SCHEME`` sets ``train_on`` (SASRec: ``sequences``, the
default, or ``prefixes``); the entry is keyed ``dataset/NAME:SCHEME``.

    python scripts/bench_sequential.py --datasets ml-100k ml-1m --from-runs

``--from-runs`` trains nothing: it reads the epochs of each model's paper-profile Table 1 run (temporal
split, seed 0) from the run cache, the seconds the Trainer recorded for every epoch of that converged run
(median over its epochs; validation apart), and names the run it read. A model without that run is
skipped.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dqrec import data  # noqa: E402
from dqrec.experiment import cached_run_epochs, epoch_train_seconds, git_sha, machine, profile_params  # noqa: E402
from dqrec.registry import make_model  # noqa: E402

MODELS = ("SASRec", "BERT4Rec", "CL4SRec", "DuoRec", "ICLRec", "MAERec", "VQRec")


def seconds_per_epoch(name: str, split, steps: int, seed: int = 0) -> dict:
    model = make_model(name, seed=seed, progress=False)
    model.setup(split)
    opt = torch.optim.Adam(model.net_.parameters(), lr=model.lr)
    rng = np.random.default_rng(seed)
    n, per_epoch = len(model.train_rows_), -(-len(model.train_rows_) // model.batch_size)
    t0 = time.perf_counter()
    model.start_epoch(1)
    start_epoch = time.perf_counter() - t0
    times = []
    model.net_.train()
    for step in range(steps + 1):
        idx = rng.choice(n, min(model.batch_size, n), replace=False)
        t0 = time.perf_counter()
        loss = model.train_loss(model.train_batch(model.train_rows_[idx], rng))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step:  # the first step warms up
            times.append(time.perf_counter() - t0)
    step_seconds = float(np.median(times))
    return dict(model=name, dataset=split.name, split=split.kind, train_samples=n, steps_per_epoch=per_epoch,
                step_seconds_median=step_seconds, start_epoch_seconds=start_epoch,
                seconds_per_epoch=step_seconds * per_epoch + start_epoch, timed_steps=steps,
                params=model.get_params())


def fit_epoch_seconds(spec: str, split, epochs: int, seed: int = 0) -> dict:
    """Seconds per epoch of ``fit`` (validation excluded), ``spec`` = NAME or NAME:train_on."""
    name, _, scheme = spec.partition(":")
    model = make_model(name, seed=seed, progress=False, epochs=epochs, patience=epochs,
                       **({"train_on": scheme} if scheme else {}))
    t0 = time.perf_counter()
    model.fit(split)
    fit_seconds = time.perf_counter() - t0
    hist = model.trainer_.history_
    train = epoch_train_seconds(hist)
    return dict(model=spec, dataset=split.name, split=split.kind, epochs=len(hist),
                seconds_per_epoch=float(np.median(train)), validation_seconds=float(np.median([h["validation_seconds"] for h in hist])),
                fit_seconds=fit_seconds, train_samples=int(len(model.train_rows_)),
                batch_size_used=int(model.trainer_.batch_size), params=model.get_params())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="*", default=["ml-100k", "ml-1m"])
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--fit-epochs", type=int, default=0, help="measure N epochs of fit instead of timed steps")
    ap.add_argument("--from-runs", action="store_true", help="read the epochs of the cached Table 1 runs instead")
    ap.add_argument("--out", default=str(ROOT / "results" / "bench" / "sequential_epoch.json"))
    args = ap.parse_args()
    out = Path(args.out)
    report = json.loads(out.read_text()) if out.exists() else {}
    for dataset in args.datasets:
        split = data.prepare(data.load(dataset), "temporal", seq_len=profile_params("paper")["seq_len"])
        for name in args.models:
            if args.from_runs:
                row = cached_run_epochs(name, split)
                if row is None:
                    print(f"{dataset} {name}: no paper-profile Table 1 run (temporal, seed 0) in the cache", flush=True)
                    continue
                note = ("measured: the Table 1 run's own epochs (median over them, validation apart); two runs shared "
                        "the machine's 2 CPUs, one torch thread each")
            elif args.fit_epochs:
                row = fit_epoch_seconds(name, split, args.fit_epochs)
                note = "measured: median over the epochs of fit (validation excluded)"
            elif (name.partition(":")[2] or make_model(name.partition(":")[0]).train_on) == "sequences":
                row = fit_epoch_seconds(name, split, 1)  # timed prefix steps would not be its epochs
                note = ("measured: one epoch of fit (validation excluded); a window-trained model's epoch is not "
                        "timed prefix steps")
            else:
                row = seconds_per_epoch(name.partition(":")[0], split, args.steps)
                note = "estimated: median of timed steps x steps per epoch"
            if not args.from_runs:
                note += f"; 1-min load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs when it ended"
            row.update(git_sha=git_sha(), machine=machine(), command=" ".join(sys.argv), note=note)
            report[f"{dataset}/{name}"] = row
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=1))
            print(f"{dataset} {name}: {row['seconds_per_epoch']:.1f} s/epoch", flush=True)


if __name__ == "__main__":
    main()

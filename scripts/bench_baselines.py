"""Seconds per training epoch of any registered models, written to results/bench/baselines.json.

    python scripts/bench_baselines.py --models LightGCN NGCF NCF HCCF SimRec [--datasets ml-100k ml-1m]
                                      [--epochs 3] [--split temporal] [--threads 1]

Each (model, dataset) is fitted for ``--epochs`` epochs with patience = epochs (no early stop) and
the trainer's per-step timings (``trainer_.summary()``) are reported: ``train_seconds`` is the mean
per epoch of data + forward + backward + optimizer, ``validation_seconds`` the mean validation
(in-batch NDCG@10 on the valid split). A model that trains a teacher first (SimRec) reports its
student's epochs. Rows are keyed by (model, dataset, split): a run read-modify-writes only its own
rows (under a file lock), so several scripts can share the file; each row carries its provenance
(commit, machine, torch threads, the load average when it started). Timings from different machines or
loads are not comparable: compare rows measured in the same run (``run_id``).

    python scripts/bench_baselines.py --models NCF LightGCN --datasets ml-1m --from-runs

``--from-runs`` trains nothing: it reads the epochs of each model's paper-profile Table 1 run (the
``--split``, seed 0) from the run cache, the seconds the Trainer recorded for every epoch of that
converged run (median over its epochs), and names the run. A model without that run is skipped.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH = ROOT / "results" / "bench" / "baselines.json"


def machine_info() -> dict:
    import platform

    import torch

    return dict(cpus=os.cpu_count(), torch_threads=torch.get_num_threads(), torch=torch.__version__,
                python=platform.python_version(), load_average_1min=round(os.getloadavg()[0], 2),
                host=platform.node())


def update_bench(rows: list[dict], key=("model", "dataset", "split"), section: str = "epochs",
                 path: Path = BENCH) -> Path:
    """Replace the rows of ``section`` in ``path`` that share ``key`` with ``rows``; keep the others."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(path.parent, os.O_RDONLY)  # the folder is the lock: no lock file to commit
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        doc = json.loads(path.read_text()) if path.exists() else {}
        new = {tuple(r.get(k) for k in key) for r in rows}
        kept = [r for r in doc.get(section, []) if tuple(r.get(k) for k in key) not in new]
        doc[section] = sorted(kept + rows, key=lambda r: tuple(str(r.get(k)) for k in key))
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc, indent=1, default=str) + "\n")
        os.replace(tmp, path)
    finally:
        os.close(lock)
    return path


def bench_model(name: str, split, epochs: int, run_id: str, **params) -> dict:
    """Fit ``name`` for ``epochs`` epochs on ``split``; its mean seconds per epoch and provenance."""
    from dqrec.evaluate import validation_criterion
    from dqrec.experiment import git_sha
    from dqrec.registry import make_model

    model = make_model(name, epochs=epochs, patience=epochs, progress=False, **params)
    start = time.perf_counter()
    model.fit(split, validate=validation_criterion(split, 0))
    wall = time.perf_counter() - start
    s = model.trainer_.summary()
    train = sum(s[f"{k}_seconds"] for k in ("data", "forward", "backward", "optimizer"))
    return dict(model=name, dataset=split.name, split=split.kind, epochs=s["epochs_run"],
                train_seconds=round(train, 3), validation_seconds=round(s["validation_seconds"], 3),
                steps={k: round(v, 3) for k, v in s.items() if k.endswith("_seconds")},
                fit_wall_seconds=round(wall, 2), device=str(getattr(model, "device_", "cpu")), git_sha=git_sha(),
                run_id=run_id, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), machine=machine_info())


def from_run(name: str, split, run_id: str) -> dict | None:
    """The row of :func:`bench_model` read from the epochs of the cached paper-profile run (None: not cached)."""
    from dqrec.experiment import cached_run_epochs, git_sha

    run = cached_run_epochs(name, split)
    if run is None:
        return None
    return dict(model=name, dataset=split.name, split=split.kind, epochs=run["epochs"],
                train_seconds=round(run["seconds_per_epoch"], 3), validation_seconds=round(run["validation_seconds"], 3),
                run=run["run"], note="measured: the Table 1 run's own epochs (median over them, validation apart)",
                git_sha=git_sha(), run_id=run_id, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                machine=run["run_machine"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", required=True, help="registered model names")
    ap.add_argument("--datasets", nargs="+", default=["ml-100k", "ml-1m"])
    ap.add_argument("--split", default="temporal", choices=["temporal", "random"])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--from-runs", action="store_true", help="read the epochs of the cached Table 1 runs instead")
    args = ap.parse_args()

    import torch

    from dqrec import data
    from dqrec.experiment import profile_params

    if args.threads:
        torch.set_num_threads(args.threads)
    run_id = uuid.uuid4().hex[:8]
    for name in args.datasets:
        split = data.prepare(data.load(name), split=args.split, seq_len=profile_params("paper")["seq_len"], seed=0)
        for model in args.models:
            if args.from_runs:
                row = from_run(model, split, run_id)
                if row is None:
                    print(f"{name} {model}: no paper-profile Table 1 run ({args.split}, seed 0) in the cache", flush=True)
                    continue
            else:
                row = bench_model(model, split, args.epochs, run_id, device=args.device)
            update_bench([row])
            print(f"{name} {model}: {row['train_seconds']:.2f} s/epoch training, "
                  f"{row['validation_seconds']:.2f} s validation", flush=True)


if __name__ == "__main__":
    main()

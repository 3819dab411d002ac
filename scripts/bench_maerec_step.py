"""MAERec's training step with the corrupted pairs tested by binary search against the same step with np.isin.

    python scripts/bench_maerec_step.py --dataset ml-1m --steps 10

MAERec redraws the corrupted pairs of its edge reconstruction that are edges of the transition graph
(:meth:`dqrec.baselines.maerec.MAERec.reconstruction_loss`). ``np.isin`` hashed all the graph's edge keys on
every call; :func:`dqrec.baselines.maerec.in_sorted` searches the sorted keys instead (the same answer, so
the same run). This times whole training steps (batch, loss, backward, Adam step, on windows of the
temporal split as ``fit`` draws them), alternating the two membership tests step by step in one process so
that both see the same load, and writes the median seconds of each and their ratio to
``results/bench/maerec_step.json``.
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
from dqrec.baselines import maerec  # noqa: E402
from dqrec.experiment import git_sha, machine, profile_params  # noqa: E402
from dqrec.registry import make_model  # noqa: E402

TESTS = {"in_sorted": maerec.in_sorted, "np.isin": lambda keys, query: np.isin(query, keys)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml-1m")
    ap.add_argument("--steps", type=int, default=10, help="timed steps of each membership test")
    ap.add_argument("--out", default=str(ROOT / "results" / "bench" / "maerec_step.json"))
    args = ap.parse_args()
    split = data.prepare(data.load(args.dataset), "temporal", seq_len=profile_params("paper")["seq_len"])
    model = make_model("MAERec", seed=0, progress=False)
    model.setup(split)
    opt = torch.optim.Adam(model.net_.parameters(), lr=model.lr)
    rng = np.random.default_rng(0)
    per_window = (model.window_context_ >= 0).sum() / len(model.window_rows_)
    windows = max(1, round(model.batch_size / per_window))  # as fit sizes a batch of windows
    model.net_.train()
    seconds = {name: [] for name in TESTS}
    for step in range(2 * args.steps + 2):
        name = list(TESTS)[step % 2]
        maerec.in_sorted = TESTS[name]
        start = time.perf_counter()
        loss = model.train_loss(model.window_batch(rng.choice(len(model.window_rows_), windows, replace=False), rng))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= 2:  # one warm-up step of each
            seconds[name].append(time.perf_counter() - start)
    maerec.in_sorted = TESTS["in_sorted"]
    median = {name: float(np.median(s)) for name, s in seconds.items()}
    row = dict(dataset=args.dataset, split="temporal", edges=int(len(model.edges_)), windows_per_batch=windows,
               steps_each=args.steps, step_seconds_median=median, ratio=median["in_sorted"] / median["np.isin"],
               git_sha=git_sha(), machine=machine(), command=" ".join(sys.argv),
               note=f"alternating steps in one process; 1-min load average {os.getloadavg()[0]:.1f} on "
                    f"{os.cpu_count()} CPUs when it ended")
    out = Path(args.out)
    report = json.loads(out.read_text()) if out.exists() else {}
    report[args.dataset] = row
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: row[k] for k in ("dataset", "edges", "step_seconds_median", "ratio")}, indent=1))


if __name__ == "__main__":
    main()

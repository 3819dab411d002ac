"""Run (or resume) the Table 1 sweep of a profile into its run cache, dataset by dataset.

    python scripts/run_table1.py --profile paper [--datasets ml-100k ml-1m]

Notebook 04 then reads the same cached runs (same keys) when it is executed with that profile.
"""
import argparse
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dqrec import data  # noqa: E402
from dqrec.experiment import MODEL_NAMES, profile_params, results_dir, run_models  # noqa: E402

warnings.filterwarnings("ignore", message=".*have no timestamp.*")
ap = argparse.ArgumentParser()
ap.add_argument("--profile", default="paper")
ap.add_argument("--datasets", nargs="*")
ap.add_argument("--splits", nargs="*", default=["temporal", "random"])
args = ap.parse_args()
params = profile_params(args.profile, progress=False)
for name in args.datasets or params["datasets"]:
    ds = data.load(name)
    for kind in args.splits:
        split = data.prepare(ds, split=kind, seq_len=params["seq_len"], seed=0)
        for model in MODEL_NAMES:
            t = time.perf_counter()
            run_models(split, [model], params["seeds"], params, progress=False, cache=results_dir(args.profile) / "runs")
            print(f"{name} {kind} {model}: {time.perf_counter() - t:.0f} s", flush=True)

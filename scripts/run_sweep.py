"""Run (or resume) the cached runs behind Table 1 or Table 3 for a profile, dataset by dataset.

    python scripts/run_sweep.py --table 1 --profile paper [--datasets ml-100k ml-1m]
    python scripts/run_sweep.py --table 3 --profile paper

Table 1: every model of MODEL_NAMES, the profile's seeds, temporal and random splits. Table 3: DQRec
and its ablation variants, each dataset with its seeds from the profile's ``ablation_seeds``, the
temporal split. Notebooks 04 and 05 then read the same runs (same keys) when executed with that profile.
"""
import argparse
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dqrec import data  # noqa: E402
from dqrec.experiment import ABLATION_MODELS, MODEL_NAMES, profile_params, results_dir, run_models  # noqa: E402

warnings.filterwarnings("ignore", message=".*have no timestamp.*")
ap = argparse.ArgumentParser()
ap.add_argument("--table", choices=["1", "3"], default="1")
ap.add_argument("--profile", default="paper")
ap.add_argument("--datasets", nargs="*")
ap.add_argument("--splits", nargs="*")
args = ap.parse_args()
params = profile_params(args.profile, progress=False)
if args.table == "1":
    models, seeds_of, splits = MODEL_NAMES, {d: params["seeds"] for d in params["datasets"]}, ["temporal", "random"]
else:
    models, seeds_of, splits = ABLATION_MODELS, params["ablation_seeds"], ["temporal"]
for name in args.datasets or seeds_of:
    ds = data.load(name)
    for kind in args.splits or splits:
        split = data.prepare(ds, split=kind, seq_len=params["seq_len"], seed=0)
        for model in models:
            t = time.perf_counter()
            run_models(split, [model], seeds_of.get(name, params["seeds"]), params, progress=False,
                       cache=results_dir(args.profile) / "runs")
            print(f"{name} {kind} {model}: {time.perf_counter() - t:.0f} s", flush=True)

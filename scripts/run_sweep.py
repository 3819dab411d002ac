"""Run (or resume) the cached runs behind Table 1, the loss comparison or Table 3, dataset by dataset.

    python scripts/run_sweep.py --table 1 --profile paper [--datasets ml-100k ml-1m] [--splits temporal]
    python scripts/run_sweep.py --table loss --profile paper
    python scripts/run_sweep.py --table 3 --profile paper

Table 1: every model of ``MODEL_NAMES``, the profile's seeds, temporal and random splits. ``loss``:
DQRec and DualTower trained with BPR on raw scores ("raw-BPR") instead of the paper's Eq. 22-23, on
the datasets, splits and seeds of the profile's ``loss_runs``. Table 3: DQRec and its ablation
variants, each dataset with its seeds from the profile's ``ablation_seeds``, the temporal split.
Notebooks 04 and 05 then read the same runs (same keys) when executed with that profile. Runs are
cached in ``results[/<profile>]/runs/``; a finished run is never recomputed.
"""
import argparse
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dqrec import data  # noqa: E402
from dqrec.experiment import (ABLATION_MODELS, MODEL_NAMES, PROFILES, code_version, git_sha, profile_params,  # noqa: E402
                              results_dir, run_models)
from dqrec.registry import model_names  # noqa: E402

warnings.filterwarnings("ignore", message=".*have no timestamp.*")
ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--table", choices=["1", "loss", "3"], default="1", help="which runs (default: 1)")
ap.add_argument("--profile", choices=sorted(PROFILES), default="quick",
                help="parameter profile; only 'paper' writes the committed results/runs/ (default: quick)")
ap.add_argument("--datasets", nargs="*", help="restrict to these datasets (default: the table's)")
ap.add_argument("--splits", nargs="*", choices=["temporal", "random"], help="restrict to these splits")
ap.add_argument("--models", nargs="*", help="restrict to these models (default: the table's)")
ap.add_argument("--seeds", nargs="*", type=int, help="restrict to these seeds (default: the profile's)")
args = ap.parse_args()
model_names()  # import every model now: the code a long sweep runs is the code it started with,
print(f"commit {git_sha()}, run code of DQRec {code_version('DQRec')}", flush=True)  # and the commit recorded is read now
params = profile_params(args.profile, progress=False)
if args.table == "1":
    models = MODEL_NAMES
    jobs = [(d, kind, params["seeds"]) for d in params["datasets"] for kind in ("temporal", "random")]
elif args.table == "loss":
    models = ("DQRec raw-BPR", "DualTower raw-BPR")
    jobs = [(d, kind, seeds) for d, by_split in params["loss_runs"].items() for kind, seeds in by_split.items()]
else:
    models = ABLATION_MODELS
    jobs = [(d, "temporal", seeds) for d, seeds in params["ablation_seeds"].items()]
for name, kind, seeds in jobs:
    if (args.datasets and name not in args.datasets) or (args.splits and kind not in args.splits):
        continue
    split = data.prepare(data.load(name), split=kind, seq_len=params["seq_len"], seed=0)
    seeds = [s for s in seeds if args.seeds is None or s in args.seeds]
    for model in args.models or models:
        t = time.perf_counter()
        run_models(split, [model], seeds, params, progress=False, cache=results_dir(args.profile) / "runs")
        print(f"{name} {kind} {model}: {time.perf_counter() - t:.0f} s", flush=True)

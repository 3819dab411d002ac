"""Compute the protocol-forensics grid (dqrec.forensics) of a profile into its run cache; resumable.

    nohup python scripts/run_forensics.py --profile paper --dataset ml-1m > forensics-ml-1m.log 2>&1 &

Data cells run in PRIORITY order, every model on each, so an interrupted run leaves the most
informative cells done. Cached cells are
read back, never refitted; notebooks/08_forensics.py renders whatever is in the cache.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dqrec import data, forensics  # noqa: E402
from dqrec.experiment import profile_params, results_dir  # noqa: E402

PRIORITY = ["ours", "random", "S_u with the target", "train+valid+test", "leave-one-out", "per-user chronological",
            "S_u at or before t", "S_u static last N", "S_i with the target user"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--models", nargs="+", default=None, help="default: the profile's forensics_models")
    ap.add_argument("--levels", nargs="+", choices=PRIORITY, metavar="LEVEL",
                    help="only these data cells (default: all, in PRIORITY order), e.g. to share a grid between "
                         f"two processes; choose from: {', '.join(repr(p) for p in PRIORITY)}")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*have no timestamp.*")
    params = profile_params(args.profile, progress=False)
    models = args.models or params["forensics_models"]
    kw = dict(seeds=params["forensics_seeds"], eval_seeds=forensics.eval_seeds_of(params, args.dataset),
              cache=results_dir(args.profile) / "runs", log=lambda msg: print(time.strftime("%H:%M:%S"), msg, flush=True))
    ds = data.load(args.dataset)
    cells = sorted((c for c in forensics.DATA_CELLS if not args.levels or c.level in args.levels),
                   key=lambda c: PRIORITY.index(c.level))
    for cell in cells:
        forensics.run_grid(ds, params, models=models, data_cells=[cell], **kw)
    print(time.strftime("%H:%M:%S"), "grid complete", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

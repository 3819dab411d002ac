"""Benchmark of dqrec.sweep, written to results/bench/sweep.json: the same 8-run sweep (ML-100K,
temporal split; DQRec, DQRec w/o Lat., DualTower and MF-BPR, seeds 0 and 1; the quick profile with
training capped at ``--epochs``) computed three times, each into an empty cache:

* serial: ``execute(..., workers=0)`` in this process, torch's default threads (what
  ``python -m dqrec.sweep ... --workers 0`` and the notebooks do);
* serial, 1 thread: the same with ``torch.set_num_threads(1)`` (the per-run cost a Ray worker pays);
* ray: ``execute(..., workers=2)``, a local Ray instance with 2 workers of 1 torch thread, its start
  included.

The ratio serial / ray is the speed-up a user of this machine gets from ``--workers 2``. The three
sweeps must give identical metric values (checked and recorded). The load average of the machine is
recorded before and after each sweep: the CPUs may be shared with other work.

Usage: python scripts/bench_sweep.py [--epochs 3]
"""
import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dqrec import sweep  # noqa: E402
from dqrec.experiment import profile_params, provenance  # noqa: E402

MODELS = ["DQRec", "DQRec w/o Lat.", "DualTower", "MF-BPR"]


def timed(runs, params, **options) -> dict:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        out = sweep.execute(runs, params, Path(cache), progress=False, log=print, **options)
        wall = time.perf_counter() - start
    runs_seconds = (out.results.drop_duplicates(["model", "seed"]).eval(
        "fit_seconds + eval_seconds")).sum()
    return dict(wall_seconds=round(wall, 1), sum_of_run_seconds=round(float(runs_seconds), 1),
                load_average_before=[round(x, 2) for x in load_before],
                load_average_after=[round(x, 2) for x in os.getloadavg()], results=out.results)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=3, help="training epochs of each run (default: 3)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message=".*have no timestamp.*")
    params = profile_params("quick", epochs=args.epochs, progress=False)
    runs = sweep.product(params, ["ml-100k"], ["temporal"], MODELS, [0, 1])
    assert len(runs) == 8
    sweep.execute(runs[:1], params, None, progress=False, log=None)  # warm-up: imports, numba kernels

    modes, threads = {}, torch.get_num_threads()
    modes["serial"] = dict(timed(runs, params, workers=0), torch_threads=threads)
    torch.set_num_threads(1)
    modes["serial_1_thread"] = dict(timed(runs, params, workers=0), torch_threads=1)
    torch.set_num_threads(threads)
    modes["ray_2_workers"] = dict(timed(runs, params, workers=2), torch_threads=1, workers=2)

    values = {name: m.pop("results").drop(columns=["fit_seconds", "eval_seconds"]) for name, m in modes.items()}
    identical = all(v.equals(values["serial"]) for v in values.values())
    ratio = modes["serial"]["wall_seconds"] / modes["ray_2_workers"]["wall_seconds"]
    out = dict(provenance(params, command=" ".join(["python", *sys.argv]), ray=__import__("ray").__version__),
               runs=[str(r) for r in runs], modes=modes, identical_results=identical,
               ratio_serial_over_ray=round(ratio, 2),
               ratio_serial_1_thread_over_ray=round(modes["serial_1_thread"]["wall_seconds"]
                                                    / modes["ray_2_workers"]["wall_seconds"], 2))
    path = ROOT / "results" / "bench" / "sweep.json"
    path.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k not in ("params",)}, indent=2, default=str))
    if not identical:
        sys.exit("the sweeps gave different results")


if __name__ == "__main__":
    main()

"""Benchmark of dqrec.sweep, written to results/bench/sweep.json: the same 8-run sweep (ML-100K,
temporal split; DualTower and MF-BPR, seeds 0-3, the test profile's data settings with exactly
``--epochs`` training epochs per run: patience = epochs, so every run does the same work) computed
three times, each in a fresh Python process (so each pays its own start: imports, numba kernels,
torch; Ray's start and its workers' included) and into an empty cache:

* serial: ``execute(..., workers=0)`` in this process, torch's default threads (what
  ``python -m dqrec.sweep ... --workers 0`` and the notebooks do);
* serial, 1 thread: the same with ``torch.set_num_threads(1)`` (the per-run cost a Ray worker pays);
* ray: ``execute(..., workers=2)``, a local Ray instance with 2 workers of 1 torch thread, its start
  included.

The ratio serial / ray is the speed-up a user of this machine gets from ``--workers 2``. The three
sweeps must give identical metric values (checked and recorded). The load average of the machine is
recorded before and after each sweep: the CPUs may be shared with other work.

Usage: python scripts/bench_sweep.py [--epochs 10] [--models DualTower MF-BPR] [--seeds 0 1 2 3]
"""
import argparse
import json
import os
import subprocess
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



def timed(runs, params, threads: int, **options) -> dict:
    """One sweep into an empty cache: wall time of ``execute``, its rows, the load average around it."""
    torch.set_num_threads(threads)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        out = sweep.execute(runs, params, Path(cache), progress=False, log=print, **options)
        wall = time.perf_counter() - start
    runs_seconds = out.results.drop_duplicates(["model", "seed"]).eval("fit_seconds + eval_seconds").sum()
    return dict(wall_seconds=round(wall, 1), sum_of_run_seconds=round(float(runs_seconds), 1), torch_threads=threads,
                load_average_before=[round(x, 2) for x in load_before],
                load_average_after=[round(x, 2) for x in os.getloadavg()],
                values=out.results.value.tolist(), seeds=out.results.seed.tolist(), **options)


MODES = {"serial": dict(threads=torch.get_num_threads(), workers=0), "serial_1_thread": dict(threads=1, workers=0),
         "ray_2_workers": dict(threads=1, workers=2)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=10, help="training epochs of each run (default: 10)")
    ap.add_argument("--models", nargs="+", default=["DualTower", "MF-BPR"], help="models (default: DualTower MF-BPR)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3], help="seeds (default: 0 1 2 3)")
    ap.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)  # one mode, in this process
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message=".*have no timestamp.*")
    params = profile_params("test", epochs=args.epochs, patience=args.epochs, progress=False)
    runs = sweep.product(params, ["ml-100k"], ["temporal"], args.models, args.seeds)
    if args.child:
        print("RESULT " + json.dumps(timed(runs, params, **MODES[args.child])))
        return

    modes = {}
    for mode in MODES:
        child = subprocess.run([sys.executable, __file__, "--child", mode, "--epochs", str(args.epochs), "--models",
                                *args.models, "--seeds", *map(str, args.seeds)], capture_output=True, text=True,
                               check=True, cwd=ROOT)
        modes[mode] = json.loads(child.stdout.split("RESULT ", 1)[1])
        print(mode, {k: v for k, v in modes[mode].items() if k not in ("values", "seeds")}, flush=True)
    values = [(m.pop("values"), m.pop("seeds")) for m in modes.values()]
    identical = all(v == values[0] for v in values)
    ray_wall = modes["ray_2_workers"]["wall_seconds"]
    out = dict(provenance(params, command=" ".join(["python", *sys.argv]), ray=__import__("ray").__version__),
               runs=[str(r) for r in runs], modes=modes, identical_results=identical,
               ratio_serial_over_ray=round(modes["serial"]["wall_seconds"] / ray_wall, 2),
               ratio_serial_1_thread_over_ray=round(modes["serial_1_thread"]["wall_seconds"] / ray_wall, 2))
    path = ROOT / "results" / "bench" / "sweep.json"
    path.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "params"}, indent=2, default=str))
    if not identical:
        sys.exit("the sweeps gave different results")


if __name__ == "__main__":
    main()

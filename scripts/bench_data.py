"""Benchmark: load and prepare ML-1M (parse, positives, split, sequences, features).

Target (issue 2): <= 20 s on the 2-core reference machine. Writes results/bench/data.json.
"""
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dqrec import data  # noqa: E402
from dqrec.experiment import git_sha  # noqa: E402

warnings.filterwarnings("ignore")
runs = []
for _ in range(3):
    t0 = time.perf_counter()
    ds = data.load("ml-1m", download=False)
    t1 = time.perf_counter()
    split = data.prepare(ds, split="temporal", seq_len=20)
    t2 = time.perf_counter()
    runs.append(dict(load_s=round(t1 - t0, 3), prepare_s=round(t2 - t1, 3), total_s=round(t2 - t0, 3)))
best = min(runs, key=lambda r: r["total_s"])
out = dict(dataset="ml-1m", ratings=len(ds.ratings), samples=len(split.samples), seq_len=20, runs=runs, best=best,
           target_s=20.0, meets_target=best["total_s"] <= 20.0, git_sha=git_sha(), cpus=os.cpu_count(),
           python=platform.python_version())
path = ROOT / "results" / "bench" / "data.json"
path.parent.mkdir(parents=True, exist_ok=True)
path.write_text(json.dumps(out, indent=2) + "\n")
print(json.dumps(out, indent=2))

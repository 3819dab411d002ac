"""Our NCF, NGCF and LightGCN against RecBole 1.2.1's NeuMF, NGCF and LightGCN on our exact ML-100K split.

    python scripts/recbole_compare.py [--seeds 0 1 2] [--models LightGCN NGCF NCF] [--bench-epochs 3]

1. Exports dqrec's split (``data.prepare(data.load("ml-100k"), "temporal")``, the Table 1 split) as
   RecBole atomic files ``<name>.{train,valid,test}.inter`` (``benchmark_filename``), tokens = our
   user and item indices, plus the user of every test sample.
2. Per RecBole model and seed, runs ``scripts/recbole_worker.py`` in the RecBole venv
   (``$RECBOLE_PYTHON``, default /work/venvs/recbole/bin/python): the paper's dim 64 / lr 1e-3 / batch
   1024, early stopping on validation NDCG@10 (RecBole's per-user full ranking, stopping_step 5), the
   best epoch restored; it dumps the scores of every item for each test sample.
3. Scores those matrices with OUR evaluator (:func:`dqrec.evaluate.evaluate` on ``split.test``, all
   known positives but the sample's own masked): per-interaction Recall@10 / NDCG@10, full ranking and
   the paper's in-batch protocol, beside our models' runs on the same split, read from (or computed
   into) the Table 1 run cache results/runs with the paper profile.
4. Times training epochs of both sides in this one run, alternating ours / RecBole's per model
   (``--bench-epochs`` epochs each, validation excluded), and writes seconds per epoch and the ratio
   ours / RecBole to results/bench/baselines.json.

Writes results/recbole_comparison.csv (one row per side, model, seed) and its .json provenance.
A sequential model (SASRec, BERT4Rec) fits the same frame: add it to PAIRS and to the worker's
MODELS, and give the worker's ``sample_scores`` a branch that scores each test sample from its own
history (``split.user_seq`` rows of the test samples, exported beside ``test_users.npy``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from bench_baselines import bench_model, machine_info, update_bench  # noqa: E402

from dqrec import data  # noqa: E402
from dqrec.evaluate import evaluate  # noqa: E402
from dqrec.experiment import git_sha, profile_params, read_cached_run, results_dir, run_key, run_models  # noqa: E402

PAIRS = {"NCF": "NeuMF", "NGCF": "NGCF", "LightGCN": "LightGCN"}  # ours -> RecBole's
RECBOLE_PYTHON = os.environ.get("RECBOLE_PYTHON", "/work/venvs/recbole/bin/python")
WORKER = ROOT / "scripts" / "recbole_worker.py"


def export_atomic(split, folder: Path) -> Path:
    """RecBole atomic files of ``split`` under ``folder/<name>/``; returns that folder."""
    name = f"{split.name}-{split.kind}"
    out = folder / name
    out.mkdir(parents=True, exist_ok=True)
    for part in ("train", "valid", "test"):  # written to a temporary and renamed: a reader never sees half a file
        df, path = split.part(part), out / f"{name}.{part}.inter"
        text = pd.DataFrame({"user_id:token": df.user.to_numpy(), "item_id:token": df.item.to_numpy(),
                             "timestamp:float": df.timestamp.to_numpy()}).to_csv(sep="\t", index=False)
        if not path.exists() or path.read_text() != text:
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_text(text)
            os.replace(tmp, path)
    np.save(out / "test_users.npy", split.test.user.to_numpy(np.int64))
    np.save(out / "n_items.npy", np.int64(split.n_items))
    return out


def run_worker(folder: Path, model: str, seed: int, out: Path, bench_epochs: int = 0, max_epochs: int = 200) -> dict:
    cmd = [RECBOLE_PYTHON, str(WORKER), "--data-dir", str(folder.parent), "--dataset", folder.name, "--model", model,
           "--seed", str(seed), "--out", str(out), "--max-epochs", str(max_epochs)] \
        + (["--bench-epochs", str(bench_epochs)] if bench_epochs else [])
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=folder.parent)
    if proc.returncode:
        raise RuntimeError(f"RecBole worker failed ({' '.join(cmd)}):\n{proc.stderr[-4000:]}")
    return json.loads(Path(f"{out}.json").read_text())


class MatrixScorer:
    """A scorer from a (n_test, n_items) score matrix whose rows follow ``samples``' order."""

    def __init__(self, scores: np.ndarray, samples: pd.DataFrame):
        self.scores = scores
        self.row = pd.Series(np.arange(len(samples)), index=samples.index)

    def score(self, batch: pd.DataFrame, items: np.ndarray) -> np.ndarray:
        return self.scores[self.row.loc[batch.index].to_numpy()][:, items]


def metrics_at_10(res: pd.DataFrame, full_ranks: np.ndarray, cold: np.ndarray) -> dict:
    """Recall/NDCG@10 per protocol, and full-ranking Recall@10 apart for test samples whose user has no
    training positive (cold: 85% of the ML-100K temporal test split) and the others (warm)."""
    r = res[res.k == 10]
    out = {f"{m}@10_{p}": float(v) for p, m, v in zip(r.protocol, r.metric, r.value)}
    return dict(out, **{"Recall@10_full_warm_users": float((full_ranks[~cold] < 10).mean()),
                        "Recall@10_full_cold_users": float((full_ranks[cold] < 10).mean()),
                        "cold_user_share": float(cold.mean())})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    ap.add_argument("--bench-epochs", type=int, default=3, help="epochs timed per side (0: skip timing)")
    ap.add_argument("--recbole-max-epochs", type=int, default=200, help="RecBole's epoch cap (ours: the profile's)")
    ap.add_argument("--skip-ours", action="store_true", help="RecBole's side only (ours from the cache later)")
    ap.add_argument("--cached-only", action="store_true",
                    help="use only finished RecBole outputs and cached runs of ours; compute nothing missing")
    ap.add_argument("--keep-recbole-rows", action="store_true",
                    help="keep RecBole's rows (and configs) of the existing results/recbole_comparison.csv and "
                         "recompute only ours (after a change to our models; RecBole's side did not change)")
    args = ap.parse_args()

    started = time.perf_counter()
    params = profile_params("paper", progress=False)
    split = data.prepare(data.load("ml-100k"), split="temporal", seq_len=params["seq_len"], seed=0)
    work = ROOT / ".cache" / "recbole"
    folder = export_atomic(split, work / "atomic")
    known = split.known()
    cold = np.bincount(split.train.user, minlength=split.n_users)[split.test.user.to_numpy()] == 0

    rows, out_csv = [], ROOT / "results" / "recbole_comparison.csv"

    def save():
        pd.DataFrame(rows).to_csv(out_csv, index=False)
        out_csv.with_suffix(".json").write_text(json.dumps(dict(
            git_sha=git_sha(), created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), dataset=split.name, split=split.kind,
            command="python scripts/recbole_compare.py " + " ".join(sys.argv[1:]), machine=machine_info(), pairs=PAIRS,
            recbole_config=configs,
            ours_params="paper profile (results/runs, the run keys of Table 1)",
            wall_seconds=round(time.perf_counter() - started, 1)), indent=1, default=str) + "\n")

    configs = {}
    if args.keep_recbole_rows:
        kept = pd.read_csv(out_csv)
        rows += kept[kept.side != "dqrec"].to_dict("records")
        configs = json.loads(out_csv.with_suffix(".json").read_text())["recbole_config"]
    for ours in [] if args.keep_recbole_rows else args.models:  # RecBole's side first (a finished output is reused)
        theirs = PAIRS[ours]
        for seed in args.seeds:
            out = work / "out" / f"{folder.name}_{theirs}_s{seed}"
            out.parent.mkdir(parents=True, exist_ok=True)
            done = Path(f"{out}.json").exists() and Path(f"{out}.npy").exists()
            if args.cached_only and not done:
                continue
            meta = json.loads(Path(f"{out}.json").read_text()) if done else run_worker(folder, theirs, seed, out,
                                                                                         max_epochs=args.recbole_max_epochs)
            configs[theirs] = {k: v for k, v in meta["config"].items() if k != "seed"}
            sizes = {p: len(split.part(p)) for p in ("train", "valid", "test")}
            if meta.get("interactions", sizes) != sizes:
                raise RuntimeError(f"RecBole read {meta['interactions']} interactions, the split has {sizes}")
            res, ranks = evaluate(MatrixScorer(np.load(f"{out}.npy"), split.test), split.test, known, split.n_items,
                                  seed=seed, progress=False, return_ranks=True)
            rows.append(dict(side="RecBole 1.2.1", model=ours, implementation=theirs, seed=seed,
                             **metrics_at_10(res, ranks["full"], cold),
                             epochs_run=meta["epochs_run"], best_epoch=meta["best_epoch"], stopped_by=meta["stopped_by"],
                             recbole_per_user_ndcg10=meta["recbole_test_per_user"].get("ndcg@10")))
            print(rows[-1], flush=True)
            save()
    for ours in [] if args.skip_ours else args.models:  # ours: the Table 1 runs (cached, or computed into the cache)
        for seed in args.seeds:
            if args.cached_only and read_cached_run(results_dir("paper") / "runs" / run_key(split, ours, seed, params),
                                                    len(split.test)) is None:
                continue
            ranks = {}
            res = run_models(split, [ours], [seed], params, progress=False, cache=results_dir("paper") / "runs",
                             ranks=ranks)
            rows.append(dict(side="dqrec", model=ours, implementation=ours, seed=seed,
                             **metrics_at_10(res, ranks[(split.name, split.kind, ours)]["full"], cold),
                             epochs_run=int(res.epochs_run.iloc[0]), best_epoch=int(res.best_epoch.iloc[0]),
                             stopped_by=res.stopped_by.iloc[0], recbole_per_user_ndcg10=None))
            print(rows[-1], flush=True)
            save()

    if args.bench_epochs:
        run_id = f"recbole-compare-{int(time.time())}"
        epochs, ratios = [], []
        for ours in args.models:
            theirs = PAIRS[ours]
            mine = bench_model(ours, split, args.bench_epochs, run_id)
            meta = run_worker(folder, theirs, 0, work / "out" / f"bench_{theirs}", bench_epochs=args.bench_epochs)
            rb = dict(model=f"RecBole {theirs}", dataset=split.name, split=split.kind, epochs=meta["epochs_run"],
                      train_seconds=round(float(np.mean(meta["train_epoch_seconds"])), 3),
                      train_epoch_seconds=meta["train_epoch_seconds"], git_sha=git_sha(), run_id=run_id,
                      created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                      machine=dict(machine_info(), torch_threads=meta["torch_threads"]))
            epochs += [mine, rb]
            ratios.append(dict(model=ours, reference=f"RecBole {theirs}", dataset=split.name, split=split.kind,
                               ours_seconds=mine["train_seconds"], reference_seconds=rb["train_seconds"],
                               ratio=round(mine["train_seconds"] / rb["train_seconds"], 3), run_id=run_id,
                               git_sha=git_sha(), machine=machine_info()))
            print(ratios[-1], flush=True)
        update_bench(epochs)
        update_bench(ratios, section="ratios_vs_recbole")


if __name__ == "__main__":
    main()

"""Our SASRec and BERT4Rec against RecBole 1.2.1's on our exact split, both scored by our evaluator.

    python scripts/recbole_sequential.py --dataset ml-100k --split temporal --epochs 200 --seed 0

RecBole runs in its own venv (/work/venvs/recbole, see issue 10; guarded by flock on
/work/venvs/recbole.lock). Its sequential models are fed our samples as atomic benchmark files: every
sample is one row with its own history (:func:`dqrec.baselines.sequential.history`, the items of its user
strictly before its time, oldest first) as ``item_id_list`` (``alias_of_item_id`` makes it share the item
vocabulary) and its positive as ``item_id``; train rows train, valid rows early-stop (RecBole: full-ranking
NDCG@10, patience 5; ours: in-batch NDCG@10, patience 5). A sample with an empty history has no RecBole
row (RecBole cannot encode an empty sequence), so both models are compared on the test samples with a
history; ours is also reported on all of them. Hyper-parameters are matched where RecBole has them
(dim 64, 2 layers, heads, dropout, lr 1e-3, batch 1024, max_len 50, BERT4Rec's mask ratio); what differs is
listed in ``differences`` of the output. Writes results/bench/recbole_sequential.json.

``--cached`` does not train ours again: it reads the paper profile's Table 1 run of the model from the run
cache (its per-sample ranks; the run's key, epochs and seconds are recorded) and trains RecBole only;
with ``--keep-recbole-rows`` it trains nothing: RecBole's part of each entry already in ``--out`` is kept and
ours re-read from the cache (after our model's code or training scheme changed). Each entry records the
scheme ours trained on (``train_on``; RecBole always feeds one prefix per target).

    python scripts/recbole_sequential.py --models SASRec --cached --keep-recbole-rows --ours-train-on prefixes

``--ours-train-on`` reads the cached run of ours trained on that scheme (``--set train_on=...`` of
``python -m dqrec.sweep run``) into its own entry (the key ends in ``/ours-<scheme>``), beside RecBole's
part of the model's entry, so ours is compared with RecBole on RecBole's own scheme too. With ``--resume
--recbole-only`` RecBole's side trains while ours' run is still computing; its scores wait in its resume
folder, and the same command without ``--recbole-only`` pairs them with ours once ours' run is cached.

    python scripts/recbole_sequential.py --speed-epochs 2

``--recbole-patience N`` stops RecBole after N epochs without a better validation NDCG@10 (its
``stopping_step``; default 5, ours' patience); another N gets an entry of its own (the key ends in
``/recbole-patience<N>``), e.g. to see whether RecBole's early stop is what separates the two.

    python scripts/recbole_sequential.py --models SASRec --cached --ours-train-on prefixes --recbole-patience 20

``--resume`` saves RecBole's training state after every epoch (``results/checkpoints/recbole-sequential/``;
commit it to carry a run to another sitting) and continues from it when run again with the same arguments;
the entry records ``resumed`` and ``train_seconds`` (all epochs, every sitting). A resumed run trains and stops
as an uninterrupted one, though not bit for bit (see the runner).

    python scripts/recbole_sequential.py --models BERT4Rec --cached --resume

``--speed-epochs N`` compares speed only: in this one run it trains ours for N epochs on each training
scheme (its own, "sequences", and RecBole's, "prefixes") and RecBole's model for N epochs, and writes
seconds per training epoch (validation excluded) and the ratio ours / RecBole to the ``ratios_vs_recbole``
section of results/bench/baselines.json (beside the graph models' ratios of scripts/recbole_compare.py);
the accuracy entries of ``--out`` are left as they are.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "scripts"))
from bench_baselines import bench_model, machine_info, update_bench  # noqa: E402

from dqrec import data  # noqa: E402
from dqrec.baselines.sequential import history  # noqa: E402
from dqrec.evaluate import evaluate  # noqa: E402
from dqrec.experiment import apply_overrides, git_sha, machine, profile_params, results_dir, run_key  # noqa: E402
from dqrec.stats import cached_ranks, per_sample  # noqa: E402
from dqrec.registry import make_model  # noqa: E402

RECBOLE_PYTHON = "/work/venvs/recbole/bin/python"
RECBOLE_LOCK = "/work/venvs/recbole.lock"
RESUME = ROOT / "results" / "checkpoints" / "recbole-sequential"
MAX_LEN = 50
RECBOLE_CONFIG = {  # RecBole's names for our models' hyper-parameters
    "SASRec": dict(hidden_size=64, inner_size=256, n_layers=2, n_heads=1, hidden_dropout_prob=0.2,
                   attn_dropout_prob=0.2, hidden_act="relu", loss_type="BPR",
                   train_neg_sample_args={"distribution": "uniform", "sample_num": 1, "alpha": 1.0, "dynamic": False,
                                          "candidate_num": 0}),
    "BERT4Rec": dict(hidden_size=64, inner_size=256, n_layers=2, n_heads=2, hidden_dropout_prob=0.1,
                     attn_dropout_prob=0.1, hidden_act="gelu", mask_ratio=0.2, loss_type="CE",
                     train_neg_sample_args=None),
}
DIFFERENCES = {
    "SASRec": "ours: pre-LN blocks as SASRec's Eq. 5 plus a final LayerNorm, binary cross-entropy with one sampled "
              "negative (Eq. 7); RecBole: post-LN blocks with a LayerNorm on the input, BPR with one uniform "
              "negative that may be any item but the row's target (sequential models use RecBole's "
              "RepeatableSampler; RecBole has no BCE option for SASRec), one prefix per target.",
    "BERT4Rec": "ours: training windows masked with rho = 0.2, targets train samples only; RecBole: one prefix per "
                "target through its mask_itemseq transform (rho = 0.2, plus fine-tuning samples that mask only "
                "the last item with ft_ratio 0.5).",
}


def export(split, folder: Path, name: str) -> np.ndarray:
    """Write NAME.{train,valid,test}.inter; return the sample rows that have a history."""
    hist = history(split, MAX_LEN)
    has_history = (hist != split.n_items).any(1)
    s = split.samples
    (folder / name).mkdir(parents=True, exist_ok=True)
    for part in ("train", "valid", "test"):
        rows = np.flatnonzero(has_history & (s.part == part).to_numpy())
        lines = ["row:float\tuser_id:token\titem_id_list:token_seq\titem_id:token"]
        for r in rows:
            seq = " ".join(str(i) for i in hist[r] if i != split.n_items)
            lines.append(f"{r}\t{s.user.iat[r]}\t{seq}\t{s.item.iat[r]}")
        (folder / name / f"{name}.{part}.inter").write_text("\n".join(lines) + "\n")
    return np.flatnonzero(has_history)


class ScoreTable:
    """A scorer over precomputed scores: rows are sample rows, columns our items."""

    def __init__(self, rows: np.ndarray, scores: np.ndarray, items: np.ndarray, n_items: int):
        self.position = dict(zip(rows.tolist(), range(len(rows))))
        self.full = np.full((len(rows), n_items), -np.inf, np.float32)
        self.full[:, items] = scores

    def score(self, batch, items):
        at = [self.position[r] for r in batch.index]
        return np.nan_to_num(self.full[np.ix_(at, items)], neginf=-1e30)


def metrics(scorer, samples, split) -> dict:
    res = evaluate(scorer, samples, split.known(), split.n_items, protocols=("full",), ks=(10,), progress=False)
    return {f"{m}@10": float(v) for m, v in zip(res.metric, res.value)} | {"n_samples": int(len(samples))}


def metrics_from_ranks(ranks: np.ndarray, positions: np.ndarray) -> dict:
    """Full-ranking Recall@10 and NDCG@10 of the test samples at ``positions`` from a cached run's ranks."""
    return {f"{m}@10": float(per_sample(ranks[positions], m, 10).mean()) for m in ("Recall", "NDCG")} | {
        "n_samples": int(len(positions))}


def ours_from_cache(dataset: str, kind: str, model_name: str, seed: int, test_h, train_on: str | None = None) -> dict:
    """Our paper-profile Table 1 run of ``model_name`` read from the run cache, as a report part; with
    ``train_on``, its run on that training scheme (``--set train_on=...``)."""
    import pandas as pd

    params = profile_params("paper", progress=False)
    if train_on:
        params = apply_overrides(model_name, params, {"train_on": train_on})
    split = data.prepare(data.load(dataset), split=kind, seq_len=params["seq_len"], seed=0)
    cache = results_dir("paper") / "runs"
    found = cached_ranks(cache, split, model_name, [seed], params)
    if seed not in found:
        raise SystemExit(f"--cached: no paper-profile run of {model_name} on {dataset}/{kind} seed {seed} in {cache}; "
                         f"compute it with `python -m dqrec.sweep run --model {model_name} --dataset {dataset} "
                         f"--split {kind} --seed {seed} --profile paper"
                         + (f" --set train_on={train_on}`" if train_on else "`"))
    key = run_key(split, model_name, seed, params)
    row = pd.read_csv(cache / f"{key}.csv").iloc[0]
    run_params = json.loads((cache / f"{key}.json").read_text())["params"]
    full = found[seed]["full"]
    at = np.flatnonzero(split.test.index.isin(test_h.index))
    return dict(test_with_history=metrics_from_ranks(full, at), test_all=metrics_from_ranks(full, np.arange(len(full))),
                epochs_run=int(row.epochs_run), best_epoch=int(row.best_epoch), fit_seconds=float(row.fit_seconds),
                seconds_per_epoch=float(row.fit_seconds) / max(int(row.epochs_run), 1), run=key,
                train_on=run_params.get("train_on", "prefixes"), patience=run_params["patience"],
                note="the paper profile's cached Table 1 run (seconds per epoch include validation)")


def run_recbole(tmp: str, name: str, model_name: str, epochs: int, seed: int, patience: int = 5,
                resume_dir: Path | None = None) -> np.lib.npyio.NpzFile:
    """RecBole's ``model_name`` trained on the exported files ``tmp/name`` (at most ``epochs`` epochs, stopped
    after ``patience`` epochs without a better validation score); with ``resume_dir``, its training state is
    saved there after every epoch and a run started again continues from it, and the finished run's scores are
    kept there (``scores.npz``) and read back by a later call."""
    npz = Path(tmp) / f"{model_name}.npz" if resume_dir is None else resume_dir / "scores.npz"
    if npz.exists():
        return np.load(npz)
    runner = str(ROOT / "scripts" / "recbole_sequential_runner.py")
    config = RECBOLE_CONFIG[model_name] | {"MAX_ITEM_LIST_LENGTH": MAX_LEN, "stopping_step": patience}
    if resume_dir is not None:
        resume_dir.mkdir(parents=True, exist_ok=True)
        config["resume_dir"] = str(resume_dir)
    subprocess.run(["flock", RECBOLE_LOCK, RECBOLE_PYTHON, runner, tmp, name, model_name, str(epochs), str(seed),
                    str(npz), json.dumps(config)], check=True, cwd=tmp)
    return np.load(npz)


def speed_rows(split, model_name: str, epochs: int, seed: int, tmp: str, name: str) -> list[dict]:
    """Seconds per training epoch of ours on each scheme and of RecBole's ``model_name``, timed in this run
    one after the other (``epochs`` each, validation excluded; ours: the mean over its epochs, RecBole's:
    the median); one row per scheme of ours."""
    run_id = f"recbole-sequential-speed-{int(time.time())}"
    ours = {scheme: bench_model(model_name, split, epochs, run_id, max_len=MAX_LEN, seed=seed, train_on=scheme)
            for scheme in ("sequences", "prefixes")}
    theirs = float(np.median(run_recbole(tmp, name, model_name, epochs, seed)["epoch_seconds"]))
    return [dict(model=model_name, reference=f"RecBole {model_name}", dataset=split.name, split=split.kind,
                 ours_train_on=scheme, reference_train_on="prefixes", epochs=epochs,
                 ours_seconds=row["train_seconds"], reference_seconds=round(theirs, 3),
                 ratio=round(row["train_seconds"] / theirs, 3), run_id=run_id, git_sha=git_sha(),
                 machine=machine_info()) for scheme, row in ours.items()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--split", default="temporal", choices=["temporal", "random"])
    ap.add_argument("--models", nargs="*", default=list(RECBOLE_CONFIG))
    ap.add_argument("--epochs", type=int, default=200, help="most epochs for both (both stop early on validation)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cached", action="store_true",
                    help="read ours from the paper profile's run cache instead of training it again")
    ap.add_argument("--keep-recbole-rows", action="store_true",
                    help="with --cached: train nothing, keep RecBole's part of each entry in --out, re-read ours")
    ap.add_argument("--out", default=str(ROOT / "results" / "bench" / "recbole_sequential.json"))
    ap.add_argument("--ours-train-on", choices=["sequences", "prefixes"],
                    help="with --cached: ours' run on this training scheme, in an entry of its own")
    ap.add_argument("--recbole-patience", type=int, default=5,
                    help="RecBole's stopping_step (default 5, ours' patience); another value gets its own entry")
    ap.add_argument("--resume", action="store_true",
                    help="save RecBole's training state every epoch under results/checkpoints/recbole-sequential/ "
                         "and continue from it when started again (a long run over several sittings)")
    ap.add_argument("--recbole-only", action="store_true",
                    help="with --resume: train RecBole's side only and keep its scores in its resume folder, before "
                         "ours' run exists; run again with --cached --resume to pair the two")
    ap.add_argument("--speed-epochs", type=int, default=0,
                    help="only time N training epochs of each side (ours on both schemes) and write the ratios")
    args = ap.parse_args()
    if (args.keep_recbole_rows or args.ours_train_on) and not args.cached:
        ap.error("--keep-recbole-rows and --ours-train-on need --cached (ours from the run cache)")
    if args.recbole_only and not args.resume:
        ap.error("--recbole-only needs --resume (RecBole's scores are kept in its resume folder)")
    split = data.prepare(data.load(args.dataset), args.split)
    out = Path(args.out)
    report = json.loads(out.read_text()) if out.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        name = f"{args.dataset.replace('-', '')}_{args.split}"
        with_history = export(split, Path(tmp), name)
        test = split.test
        test_h = test.loc[test.index.intersection(with_history)]
        if args.speed_epochs:
            for model_name in args.models:
                rows = speed_rows(split, model_name, args.speed_epochs, args.seed, tmp, name)
                update_bench(rows, key=("model", "dataset", "split", "ours_train_on"), section="ratios_vs_recbole")
                print(json.dumps(rows, indent=1), flush=True)
            return
        for model_name in args.models:
            base = f"{args.dataset}/{args.split}/{model_name}/s{args.seed}"
            entry = base + (f"/ours-{args.ours_train_on}" if args.ours_train_on else "") + (
                f"/recbole-patience{args.recbole_patience}" if args.recbole_patience != 5 else "")
            if args.recbole_only:
                resume_dir = RESUME / entry.replace("/", "_")
                run_recbole(tmp, name, model_name, args.epochs, args.seed, args.recbole_patience, resume_dir)
                print(f"RecBole's {model_name} finished; its scores wait in {resume_dir} for ours' run", flush=True)
                continue
            if args.cached:
                ours_part = ours_from_cache(args.dataset, args.split, model_name, args.seed, test_h, args.ours_train_on)
                ours_epoch = [ours_part["seconds_per_epoch"]]
                if args.keep_recbole_rows:
                    if base not in report:
                        raise SystemExit(f"--keep-recbole-rows: no entry {base} in {out} to keep RecBole's part of")
                    report.setdefault(entry, dict(report[base])).update(ours=ours_part, differences=DIFFERENCES[model_name], git_sha=git_sha(),
                                         command=" ".join(sys.argv), speed_ratio_recbole_over_ours=None)
                    out.write_text(json.dumps(report, indent=1))
                    print(json.dumps(report[entry]["ours"], indent=1), flush=True)
                    continue
            else:
                t0 = time.time()
                ours = make_model(model_name, max_len=MAX_LEN, epochs=args.epochs, seed=args.seed, progress=False)
                ours.fit(split)
                fit_seconds = time.time() - t0
                hist = ours.trainer_.history_
                ours_epoch = [sum(h[f"{k}_seconds"] for k in ("data", "forward", "backward", "optimizer")) for h in hist]
                ours_part = dict(test_with_history=metrics(ours, test_h, split), test_all=metrics(ours, test, split),
                                 epochs_run=len(hist), best_epoch=ours.trainer_.best_epoch_,
                                 seconds_per_epoch=float(np.median(ours_epoch)), fit_seconds=fit_seconds)
            resume_dir = RESUME / entry.replace("/", "_") if args.resume else None
            resumed = resume_dir is not None and (resume_dir / "state.pth").exists()
            t0 = time.time()
            rb = run_recbole(tmp, name, model_name, args.epochs, args.seed, args.recbole_patience, resume_dir)
            recbole_seconds = time.time() - t0
            table = ScoreTable(rb["rows"], rb["scores"], rb["items"], split.n_items)
            report[entry] = dict(
                dataset=args.dataset, split=args.split, model=model_name, seed=args.seed, max_epochs=args.epochs,
                ours=ours_part,
                recbole=dict(test_with_history=metrics(table, test_h, split), epochs_run=int(len(rb["epoch_seconds"])),
                             seconds_per_epoch=float(np.median(rb["epoch_seconds"])), run_seconds=recbole_seconds,
                             resumed=resumed, train_seconds=float(np.sum(rb["epoch_seconds"])),
                             patience=args.recbole_patience, best_epoch=int(np.argmax(rb["valid_scores"])) + 1,
                             valid_curve=[round(float(v), 5) for v in rb["valid_scores"]], config=RECBOLE_CONFIG[model_name]),
                speed_ratio_recbole_over_ours=None if args.cached else  # a cached run's time is another run's
                float(np.median(rb["epoch_seconds"]) / np.median(ours_epoch)),
                differences=DIFFERENCES[model_name],
                note="seconds per epoch: training only (validation excluded), median over epochs, both on this "
                     "machine in the same run (shared CPU: other jobs ran at the same time)",
                git_sha=git_sha(), machine=machine(), command=" ".join(sys.argv))
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=1))
            if resume_dir is not None:  # the run landed: its training state is no longer needed
                shutil.rmtree(resume_dir)
            print(json.dumps(report[entry], indent=1), flush=True)


if __name__ == "__main__":
    main()

"""Re-key cached runs whose code changed since they ran in a way that cannot change their results.

    python scripts/rekey_runs.py --rev 4c13635 [--rev ...] [--cache results/runs] [--dry-run]
    python scripts/rekey_runs.py --verify 1331efb [--cache results/runs] [--dry-run]

A run's key holds the version of the code it ran (:func:`dqrec.experiment.code_version`), so any change
of that code stales it. Two kinds of change are known not to move a result, and for those this script
renames the run to today's key (its three files, the json's ``code`` field, and any reference to its name
in ``results/bench/*.json``); every other run is left as it is (stale: its model must run again).

``--rev``: only docstrings, comments or blank lines changed. Before the version hashed the
    :func:`~dqrec.experiment.code_text` of the run code, it hashed the files' raw bytes; a run whose
    recorded version is the raw-bytes version at REV (of those given), and whose code text at REV equals
    today's, is renamed.
``--verify REV``: the code changed since REV, and the change is shown not to move a result by running
    it. The runs recorded under the version their model's code had at REV are grouped by the change
    (old version, today's version: the DQRec variants share one); for each group the cheapest run that a
    paper-profile sweep enumerates, and that ran on a CPU with this torch, is computed again with
    today's code, exactly as the sweep computes it and with the torch threads it ran with (other thread
    counts round differently), and compared with the cached one: every metric, every sample's rank under
    both protocols and every epoch's validation score bit for bit, every epoch's mean training loss to
    1e-7 relative (with two or more threads its last digits vary between identical runs). Only a group
    whose check agrees is renamed. Each check is logged in ``results/rekey.json`` (the change, the run recomputed,
    its seconds, the runs renamed); a change already checked and agreeing there is not checked again.
    The checkpoint folder of an unfinished run of a checked change (``results/checkpoints/<key>``) is
    renamed too, so the run resumes under today's key.

Both refuse to work if the registry or the evaluator changed since REV (their source is part of every
version).
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import inspect
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dqrec import experiment, registry, sweep  # noqa: E402
from dqrec.evaluate import EVALUATOR_VERSION  # noqa: E402

NOT_SPEC = ("history", "tuning", "machine", "resumed")  # what a run's json holds besides its key's spec
LOG = ROOT / "results" / "rekey.json"
NOT_RESULTS = ("fit_seconds", "eval_seconds", "git_sha")  # a run's rows apart from its results


def at_rev(rev: str, path: Path) -> str:
    return subprocess.run(["git", "show", f"{rev}:{path.relative_to(ROOT).as_posix()}"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


def raw_bytes_version(model: str, rev: str) -> str:
    """The version the code of ``model`` had at ``rev`` under the raw-bytes scheme."""
    digest = hashlib.sha256(f"evaluator-v{EVALUATOR_VERSION}".encode())
    for f in experiment.run_code_files(model):
        digest.update(f.relative_to(ROOT).as_posix().encode() + b"\0" + at_rev(rev, f).encode())
    for obj in (registry.Recommender, registry.fit_tuned):
        digest.update(inspect.getsource(obj).encode())
    return digest.hexdigest()[:12]


def key_of(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:12]


def cached_runs(cache: Path):
    """(path, run json) of every cached run, each checked to be named by the key of its spec."""
    for path in sorted(cache.glob("*.json")):
        run = json.loads(path.read_text())
        if key_of({k: v for k, v in run.items() if k not in NOT_SPEC}) != path.stem.rsplit("_", 1)[1]:
            raise SystemExit(f"{path.name}: its name is not the key of its spec")
        yield path, run


def new_name(path: Path, run: dict, today: str) -> str:
    spec = {k: v for k, v in dict(run, code=today).items() if k not in NOT_SPEC}
    return path.stem[:-len(path.stem.rsplit("_", 1)[1])] + key_of(spec)


def rename(path: Path, run: dict, today: str, dry_run: bool) -> str:
    """Move the run at ``path`` to today's key; returns its new name."""
    new = new_name(path, run, today)
    if not dry_run:
        for suffix in (".csv", ".npz"):
            path.with_suffix(suffix).rename(path.with_name(new + suffix))
        path.with_name(new + ".json").write_text(json.dumps(dict(run, code=today), indent=1, default=str) + "\n")
        path.unlink()
    return new


def update_bench(renamed: dict, dry_run: bool) -> None:
    for bench in (ROOT / "results" / "bench").glob("*.json"):
        text = changed = bench.read_text()
        for old, new in renamed.items():
            changed = changed.replace(old, new)
        if changed != text and not dry_run:
            bench.write_text(changed)


def docstring_rekey(revs, cache: Path, dry_run: bool) -> tuple[dict, int]:
    old_versions, same_text, renamed, stale = {}, {}, {}, 0
    for path, run in cached_runs(cache):
        model = run["model"]
        today = experiment.code_version(model)
        if run["code"] == today:
            continue
        if model not in old_versions:
            old_versions[model] = {raw_bytes_version(model, rev): rev for rev in revs}
        rev = old_versions[model].get(run["code"])
        if rev is None:
            stale += 1
            continue
        if (model, rev) not in same_text:
            same_text[(model, rev)] = experiment.code_digest(model, read=lambda f: at_rev(rev, f)) == today
        if not same_text[(model, rev)]:
            stale += 1
            continue
        renamed[path.stem] = rename(path, run, today, dry_run)
    return renamed, stale


def same_run(path: Path, result) -> str | None:
    """None if ``result`` (rows, ranks, record of a fresh computation) is the cached run at ``path``, bit
    for bit apart from timings; else what differs."""
    res, ranks, record = result
    cached = pd.read_csv(path.with_suffix(".csv"))
    fresh = pd.read_csv(io.StringIO(res.to_csv(index=False))).drop(columns=list(NOT_RESULTS))  # as it is stored
    try:
        pd.testing.assert_frame_equal(fresh, cached.drop(columns=list(NOT_RESULTS))[fresh.columns], check_exact=True,
                                      check_dtype=False)
    except AssertionError as err:
        return f"metrics differ: {err}"
    with np.load(path.with_suffix(".npz")) as saved:
        if set(saved.files) != set(ranks) or any(not np.array_equal(saved[k], ranks[k]) for k in ranks):
            return "per-sample ranks differ"
    # every epoch's validation score exactly; its mean training loss to 1e-7 relative: with 2+ torch threads
    # the logged loss (a threaded reduction) varies in its last digits from one run to the next, weights not
    old, new = json.loads(path.read_text())["history"] or [], record["history"] or []
    if len(old) != len(new) or any(
            {k: v for k, v in a.items() if not k.endswith("_seconds") and k != "loss"}
            != {k: v for k, v in b.items() if not k.endswith("_seconds") and k != "loss"}
            or not np.isclose(a["loss"], b["loss"], rtol=1e-7, atol=0) for a, b in zip(old, new)):
        return "training histories differ"
    return None


def same_machine(run: dict) -> bool:
    """Whether this process can recompute ``run`` bit for bit: it ran on a CPU with this torch (a GPU, or
    another torch, rounds differently); :func:`verified_rekey` uses its number of torch threads too."""
    import torch

    machine = run.get("machine") or {}
    return machine.get("device") == "cpu" and machine.get("torch") == torch.__version__ and "torch_threads" in machine


def verified_rekey(rev: str, cache: Path, dry_run: bool) -> tuple[dict, int]:
    log = json.loads(LOG.read_text()) if LOG.exists() else []
    agreed = {(e["from"], e["to"]) for e in log if e["agrees"]}
    params = experiment.profile_params("paper", progress=False)
    splits = sweep.Splits(None)
    groups, before = {}, {}  # (old, today) -> [(path, run)]
    for path, run in cached_runs(cache):
        model = run["model"]
        today = experiment.code_version(model)
        if model not in before:
            before[model] = experiment.code_digest(model, read=lambda f: at_rev(rev, f))
        if run["code"] != today and run["code"] == before[model]:
            groups.setdefault((run["code"], today), []).append((path, run))
    recipes = {}  # today's file name -> the sweep's Run computing it
    for table in sweep.TABLES.values():
        for r in table(params):
            recipes[experiment.run_key(splits(r, params), r.model, r.seed, r.params(params))] = r
    renamed, stale = {}, 0
    for (old, today), members in groups.items():
        if (old, today) not in agreed:
            ran = [(pd.read_csv(p.with_suffix(".csv")).fit_seconds.iloc[0], p, recipes[new_name(p, run, today)],
                    run["machine"]["torch_threads"])
                   for p, run in members if new_name(p, run, today) in recipes and same_machine(run)]
            if not ran:
                print(f"{old} -> {today}: no run of this change is a sweep's run on this kind of machine; "
                      f"{len(members)} left stale")
                stale += len(members)
                continue
            _, path, recipe, threads = min(ran, key=lambda t: t[0])
            print(f"{old} -> {today}: recomputing {path.name} ({recipe}, {threads} torch threads) ...", flush=True)
            start = time.perf_counter()
            problem = same_run(path, sweep.compute(splits(recipe, params), recipe, params, threads=threads))
            entry = {"from": old, "to": today, "rev": rev, "date": datetime.date.today().isoformat(),
                     "git_sha": experiment.git_sha(), "recomputed": path.name,
                     "seconds": round(time.perf_counter() - start, 1), "agrees": problem is None,
                     "difference": problem, "renamed": []}
            print(f"  {'agrees' if problem is None else 'DIFFERS: ' + problem} ({entry['seconds']} s)", flush=True)
            log.append(entry)
            if not dry_run:
                LOG.write_text(json.dumps(log, indent=1) + "\n")
            if problem is not None:
                stale += len(members)
                continue
        else:
            entry = next(e for e in log if (e["from"], e["to"]) == (old, today) and e["agrees"])
        for path, run in members:
            renamed[path.stem] = rename(path, run, today, dry_run)
            entry["renamed"].append(renamed[path.stem])
        agreed.add((old, today))
        if not dry_run:
            LOG.write_text(json.dumps(log, indent=1) + "\n")
    carry_checkpoints(sweep.checkpoint_folder(cache / "x").parent, recipes, before, agreed, params, splits, dry_run)
    return renamed, stale


def carry_checkpoints(folder: Path, recipes: dict, before: dict, agreed: set, params, splits, dry_run: bool) -> None:
    """Rename the checkpoint folder of an unfinished run (``folder/<key>``) to today's key when its model's code
    change was checked and agreed: the run then resumes instead of starting again. A checkpoint of a change
    not checked (its model has no finished run to recompute) is left, and its run starts afresh."""
    if not folder.is_dir():
        return
    old_names = {}
    for name, r in recipes.items():
        model = r.model
        if (before.get(model), experiment.code_version(model)) in agreed:
            spec = experiment.run_spec(splits(r, params), model, r.seed, r.params(params))
            old_names[name[:-len(name.rsplit("_", 1)[1])] + key_of(dict(spec, code=before[model]))] = name
    for path in sorted(p for p in folder.iterdir() if p.is_dir()):
        if path.name in old_names and not (folder / old_names[path.name]).exists():
            print(f"checkpoint {path.name} -> {old_names[path.name]}")
            if not dry_run:
                path.rename(folder / old_names[path.name])
        elif path.name not in recipes:
            print(f"checkpoint {path.name}: not a run of a checked change; left as it is (that run starts afresh)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--rev", action="append", help="a git revision the runs may have run at (docstring changes)")
    mode.add_argument("--verify", metavar="REV", help="the revision the runs ran at (a change checked by running it)")
    ap.add_argument("--cache", default=str(ROOT / "results" / "runs"))
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    for rev in args.rev or [args.verify]:
        for fixed in ("dqrec/registry.py", "dqrec/evaluate.py"):
            if at_rev(rev, ROOT / fixed) != (ROOT / fixed).read_text():
                raise SystemExit(f"{fixed} changed since {rev}: its source is part of every version; not re-keying")
    cache = Path(args.cache)
    renamed, stale = (docstring_rekey(args.rev, cache, args.dry_run) if args.rev
                      else verified_rekey(args.verify, cache, args.dry_run))
    update_bench(renamed, args.dry_run)
    print(f"{len(renamed)} runs re-keyed, {stale} stale runs left as they are"
          + (" (dry run: nothing written)" if args.dry_run else ""))


if __name__ == "__main__":
    main()

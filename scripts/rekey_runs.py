"""Re-key cached runs whose code changed since they ran only in what it says of itself.

    python scripts/rekey_runs.py --rev 4c13635 [--rev ...] [--cache results/runs] [--dry-run]

A run's key holds the version of the code it ran (:func:`dqrec.experiment.code_version`: the
:func:`~dqrec.experiment.code_text` of its run code files, docstrings and comments left out). Before that,
the version hashed the files' raw bytes, so editing a docstring staled every run of the models importing
the file. For each run in the cache not under today's key, this script looks for a revision REV (of those
given) at which the run's recorded version is the raw-bytes version of its model's run code; if the
:func:`~dqrec.experiment.code_text` of that code at REV equals today's (only docstrings, comments or blank
lines changed since), the run is renamed to today's key: its three files, the json's ``code`` field, and
any reference to its name in ``results/bench/*.json``. Every other run is left as it is (stale: its model
must run again). Refuses to work if the registry or the evaluator changed since REV (their source is part
of every version).
"""
from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dqrec import experiment, registry  # noqa: E402
from dqrec.evaluate import EVALUATOR_VERSION  # noqa: E402

NOT_SPEC = ("history", "tuning", "machine")  # what a run's json holds besides its key's spec


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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", action="append", required=True, help="a git revision the runs may have run at")
    ap.add_argument("--cache", default=str(ROOT / "results" / "runs"))
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    for rev in args.rev:
        for fixed in ("dqrec/registry.py", "dqrec/evaluate.py"):
            if at_rev(rev, ROOT / fixed) != (ROOT / fixed).read_text():
                raise SystemExit(f"{fixed} changed since {rev}: its source is part of every version; not re-keying")
    old_versions, same_text = {}, {}
    renamed, stale = {}, 0
    for path in sorted(Path(args.cache).glob("*.json")):
        run = json.loads(path.read_text())
        model, digest = run["model"], path.stem.rsplit("_", 1)[1]
        spec = {k: v for k, v in run.items() if k not in NOT_SPEC}
        if key_of(spec) != digest:
            raise SystemExit(f"{path.name}: its name is not the key of its spec")
        today = experiment.code_version(model)
        if run["code"] == today:
            continue
        if model not in old_versions:
            old_versions[model] = {raw_bytes_version(model, rev): rev for rev in args.rev}
        rev = old_versions[model].get(run["code"])
        if rev is None:
            stale += 1
            continue
        if (model, rev) not in same_text:
            same_text[(model, rev)] = experiment.code_digest(model, read=lambda f: at_rev(rev, f)) == today
        if not same_text[(model, rev)]:
            stale += 1
            continue
        run["code"] = today
        new = path.stem[:-len(digest)] + key_of({k: v for k, v in run.items() if k not in NOT_SPEC})
        renamed[path.stem] = new
        if not args.dry_run:
            for suffix in (".csv", ".npz"):
                path.with_suffix(suffix).rename(path.with_name(new + suffix))
            path.with_name(new + ".json").write_text(json.dumps(run, indent=1, default=str) + "\n")
            path.unlink()
    for bench in (ROOT / "results" / "bench").glob("*.json"):
        text = bench.read_text()
        changed = text
        for old, new in renamed.items():
            changed = changed.replace(old, new)
        if changed != text and not args.dry_run:
            bench.write_text(changed)
    print(f"{len(renamed)} runs re-keyed, {stale} stale runs left as they are"
          + (" (dry run: nothing written)" if args.dry_run else ""))


if __name__ == "__main__":
    main()

"""One-off: re-key cached runs from the code-hash scheme that hashed evaluate.py's text to the one that
counts its EVALUATOR_VERSION. A run moves only if its recorded code version equals the old scheme's
hash of the code at HEAD (evaluate.py as committed at HEAD, every other file as it is), and its file
name equals the old key of its recorded spec; anything else (runs of older code) is left alone.

    python scripts/migrate_run_keys.py results/runs [more folders]
"""
import hashlib
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dqrec import experiment, registry  # noqa: E402

OLD_EVALUATE = subprocess.run(["git", "show", "HEAD:dqrec/evaluate.py"], cwd=ROOT, capture_output=True,
                              check=True).stdout


def old_code_version(model: str) -> str:
    files = sorted(set(experiment.run_code_files(model)) | {ROOT / "dqrec" / "evaluate.py"})
    digest = hashlib.sha256()
    for f in files:
        text = OLD_EVALUATE if f.name == "evaluate.py" else f.read_bytes()
        digest.update(f.relative_to(ROOT).as_posix().encode() + b"\0" + text)
    for obj in (registry.Recommender, registry.fit_tuned):
        digest.update(inspect.getsource(obj).encode())
    return digest.hexdigest()[:12]


def key(spec: dict) -> str:
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9-]+", "-", spec["model"]).strip("-")
    return f"{spec['dataset']}_{spec['split']}_{safe}_s{spec['seed']}_{digest}"


SPEC_KEYS = ("model", "params", "dataset", "split", "seq_len", "split_seed", "data", "seed", "code")
moved = kept = 0
for folder in map(Path, sys.argv[1:]):
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        spec = {k: record[k] for k in SPEC_KEYS if k in record}
        if spec["model"] not in registry.model_names() or key(spec) != path.stem \
                or spec["code"] != old_code_version(spec["model"]):
            kept += 1
            continue
        spec["code"] = experiment.code_version(spec["model"])
        new = path.with_name(key(spec))
        record["code"] = spec["code"]
        for suffix in (".csv", ".npz"):
            subprocess.run(["git", "mv", "-k", str(path.with_suffix(suffix)), str(new.with_suffix(suffix))], cwd=ROOT)
        new.with_suffix(".json").write_text(json.dumps(record, indent=1, default=str) + "\n")
        subprocess.run(["git", "rm", "-q", str(path)], cwd=ROOT, check=True)
        subprocess.run(["git", "add", str(new.with_suffix(".json"))], cwd=ROOT, check=True)
        moved += 1
print(f"moved {moved} runs, left {kept} (older code or other scheme)")

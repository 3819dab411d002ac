"""Profiles, provenance and results files.

A *profile* is a named set of parameters that every notebook reads from its ``parameters`` cell:
``paper`` (the paper's settings, outputs committed under ``results/``), ``quick`` (the default of
``make book``: minutes on a 2-core CPU) and ``test`` (the notebook checks run by ``make test``).
Only the ``paper`` profile writes to ``results/`` itself; the others write to
``results/<profile>/``, so a quick run never overwrites the committed paper results.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent

PROFILES: dict[str, dict] = {
    "paper": dict(datasets=["ml-1m", "ml-100k", "ml-latest-small"], main_dataset="ml-1m",
                  seeds=[0, 1, 2], epochs=30, patience=3, seq_len=20),
    "quick": dict(datasets=["ml-100k", "ml-latest-small"], main_dataset="ml-100k",
                  seeds=[0], epochs=10, patience=2, seq_len=20),
    "test": dict(datasets=["ml-100k"], main_dataset="ml-100k", seeds=[0], epochs=2, patience=1, seq_len=10),
}


def profile_params(profile: str, **overrides) -> dict:
    """The parameters of ``profile`` with ``overrides`` (a notebook's non-None parameters) applied."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    params = dict(PROFILES[profile], profile=profile)
    params.update({k: v for k, v in overrides.items() if v is not None})
    return params


def results_dir(profile: str) -> Path:
    """``results/`` for the paper profile, ``results/<profile>/`` otherwise (created)."""
    base = Path(os.environ.get("DQREC_RESULTS_DIR", ROOT / "results"))
    path = base if profile == "paper" else base / profile
    path.mkdir(parents=True, exist_ok=True)
    return path


def git_sha() -> str:
    """The commit the code ran at, with ``-dirty`` when the work tree had uncommitted changes."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "dqrec"],
                               cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance(params: dict, wall_seconds: float | None = None, **extra) -> dict:
    """Everything needed to say where a number came from."""
    import numpy
    import torch

    return dict(git_sha=git_sha(), created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), params=params,
                wall_seconds=None if wall_seconds is None else round(wall_seconds, 2),
                python=platform.python_version(), numpy=numpy.__version__, pandas=pd.__version__,
                torch=torch.__version__, machine=f"{platform.machine()}, {os.cpu_count()} cpus", **extra)


def write_table(df: pd.DataFrame, name: str, params: dict, wall_seconds: float | None = None, **extra) -> Path:
    """Write ``results[/<profile>]/<name>.csv`` and its provenance ``<name>.json`` beside it."""
    out = results_dir(params["profile"]) / f"{name}.csv"
    df.to_csv(out, index=False)
    meta = provenance(params, wall_seconds, rows=len(df), **extra)
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return out


def paper_table(name: str) -> pd.DataFrame:
    """One of the paper's transcribed tables (``table1_overall``, ``table2_datasets``, ...)."""
    return pd.read_csv(ROOT / "results" / "paper" / f"{name}.csv")


@contextmanager
def timer():
    """``with timer() as t: ...``; then ``t()`` gives the elapsed seconds."""
    start = time.perf_counter()
    end = None

    def elapsed():
        return (end or time.perf_counter()) - start

    try:
        yield elapsed
    finally:
        end = time.perf_counter()

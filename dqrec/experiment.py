"""Profiles, provenance and results files.

A *profile* is a named set of parameters that every notebook reads from its ``parameters`` cell:
``paper`` (the paper's settings, outputs committed under ``results/``), ``quick`` (the default of
``make book``: minutes on a 2-core CPU) and ``test`` (the notebook checks run by ``make test``).
Only the ``paper`` profile writes to ``results/`` itself; the others write to
``results/<profile>/``, so a quick run never overwrites the committed paper results.
"""
from __future__ import annotations

import functools
import json
import os
import platform
import re
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent

# The paper's hyper-parameters (Section 6.1.4), shared by every profile.
PAPER_HPARAMS = dict(n_layers=4, codebook_size=128, beta=0.25, k=30, k_latent=2)

# Fig. 3: the values of K, J and L tried one at a time around the paper's setting (L must divide d=64).
SENSITIVITY_GRID = {"k": [5, 10, 30, 100], "codebook_size": [16, 64, 128, 512], "n_layers": [1, 2, 4, 8, 16]}

# Table 1's models, in its row order: every profile's default ``table1_models`` (a new baseline is added
# here, or to one profile's list, and every sweep, notebook and script of Table 1 runs it).
MODEL_NAMES = ("DQRec", "DualTower", "MF-BPR", "EASE", "ItemKNN", "MostPopular")
# The paper's Table 1 baselines by registry name (LLMRec is not run: dqrec.baselines.NOT_RUN says why).
# The paper profile lists them all; a run not in the cache yet shows as missing (notebook 04, missing="skip").
PAPER_BASELINES = ("NCF", "NGCF", "LightGCN", "HCCF", "SimRec", "BERT4Rec", "CL4SRec", "DuoRec", "ICLRec", "MAERec",
                   "VQRec", "SASRec")

PROFILES: dict[str, dict] = {
    "paper": dict(PAPER_HPARAMS, table1_models=list(MODEL_NAMES + PAPER_BASELINES),
                  datasets=["ml-1m", "ml-100k", "ml-latest-small"], main_dataset="ml-1m",
                  seeds=[0, 1, 2], epochs=200, patience=5, seq_len=20, representation_epochs=3,
                  ablation_seeds={"ml-1m": [0, 1, 2], "ml-100k": [0, 1, 2]}, ablation_splits=["temporal"],
                  loss_runs={"ml-100k": {"temporal": [0, 1, 2]}, "ml-1m": {"temporal": [0], "random": [0]}},
                  sensitivity_dataset="ml-1m", sensitivity_seeds=[0, 1, 2], sensitivity_grid=SENSITIVITY_GRID,
                  forensics_datasets=["ml-100k", "ml-1m"], forensics_seeds=[0],
                  forensics_eval_seeds={"ml-100k": [0, 1, 2], "ml-1m": [0]},
                  forensics_models=["MostPopular", "EASE", "DualTower", "DQRec"], forensics_compute=False,
                  scheme_runs={"ml-100k": {"temporal": [0]}}, scheme_models=["SASRec", "VQRec"],
                  patience_runs={"ml-100k": {"temporal": [0]}}, patience_check=20,
                  patience_models=["DQRec", "DualTower", "MF-BPR", "NCF", "NGCF", "LightGCN", "HCCF", "SimRec",
                                   "SASRec", "BERT4Rec", "CL4SRec", "MAERec", "VQRec"]),
    "quick": dict(PAPER_HPARAMS, table1_models=list(MODEL_NAMES), datasets=["ml-100k"], main_dataset="ml-100k",
                  seeds=[0], epochs=200, patience=3, seq_len=20, representation_epochs=3,
                  ablation_seeds={"ml-100k": [0]}, ablation_splits=["temporal"],
                  loss_runs={"ml-100k": {"temporal": [0]}},
                  sensitivity_dataset="ml-100k",
                  sensitivity_seeds=[0], sensitivity_grid={"k": [5, 30], "codebook_size": [16, 128], "n_layers": [2, 4]},
                  forensics_datasets=["ml-100k"], forensics_seeds=[0], forensics_eval_seeds=[0],
                  forensics_models=["MostPopular", "EASE", "DualTower", "DQRec"], forensics_compute=True,
                  scheme_runs={"ml-100k": {"temporal": [0]}}, scheme_models=[],
                  patience_runs={"ml-100k": {"temporal": [0]}}, patience_check=20, patience_models=[]),
    "test": dict(PAPER_HPARAMS, table1_models=list(MODEL_NAMES), datasets=["ml-100k"], main_dataset="ml-100k",
                 seeds=[0], epochs=2, patience=1, seq_len=10, representation_epochs=1, ablation_seeds={"ml-100k": [0]},
                 ablation_splits=["temporal"], loss_runs={"ml-100k": {"temporal": [0]}},
                 sensitivity_dataset="ml-100k", sensitivity_seeds=[0],
                 sensitivity_grid={"k": [5, 30], "codebook_size": [16, 128], "n_layers": [2, 4]},
                 forensics_datasets=["ml-100k"], forensics_seeds=[0], forensics_eval_seeds=[0],
                 forensics_models=["MostPopular"], forensics_compute=True,
                 scheme_runs={"ml-100k": {"temporal": [0]}}, scheme_models=[],
                 patience_runs={"ml-100k": {"temporal": [0]}}, patience_check=20, patience_models=[]),
}


def profile_params(profile: str, **overrides) -> dict:
    """The parameters of ``profile`` with ``overrides`` (a notebook's non-None parameters) applied,
    checked (:func:`check_params`) before anything runs or is written."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    params = dict(PROFILES[profile], profile=profile)
    params.update({k: v for k, v in overrides.items() if v is not None})
    return check_params(params)


POSITIVE_INTS = ("epochs", "patience", "patience_check", "seq_len", "representation_epochs", "n_layers", "codebook_size", "k")


def check_params(params: dict) -> dict:
    """Types and ranges of profile parameters, in the words of a papermill ``-p`` user. A single dataset
    or seed given as a string or number becomes a one-element list."""
    from .data import DATASETS

    def fail(name, want):
        raise ValueError(f"parameter {name}={params[name]!r}: {want}")

    for name in ("datasets", "seeds"):
        if name in params and isinstance(params[name], (str, int)):
            params[name] = [params[name]]
    for name in [n for n in ("datasets",) if n in params] + [n for n in ("main_dataset", "sensitivity_dataset")
                                                             if n in params]:
        names = params[name] if isinstance(params[name], list) else [params[name]]
        unknown = [n for n in names if n not in DATASETS]
        if unknown or not names:
            fail(name, f"unknown dataset(s) {unknown}; choose from {sorted(DATASETS)}")
    if "seeds" in params and (not params["seeds"] or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0
                                                              for x in params["seeds"])):
        fail("seeds", "a list of non-negative integers, e.g. [0, 1, 2]")
    for name in POSITIVE_INTS:
        value = params.get(name)
        if name in params and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            fail(name, "a positive integer")
    if "k_latent" in params and (not isinstance(params["k_latent"], int) or params["k_latent"] < 0):
        fail("k_latent", "a non-negative integer")
    if "beta" in params and not (isinstance(params["beta"], (int, float)) and params["beta"] >= 0):
        fail("beta", "a non-negative number")
    return params


def results_dir(profile: str) -> Path:
    """``results/`` for the paper profile, ``results/<profile>/`` otherwise (created, and checked to be
    writable so that a read-only folder fails before hours of fitting, not after)."""
    base = Path(os.environ.get("DQREC_RESULTS_DIR", ROOT / "results"))
    path = base if profile == "paper" else base / profile
    check_writable(path)
    return path


def check_writable(path: Path) -> Path:
    """Create ``path`` and prove a file can be written there; a clear PermissionError otherwise."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise PermissionError(f"cannot write results to {path} ({err.strerror}); make it writable or set "
                              "DQREC_RESULTS_DIR to a writable folder") from err
    return Path(path)


@functools.lru_cache(maxsize=None)
def git_sha() -> str:
    """The commit of the code this process loaded, ``-dirty`` if ``dqrec/`` had uncommitted changes.

    Read once per process, so a long sweep keeps naming the code it runs even if the tree changes.
    ``DQREC_GIT_SHA`` overrides it where the git metadata does not describe the working tree (a copy
    of the tree sent to another machine).
    """
    if os.environ.get("DQREC_GIT_SHA"):
        return os.environ["DQREC_GIT_SHA"]
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


PAPER_DATASETS = {"MovieLens": "ml-1m", "Book": "amazon-books-2023", "Books": "amazon-books-2023",
                  "Netflix": "netflix"}


def table2_beside_paper(stats: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 2 rows next to ours (``Dataset.stats`` rows), all ratings and positives."""
    ours = stats.set_index(["dataset", "subset"])
    rows = []
    for _, p in paper_table("table2_datasets").iterrows():
        name = PAPER_DATASETS[p.dataset]
        row = dict(dataset=p.dataset, paper_users=p.users, paper_items=p["items"],
                   paper_interactions=p.interactions, paper_density=p.density_percent)
        subsets = [s for s in ("all", "positive") if (name, s) in ours.index]
        if not subsets:
            rows.append(dict(row, ours=f"{name}: not available here"))
        for subset in subsets:
            o = ours.loc[(name, subset)]
            rows.append(dict(row, ours=f"{name} ({subset})", users=o.users, items=o["items"],
                             interactions=o.interactions, density=round(o.density_percent, 2)))
    cols = ["dataset", "ours", "paper_users", "users", "paper_items", "items", "paper_interactions", "interactions",
            "paper_density", "density"]
    return pd.DataFrame(rows).reindex(columns=cols)


def history_lengths(split) -> pd.DataFrame:
    """Per part of the split: the share of samples whose user sequence S_u is empty, and full."""
    n = (split.user_seq >= 0).sum(1)
    df = pd.DataFrame({"part": split.samples.part.to_numpy(), "empty": n == 0, "full": n == split.user_seq.shape[1]})
    return df.groupby("part").mean().reindex(["train", "valid", "test"])


def mean_sd_table(summary: pd.DataFrame, dataset: str, split: str, protocol: str, models=None) -> pd.DataFrame:
    """One Table-1 block: models x metric@k cells formatted 'mean ± sd' (from :func:`summarise`); a
    single run (one seed, or a deterministic model) shows its value alone."""
    s = summary[(summary.dataset == dataset) & (summary.split == split) & (summary.protocol == protocol)]
    cell = s.assign(col=s.metric + "@" + s.k.astype(str),
                    txt=s["mean"].map("{:.4f}".format) + np.where(s["count"] > 1, " ± " + s["std"].map("{:.4f}".format), ""))
    table = cell.pivot(index="model", columns="col", values="txt")
    order = [f"{m}@{k}" for m in ("Recall", "NDCG") for k in sorted(s.k.unique())]  # not alphabetical
    table = table.reindex(columns=[c for c in order if c in table.columns])
    return table.reindex(models) if models is not None else table


def ablation_changes(results: pd.DataFrame, protocol: str = "in_batch", metric: str = "Recall",
                     k: int = 5) -> pd.DataFrame:
    """Relative change of each Table 3 variant against full DQRec of the same seed, ours and the paper's.

    results: run rows (:func:`run_models`) holding "DQRec" and "DQRec <variant>" models. Returns long
    rows (source, dataset, split, variant, seed, value, change) with change = value / DQRec - 1; the
    paper's rows have source "paper", split "paper" and seed -1.
    """
    sel = results[(results.protocol == protocol) & (results.metric == metric) & (results.k == k)
                  & results.model.isin(ABLATION_MODELS)]
    full = sel[sel.model == "DQRec"].set_index(["dataset", "split", "seed"]).value
    ours = sel.assign(variant=sel.model.str.removeprefix("DQRec").str.strip().replace("", "DQRec"),
                      change=sel.value.to_numpy() / full.reindex(pd.MultiIndex.from_frame(
                          sel[["dataset", "split", "seed"]])).to_numpy() - 1, source="ours")
    paper = paper_table("table3_ablation")
    paper = paper[paper.metric == f"{metric}@{k}"]
    base = paper[paper.variant == "DQRec"].set_index("dataset").value
    paper = paper.assign(change=paper.value / paper.dataset.map(base) - 1, source="paper", split="paper", seed=-1)
    cols = ["source", "dataset", "split", "variant", "seed", "value", "change"]
    out = pd.concat([ours[cols], paper[cols]], ignore_index=True)
    order = {v: i for i, v in enumerate(list(ABLATIONS) + ["DQRec"])}
    return out.sort_values(["source", "dataset", "split", "variant"], key=lambda c: c.map(order) if c.name == "variant"
                           else c, kind="stable").reset_index(drop=True)


def ablation_table(changes: pd.DataFrame) -> pd.DataFrame:
    """Variants x (source, dataset, split): 'mean ± sd (change %)' from :func:`ablation_changes`; a single
    seed reads 'value (1 seed) (change %)', a paper cell 'value (change %)'."""
    g = changes.groupby(["variant", "source", "dataset", "split"], sort=False)
    stats = g.agg(mean=("value", "mean"), sd=("value", "std"), n=("value", "size"), change=("change", "mean"))
    spread = np.where(stats.index.get_level_values("source") == "paper", "",
                      np.where(stats["n"] > 1, " ± " + stats["sd"].map("{:.4f}".format), " (1 seed)"))
    text = stats["mean"].map("{:.4f}".format) + spread + " (" + (100 * stats["change"]).map("{:+.1f}%".format) + ")"
    table = text.unstack(["source", "dataset", "split"])
    return table.reindex(list(ABLATIONS) + ["DQRec"])


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


# --------------------------------------------------------------------------------------------
# Running models
# --------------------------------------------------------------------------------------------

# Table 3 (Section 6.3): each ablation is DQRec with parts of Eq. 20 switched off; as a model name,
# "DQRec <variant>" (e.g. "DQRec w/o Lat."), in the paper's row order.
ABLATIONS = {
    "w/o Feat.Aug. User": dict(user_feature_aug=False),
    "w/o Feat.Aug. Item": dict(item_feature_aug=False),
    "w/o Feat.Aug. All": dict(user_feature_aug=False, item_feature_aug=False),
    "w/o Lat.": dict(latent_exploration=False),
    "w/o Relat.Aug. User": dict(user_linkage_aug=False),
    "w/o Relat.Aug. Item": dict(item_linkage_aug=False),
    "w/o Relat.Aug. All": dict(user_linkage_aug=False, item_linkage_aug=False),
}
ABLATION_MODELS = tuple(f"DQRec {v}" for v in ABLATIONS) + ("DQRec",)


# Models whose hyper-parameters Table 1 tunes on validation (Ferrari Dacrema et al., RecSys 2019: an
# untuned baseline is no comparison): EASE's ridge lambda around Steck's published 200-500, ItemKNN's
# neighbourhood size. Each grid point is fitted on train and scored by the validation criterion.
TUNING_GRIDS = {"EASE": {"l2": [50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0]},
                "ItemKNN": {"k": [10, 20, 50, 100, 200, 500]}}

# Profile parameters that are constructor arguments of the models (a model takes those it accepts).
MODEL_PARAMS = ("epochs", "patience", "representation_epochs", "n_layers", "codebook_size", "beta", "k", "k_latent", "precision",
                "loss", "progress", "device", "train_on")


# DQRec's own hyper-parameters among MODEL_PARAMS (the paper's L, J, beta, K, K' and DQ-VAE's epochs): only
# DQRec and its variants take them from a profile; a baseline with a parameter of the same name (LightGCN's,
# NGCF's, HCCF's propagation depth n_layers, NCF's MLP depth) keeps its authors' default.
DQREC_PARAMS = (*PAPER_HPARAMS, "representation_epochs")


def model_kwargs(name: str, seed: int, params: dict, **overrides) -> dict:
    """The constructor arguments model ``name`` takes from a profile's ``params`` (plus ``seed``): the
    training settings for every model, :data:`DQREC_PARAMS` for DQRec models only; a parameter a tuned
    model searches over is never taken from the profile (ItemKNN's k is not K)."""
    import inspect

    from .model import DQRec
    from .registry import make_model, model_names

    if name not in model_names():
        raise ValueError(f"unknown model {name!r}; choose one of {model_names()}")
    cls = type(make_model(name))
    accepted = inspect.signature(cls.__init__).parameters
    tuned = TUNING_GRIDS.get(name, {}) if params.get("tune", True) else {}
    own = set(MODEL_PARAMS) if issubclass(cls, DQRec) else set(MODEL_PARAMS) - set(DQREC_PARAMS)
    kw = {k: params[k] for k in MODEL_PARAMS if k in params and k in accepted and k not in tuned and k in own}
    if "seed" in accepted:
        kw["seed"] = seed
    return {**kw, **params.get("model_overrides", {}), **overrides}


def _check_like_default(what: str, value, default) -> None:
    """ValueError unless ``value`` has the type of ``default``: a bool for a bool, an int for an int, a
    number for a float (never a bool for a number), anything for a default of None or none at all."""
    import inspect

    if default is None or default is inspect.Parameter.empty:
        return
    if isinstance(default, bool):
        ok, want = isinstance(value, bool), "true or false"
    elif isinstance(default, (int, float)):
        ok = isinstance(value, int if isinstance(default, int) else (int, float)) and not isinstance(value, bool)
        want = "an integer" if isinstance(default, int) else "a number"
    else:
        ok, want = isinstance(value, type(default)), type(default).__name__
    if not ok:
        raise ValueError(f"{what}={value!r}: want {want} like its default {default!r}")


def apply_overrides(model: str, params: dict, overrides: dict) -> dict:
    """``params`` with a run's ``overrides`` (``--set NAME=VALUE``) applied, each checked: a profile
    parameter this run uses (seq_len, tune; a parameter of :data:`MODEL_PARAMS` that ``model`` takes from
    the profile) replaces the profile's value; any other constructor parameter of ``model`` (SASRec's
    ``n_heads``, LightGCN's ``n_layers``) goes to the model as given (``params["model_overrides"]``). A
    name the run would ignore, or a value of the wrong type, is an error: a run labelled with a setting
    it did not use would be read back as if it had."""
    import inspect

    from .registry import make_model

    if not overrides:
        return dict(params)
    taken = set(model_kwargs(model, 0, {**params, **overrides})) - {"seed"}
    tuned = TUNING_GRIDS.get(model, {}) if params.get("tune", True) else {}
    signature = inspect.signature(type(make_model(model)).__init__).parameters
    profile_only = {"seq_len", "tune"}  # what else of a profile shapes a single run: the split, the grid search
    out, direct = dict(params), dict(params.get("model_overrides", {}))
    for name, value in overrides.items():
        if name in taken or name in profile_only:
            out[name] = value
        elif name in tuned:
            raise ValueError(f"{model}'s {name} is chosen on validation from {tuned[name]} (TUNING_GRIDS); "
                             f"set tune=false to fix it")
        elif name in signature and name not in ("self", "seed"):
            _check_like_default(f"{model} parameter {name}", value, signature[name].default)
            direct[name] = value
        else:
            hint = "the seed is --seed" if name == "seed" else \
                f"{model} takes {sorted(set(signature) - {'self', 'seed', 'progress'})}, and the profile {sorted(taken | profile_only)}"
            raise ValueError(f"{model} would ignore {name}={value!r}: {hint}")
    if direct:
        out["model_overrides"] = direct
    return check_params(out)


def fit_model(name: str, split, seed: int, params: dict, **overrides):
    """Fit model ``name`` (a registry name) on ``split.train``; early stopping on ``split.valid`` where
    the model trains, a validation grid search where :data:`TUNING_GRIDS` names it."""
    import inspect

    from .evaluate import validation_criterion
    from .registry import fit_tuned, make_model

    kw = model_kwargs(name, seed, params, **overrides)
    validate = validation_criterion(split, seed)
    if name in TUNING_GRIDS and params.get("tune", True):
        return fit_tuned(name, split, TUNING_GRIDS[name], validate, **kw)
    model = make_model(name, **kw)
    return model.fit(split, validate=validate) if "validate" in inspect.signature(model.fit).parameters \
        else model.fit(split)


# A run's numbers depend on its model's module and every dqrec module that module imports (found by
# reading the imports, transitively), plus the evaluator. Their content is part of the run key, so a
# cached run computed by other code is never read back, while a change to another model, to the
# tables, plots or notebooks leaves it valid. Not counted: data.py (what a model sees of the data is
# the split's fingerprint), experiment.py, plots.py, casestudy.py, package __init__ files, of
# registry.py everything but the Recommender base and the validation grid search, and evaluate.py,
# which counts by its EVALUATOR_VERSION (pinned by a golden test) so that evaluator options can be added.
NOT_RUN_CODE = {"data.py", "experiment.py", "plots.py", "casestudy.py", "registry.py", "evaluate.py", "__init__.py"}


def _dqrec_imports(path: Path) -> set[Path]:
    """dqrec source files that ``path`` imports anywhere (top level or inside functions)."""
    import ast

    package = ROOT / "dqrec"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = path.parent
                for _ in range(node.level - 1):
                    base = base.parent
                parts = (node.module or "").split(".") if node.module else []
            elif (node.module or "").split(".")[0] == "dqrec":
                base, parts = ROOT, node.module.split(".")
            else:
                continue
            targets = [parts + [alias.name] for alias in node.names] + [parts]
        elif isinstance(node, ast.Import):
            base, targets = ROOT, [a.name.split(".") for a in node.names if a.name.split(".")[0] == "dqrec"]
        else:
            continue
        for t in targets:
            stem = base.joinpath(*t) if t else base
            for candidate in (stem.with_suffix(".py"), stem / "__init__.py"):
                if candidate.is_file() and package in candidate.parents:
                    found.add(candidate)
    return found


def run_code_files(model: str) -> list[Path]:
    """The source files model ``model``'s results depend on (see :data:`NOT_RUN_CODE`)."""
    import inspect

    from .registry import make_model

    todo, seen = [Path(inspect.getfile(type(make_model(model))))], set()
    while todo:
        path = todo.pop()
        if path in seen or path.name in NOT_RUN_CODE:
            continue
        seen.add(path)
        todo.extend(_dqrec_imports(path))
    return sorted(seen)


def code_text(source: str) -> str:
    """Python ``source`` as far as it can change a result: docstrings and comments blanked out, trailing
    spaces and blank lines dropped (so that editing what the code says of itself never stales a run)."""
    import ast
    import io
    import tokenize

    lines = source.splitlines()

    def column(line: int, byte: int) -> int:  # ast counts columns in UTF-8 bytes, tokenize in characters
        return len(lines[line - 1].encode()[:byte].decode())

    spans = []
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                spans.append(((first.lineno, column(first.lineno, first.col_offset)),
                              (first.end_lineno, column(first.end_lineno, first.end_col_offset))))
    spans += [(t.start, t.end) for t in tokenize.generate_tokens(io.StringIO(source).readline)
              if t.type == tokenize.COMMENT]
    starts = np.cumsum([0] + [len(line) + 1 for line in lines])  # offset of each line in "\n".join(lines)
    chars = list("\n".join(lines))
    for (l0, c0), (l1, c1) in spans:  # ast and tokenize count lines from 1 and columns in characters
        for i in range(starts[l0 - 1] + c0, starts[l1 - 1] + c1):
            if chars[i] != "\n":
                chars[i] = " "
    return "\n".join(line.rstrip() for line in "".join(chars).splitlines() if line.strip())


def code_digest(model: str, read=lambda path: path.read_text()) -> str:
    """sha256 (12 hex) of :func:`code_text` of each of :func:`run_code_files` (``read(path)``: its source),
    the evaluator's version and the registry's Recommender and fit_tuned."""
    import hashlib
    import inspect

    from . import registry
    from .evaluate import EVALUATOR_VERSION

    digest = hashlib.sha256(f"evaluator-v{EVALUATOR_VERSION};code-text".encode())
    for f in run_code_files(model):
        digest.update(f.relative_to(ROOT).as_posix().encode() + b"\0" + code_text(read(f)).encode())
    for obj in (registry.Recommender, registry.fit_tuned):
        digest.update(code_text(inspect.getsource(obj)).encode())
    return digest.hexdigest()[:12]


@functools.lru_cache(maxsize=None)
def code_version(model: str) -> str:
    """The version of the code model ``model``'s results depend on (:func:`code_digest`), read once per
    process, so a long sweep keys every run with the code it started with."""
    return code_digest(model)


def split_fingerprint(split) -> str:
    """sha256 (12 hex) of what a model sees of a split: samples, sequences and side features."""
    import hashlib

    if "fingerprint" not in split.params:
        digest = hashlib.sha256()
        for arr in (split.samples[["user", "item", "timestamp"]].to_numpy(np.int64), split.samples.part.to_numpy(str),
                    split.user_seq, split.item_seq, split.user_features.categorical, split.user_features.multi_hot,
                    split.item_features.categorical, split.item_features.multi_hot):
            digest.update(np.ascontiguousarray(arr).tobytes())
        if tuple(split.train_parts) != ("train",):  # a forensic split that fits on more than train
            digest.update(("train_parts:" + ",".join(split.train_parts)).encode())
        split.params["fingerprint"] = digest.hexdigest()[:12]
    return split.params["fingerprint"]


def run_spec(split, model: str, seed: int, params: dict, cell: dict | None = None) -> dict:
    """Everything that shapes a run's result: model and every constructor parameter, data, seed, code;
    ``cell``: the forensic settings of a protocol-forensics run (:mod:`dqrec.forensics`), absent otherwise."""
    from .registry import make_model

    kw = model_kwargs(model, seed, params)
    model_params = {k: v for k, v in make_model(model, **kw).get_params().items() if k not in ("progress", "device")}
    if model in TUNING_GRIDS and params.get("tune", True):
        model_params["tuning_grid"] = TUNING_GRIDS[model]
    spec = dict(model=model, params=model_params, dataset=split.name, split=split.kind, seq_len=split.params["seq_len"],
                split_seed=split.params["seed"], data=split_fingerprint(split), seed=seed, code=code_version(model))
    return spec if cell is None else dict(spec, forensics=cell)


def run_key(split, model: str, seed: int, params: dict, cell: dict | None = None) -> str:
    """A file name that changes whenever anything that shapes the run's result changes."""
    import hashlib

    spec = run_spec(split, model, seed, params, cell)
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9-]+", "-", model).strip("-")  # "DQRec w/o Lat." -> "DQRec-w-o-Lat"
    return f"{split.name}_{split.kind}_{safe}_s{seed}_{digest}"


RUN_COLUMNS = ["dataset", "split", "protocol", "model", "metric", "k", "seed", "value", "n_samples", "fit_seconds",
               "eval_seconds", "epochs_run", "best_epoch", "stopped_by", "tuned", "git_sha"]


RUN_ROWS = 2 * 2 * 3  # protocols x metrics (Recall, NDCG) x k in (5, 10, 20): what evaluate() returns


def _atomic_write(path: Path, write) -> None:
    """``write(tmp_path)`` then rename onto ``path``: a killed process never leaves half a file, and two
    processes (two sweep drivers, on one host or on hosts sharing the folder) never write the same
    temporary file."""
    import socket
    import uuid

    tmp = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_cached_run(path: Path, n_samples: int, n_rows: int = RUN_ROWS, columns=RUN_COLUMNS):
    """The rows and ranks of a cached run, or None (with a warning naming the file) if it is unusable:
    missing ``columns``, not ``n_rows`` rows, non-finite values, another test set's size, unreadable ranks."""
    import warnings

    csv, npz = path.with_suffix(".csv"), path.with_suffix(".npz")
    if not (csv.exists() and npz.exists()):
        return None
    try:
        res = pd.read_csv(csv)
        with np.load(npz) as f:
            ranks = {k: f[k] for k in f.files}
        problem = (f"columns {sorted(set(columns) - set(res.columns))} missing" if set(columns) - set(res.columns)
                   else f"{len(res)} rows instead of {n_rows}" if len(res) != n_rows
                   else "non-finite or out-of-range metric values" if not np.isfinite(res.value).all()
                   or not res.value.between(0, 1).all()
                   else f"{int(res.n_samples.iloc[0])} test samples, this test split has {n_samples}"
                   if (res.n_samples != n_samples).any()
                   else "ranks do not cover the test samples" if any(len(r) != n_samples for r in ranks.values())
                   else None)
    except Exception as err:  # an unreadable or truncated file of any kind
        problem = f"unreadable ({type(err).__name__}: {err})"
    if problem:
        warnings.warn(f"ignoring the cached run {csv}: {problem}; it is recomputed", RuntimeWarning, stacklevel=3)
        return None
    return res, ranks


def is_deterministic(name: str) -> bool:
    """A model that takes no ``seed`` (EASE, ItemKNN, MostPopular) gives the same run for every seed:
    sweeps run it once, with the first seed."""
    import inspect

    from .registry import make_model

    return "seed" not in inspect.signature(type(make_model(name)).__init__).parameters


def compute_run(split, name: str, seed: int, params: dict):
    """Fit model ``name`` on ``split`` and test it under both protocols: (rows, per-sample ranks, record),
    the rows in :data:`RUN_COLUMNS`, the record what the run's ``.json`` keeps beside :func:`run_spec`
    (training history, tuning points, machine)."""
    from .evaluate import evaluate

    with timer() as fit_time:
        model = fit_model(name, split, seed, params)
    with timer() as eval_time:
        res, sample_ranks = evaluate(model.scorer("test"), split.test, split.known(), split.n_items,
                                     seed=seed, progress=False, return_ranks=True)
    trained = model.trainer_.summary() if hasattr(model, "trainer_") else {}
    res = res.assign(dataset=split.name, split=split.kind, model=name, seed=seed,
                     fit_seconds=round(fit_time(), 2), eval_seconds=round(eval_time(), 2),
                     epochs_run=trained.get("epochs_run", 0), best_epoch=trained.get("best_epoch", 0),
                     stopped_by=trained.get("stopped_by", "closed form"),
                     tuned=_tuned_point(model), git_sha=git_sha())
    record = dict(history=model.trainer_.history_ if hasattr(model, "trainer_") else None,  # the epoch log
                  tuning=getattr(model, "tuning_", None), machine=machine(model))
    return res[RUN_COLUMNS], sample_ranks, record


def write_run(path: Path, spec: dict, res: pd.DataFrame, sample_ranks: dict, record: dict) -> None:
    """Store a run as ``path``.json (``spec`` and ``record``), .npz (ranks) and .csv (rows), each file
    atomically and the .csv last: a run counts as cached (:func:`read_cached_run`) only once all are whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps(dict(spec, **record), indent=1, default=str) + "\n"
    _atomic_write(path.with_suffix(".json"), lambda p: p.write_text(meta))
    _atomic_write(path.with_suffix(".npz"), lambda p: np.savez_compressed(open(p, "wb"), **sample_ranks))
    _atomic_write(path.with_suffix(".csv"), lambda p: res.to_csv(p, index=False))


def run_models(split, models, seeds, params: dict, progress: bool = True, ranks: dict | None = None,
               cache: Path | None = None) -> pd.DataFrame:
    """Fit and test every (model, seed) on one prepared ``split``, serially (:func:`dqrec.sweep.execute`
    with one split); long format with both protocols, the wall time of each run and how training ended
    (epochs run, best epoch, ``patience`` or ``max_epochs``). A model without a seed runs once.

    ranks: if a dict is given, ``ranks[(dataset, split, model)]`` receives the first seed's per-sample
        ranks under each protocol (for plots relating the two protocols).
    cache: a folder where each run's rows and ranks are stored under :func:`run_key`; a run whose
        file exists and passes :func:`read_cached_run` is read instead of recomputed, so an interrupted
        sweep resumes where it stopped. Files are written atomically.
    """
    from . import sweep

    runs = sweep.product(params, [split.name], [split.kind], models, seeds)
    out = sweep.execute(runs, params, cache=cache, splits={(split.name, split.kind): split}, progress=progress,
                        log=None)
    if ranks is not None:
        ranks.update(out.ranks)
    return out.results[RUN_COLUMNS]


def machine(model=None) -> dict:
    """Where a run was computed: CPU count, the model's torch device (and GPU name), library versions."""
    import torch

    device = str(getattr(model, "device_", "cpu"))
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else None
    return dict(cpus=os.cpu_count(), device=device, gpu=gpu, torch=torch.__version__, torch_threads=torch.get_num_threads(),
                python=platform.python_version(), numpy=np.__version__)


def run_machines(cache: Path, results: pd.DataFrame) -> pd.DataFrame:
    """Where the runs of ``results`` were computed, per (dataset, split, model), from the run files in
    ``cache`` written by the current code (:func:`code_version`)."""
    rows = []
    for path in Path(cache).glob("*.json"):
        spec = json.loads(path.read_text())
        if spec.get("code") != code_version(spec["model"]):
            continue
        m = spec.get("machine") or {}
        where = (f"{m['gpu']} ({m['cpus']} cpus)" if m.get("gpu") else f"cpu ({m['cpus']} cpus)") if m else "not recorded"
        rows.append(dict(dataset=spec["dataset"], split=spec["split"], model=spec["model"], seed=spec["seed"],
                         computed_on=where))
    runs = results[["dataset", "split", "model", "seed"]].drop_duplicates()
    found = runs.merge(pd.DataFrame(rows, columns=["dataset", "split", "model", "seed", "computed_on"]), how="left")
    return (found.fillna({"computed_on": "not recorded"}).groupby(["dataset", "split", "model"], sort=False)
            .computed_on.agg(lambda s: "; ".join(sorted(set(s)))).reset_index())


def _tuned_point(model) -> str:
    """'l2=200.0' for a model chosen by :func:`dqrec.registry.fit_tuned`, '' otherwise."""
    grid = TUNING_GRIDS.get(type(model).__name__, {}) if hasattr(model, "tuning_") else {}
    return ", ".join(f"{k}={getattr(model, k)}" for k in grid)


def epoch_train_seconds(history: list[dict]) -> list[float]:
    """Seconds of each epoch of a Trainer history spent training (data, forward, backward, optimizer)."""
    return [sum(h[f"{k}_seconds"] for k in ("data", "forward", "backward", "optimizer")) for h in history]


def cached_run_epochs(name: str, split, seed: int = 0, profile: str = "paper") -> dict | None:
    """The per-epoch seconds of the cached run of ``name`` on ``split`` under ``profile`` (None if it is
    not cached): the median over its epochs of the training seconds and of validation, its epochs, its file
    name, its parameters and the machine it ran on."""
    params = profile_params(profile)
    key = run_key(split, name, seed, params)
    path = results_dir(profile) / "runs" / f"{key}.json"
    if not path.exists():
        return None
    run = json.loads(path.read_text())
    hist = run["history"]
    return dict(model=name, dataset=split.name, split=split.kind, epochs=len(hist), run=key,
                seconds_per_epoch=float(np.median(epoch_train_seconds(hist))),
                validation_seconds=float(np.median([h["validation_seconds"] for h in hist])),
                params=run["params"], run_machine=run.get("machine"))


def training_summary(results: pd.DataFrame) -> pd.DataFrame:
    """How each model's runs ended, per (dataset, split, model): runs, epochs run (mean, range), best
    epoch (mean), runs stopped by validation, and the tuned hyper-parameters chosen."""
    runs = results.drop_duplicates(["dataset", "split", "model", "seed"])
    g = runs.groupby(["dataset", "split", "model"], sort=False)
    out = g.agg(runs=("seed", "size"), epochs_mean=("epochs_run", "mean"), epochs_min=("epochs_run", "min"),
                epochs_max=("epochs_run", "max"), best_epoch_mean=("best_epoch", "mean"),
                stopped_by_validation=("stopped_by", lambda s: int((s == "patience").sum())),
                tuned=("tuned", lambda s: "; ".join(sorted(set(s.fillna("").astype(str)) - {""}))))
    return out.reset_index()


def run_minutes(results: pd.DataFrame, models=None, by=("dataset", "split")) -> pd.DataFrame:
    """What one run cost where it ran: fit + test-evaluation minutes, mean over the runs of each model
    (rows, in ``models``' order) and cell, the values of the ``by`` columns joined by spaces (columns;
    "dataset split" by default, so the mean is over seeds); empty where a model has no run."""
    runs = results.drop_duplicates(["dataset", "split", "model", "seed"])
    runs = runs.assign(minutes=(runs.fit_seconds + runs.eval_seconds) / 60,
                       cell=runs[list(by)].astype(str).apply(" ".join, axis=1))
    table = runs.pivot_table(index="model", columns="cell", values="minutes", aggfunc="mean", sort=False)
    return table.reindex(index=list(models or dict.fromkeys(runs.model)), columns=list(dict.fromkeys(runs.cell)))


SETTINGS_SHOWN_ELSEWHERE = ("epochs", "patience", "seed", "progress", "device")


def model_settings(models, params: dict) -> pd.DataFrame:
    """The constructor parameters each of ``models`` runs with under ``params`` (what its run key holds, less
    the training cap, patience and seed, which are the profile's for every model): one row per model,
    ``settings`` "name=value, ...", and ``from_profile`` the names the profile set (the rest are the
    model's own defaults, from its authors; see each module's docstring for the sources)."""
    from .registry import make_model

    rows = []
    for name in models:
        kw = model_kwargs(name, 0, params)
        got = {k: v for k, v in make_model(name, **kw).get_params().items() if k not in SETTINGS_SHOWN_ELSEWHERE}
        if name in TUNING_GRIDS and params.get("tune", True):
            got.update({k: f"tuned on validation over {v}" for k, v in TUNING_GRIDS[name].items()})
        rows.append(dict(model=name, settings=", ".join(f"{k}={getattr(v, '__name__', v)}" for k, v in got.items()),
                         from_profile=", ".join(k for k in kw if k not in SETTINGS_SHOWN_ELSEWHERE) or "none"))
    return pd.DataFrame(rows)


def before_after(before: pd.DataFrame, after: pd.DataFrame, models, metrics=(("Recall", 10), ("NDCG", 10))):
    """Mean over seeds of each (dataset, split, protocol, model, metric@k) in two run tables, side by
    side with the relative change (after / before - 1)."""
    def means(df):
        df = df[df.model.isin(models) & pd.Series(list(zip(df.metric, df.k)), index=df.index).isin(metrics)]
        return df.groupby(["dataset", "split", "protocol", "model", "metric", "k"]).value.mean()

    out = pd.concat({"before": means(before), "after": means(after)}, axis=1).dropna()
    out["change_%"] = 100 * (out["after"] / out["before"] - 1)
    return out.reset_index()


VARIANT_WORDS = {"scheme": "trained on {}", "patience": "with patience {}"}  # how a variant reads in a sentence


def _say(label: str):
    """How a value of ``label`` reads in a sentence: ``_say("patience")(20)`` is "with patience 20"."""
    return VARIANT_WORDS.get(label, label + " {}").format


def variant_comparison(results: pd.DataFrame, label: str = "scheme", metrics=("Recall", "NDCG")) -> pd.DataFrame:
    """Runs that differ in one setting side by side (results of :func:`dqrec.sweep.schemes` labelled
    ``scheme``, of :func:`dqrec.sweep.patience` labelled ``patience``): one row per (dataset, split, model,
    ``label``), ``metrics`` @10 under both protocols (means over seeds), seeds, epochs run, best
    epoch and fit minutes (means), and ``capped``, the seeds stopped by the epoch cap, not by validation."""
    keys = ["dataset", "split", "model", label]
    r = results[results.k == 10]
    scores = r.assign(col=r.metric + "@10 " + r.protocol).pivot_table(index=keys, columns="col", values="value",
                                                                       aggfunc="mean")
    runs = results.drop_duplicates([*keys, "seed"]).groupby(keys)
    cost = pd.DataFrame({"seeds": runs.seed.size(), "epochs": runs.epochs_run.mean(),
                         "best_epoch": runs.best_epoch.mean(), "fit_minutes": runs.fit_seconds.mean() / 60,
                         "capped": runs.stopped_by.agg(lambda s: int((s == "max_epochs").sum()))})
    cols = [f"{m}@10 {p}" for p in ("full", "in_batch") for m in metrics if f"{m}@10 {p}" in scores]
    return scores[cols].join(cost).reset_index()


def variant_findings(table: pd.DataFrame, label: str, first, second) -> str:
    """Markdown bullets from :func:`variant_comparison`: per (dataset, split, model) with both variants
    ``first`` and ``second`` of ``label``, the full-ranking and in-batch Recall@10 of each, their ratio
    first / second, the training minutes and epochs of each, and a warning where the epoch cap, not
    validation, stopped a run (its score is a lower bound on the converged one)."""
    say = _say(label)
    lines = []
    for (d, s, m), g in table.groupby(["dataset", "split", "model"], sort=False):
        g = g.set_index(label)
        if not {first, second} <= set(g.index):
            lines.append(f"- {m} on {d} ({s}): only {', '.join(say(v) for v in g.index)} ran.")
            continue
        a, b = g.loc[first], g.loc[second]
        ratio = {p: a[f"Recall@10 {p}"] / b[f"Recall@10 {p}"] for p in ("full", "in_batch")}
        lines.append(f"- {m} on {d} ({s}): full-ranking Recall@10 {a['Recall@10 full']:.4f} {say(first)}, "
                     f"{b['Recall@10 full']:.4f} {say(second)} (x{ratio['full']:.2f}; in-batch "
                     f"{a['Recall@10 in_batch']:.4f} and {b['Recall@10 in_batch']:.4f}, x{ratio['in_batch']:.2f}), "
                     f"in {a.fit_minutes:.1f} against {b.fit_minutes:.1f} minutes of training "
                     f"({a.epochs:.0f} and {b.epochs:.0f} epochs, best {a.best_epoch:.0f} and {b.best_epoch:.0f}; "
                     f"{a.seeds:.0f} seed(s))."
                     + "".join(f" **{say(v).capitalize()}, {n:.0f} seed(s) reached the epoch cap**: not converged."
                               for v, n in ((first, a.capped), (second, b.capped)) if n > 0))
    return "\n".join(lines)


def variant_summary(table: pd.DataFrame, label: str, first, second, protocol: str = "in_batch",
                    model: str = "DQRec") -> str:
    """One sentence on :func:`variant_comparison`: over the models with both variants, the median and range
    of the relative change of Recall@10 (``protocol``) from ``first`` to ``second``, and ``model``'s rank
    among them under each; the models the epoch cap stopped under ``second`` are named."""
    say = _say(label)
    col = f"Recall@10 {protocol}"
    wide = table.pivot_table(index=["dataset", "split", "model"], columns=label, values=col).dropna(subset=[first, second])
    if wide.empty:
        return ""
    change = (100 * (wide[second] / wide[first] - 1)).droplevel([0, 1])
    cells = ", ".join(f"{d} {s}" for d, s in dict.fromkeys((d, s) for d, s, _ in wide.index))
    text = (f"{say(second).capitalize()} instead of {say(first).split(' ', 1)[1]}, {protocol.replace('_', '-')} Recall@10 "
            f"({cells}) changed by a median of {change.median():+.1f}% over {len(change)} models, from "
            f"{change.min():+.1f}% ({change.idxmin()}) to {change.max():+.1f}% ({change.idxmax()})")
    if model in change.index and len(wide) > 1:
        rank = {v: int(wide[v].droplevel([0, 1]).rank(ascending=False)[model]) for v in (first, second)}
        text += (f"; {model} ranks {rank[first]} of {len(wide)} {say(first)} and {rank[second]} "
                 f"{say(second)}")
    capped = table[(table[label] == second) & (table.capped > 0)].model.unique()
    if len(capped):
        text += f"; {', '.join(capped)} reached the epoch cap {say(second)}, so may gain more"
    return text + "."


def compare_models(summary: pd.DataFrame, models, metrics=(("Recall", 10), ("NDCG", 10))) -> pd.DataFrame:
    """'mean ± sd' cells of ``models`` side by side, one row per (dataset, split, protocol, metric@k)."""
    s = summary[summary.model.isin(models) & pd.Series(list(zip(summary.metric, summary.k)),
                                                        index=summary.index).isin(metrics)]
    s = s.assign(metric=s.metric + "@" + s.k.astype(str),
                 cell=s["mean"].map("{:.4f}".format) + np.where(s["count"] > 1, " ± " + s["std"].map("{:.4f}".format),
                                                              " (1 seed)"))
    table = s.pivot_table(index=["dataset", "split", "protocol", "metric"], columns="model", values="cell",
                          aggfunc="first")
    return table.reindex(columns=[m for m in models if m in table.columns])


def _versus(g: pd.DataFrame, a: str, b: str) -> str:
    """'A 0.1234 vs B 0.1000 (+23%, beyond the seed sd of 0.0040)' from summary rows indexed by model."""
    x, y = g.loc[a], g.loc[b]
    change = f"{a} {x['mean']:.4f} vs {b} {y['mean']:.4f} ({100 * (x['mean'] / y['mean'] - 1):+.0f}%"
    if min(x["count"], y["count"]) < 2:
        return change + ", one seed: no spread to judge it by)"
    noise = max(x["std"], y["std"])
    return change + f", {'beyond' if abs(x['mean'] - y['mean']) > noise else 'within'} the seed sd of {noise:.4f})"


def table1_findings(summary: pd.DataFrame, metric: str = "Recall", k: int = 10) -> str:
    """Markdown bullets, one per (dataset, split, protocol): the best model, and DQRec against its base
    (relative change, and whether the gap exceeds the larger of the two seed sds)."""
    s = summary[(summary.metric == metric) & (summary.k == k)]
    lines = []
    for (dataset, split, protocol), g in s.groupby(["dataset", "split", "protocol"], sort=False):
        g = g.set_index("model")
        best = g["mean"].idxmax()
        line = f"- **{dataset}, {split} split, {protocol}**: best {best} ({g.loc[best, 'mean']:.4f})"
        if {"DQRec", "DualTower"} <= set(g.index):
            line += "; " + _versus(g, "DQRec", "DualTower")
        if "DQRec" in g.index and best != "DQRec":
            line += f"; DQRec is {100 * (g.loc['DQRec', 'mean'] / g.loc[best, 'mean'] - 1):+.0f}% from the best"
        lines.append(line + ".")
    return f"{metric}@{k}, mean over seeds:\n\n" + "\n".join(lines)


def pair_findings(summary: pd.DataFrame, pairs, metric: str = "Recall", k: int = 10) -> str:
    """Markdown bullets comparing each (model a, model b) pair per (dataset, split, protocol)."""
    s = summary[(summary.metric == metric) & (summary.k == k)]
    lines = []
    for (dataset, split, protocol), g in s.groupby(["dataset", "split", "protocol"], sort=False):
        g = g.set_index("model")
        parts = [_versus(g, a, b) for a, b in pairs if {a, b} <= set(g.index)]
        if parts:
            lines.append(f"- **{dataset}, {split} split, {protocol}**: " + "; ".join(parts) + ".")
    return f"{metric}@{k}, mean over seeds:\n\n" + "\n".join(lines)


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Mean ± sd over seeds, one row per (dataset, split, protocol, model, metric@k)."""
    g = results.groupby(["dataset", "split", "protocol", "model", "metric", "k"]).value
    out = g.agg(["mean", "std", "count"]).reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out

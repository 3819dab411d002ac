"""Sweeps: every run behind a table or figure, enumerated from a profile, executed serially or on Ray.

A run is a plain, picklable :class:`Run` (dataset, split kind, model, seed, parameter overrides). The
enumerators :func:`table1`, :func:`loss`, :func:`table3` and :func:`fig3` turn a profile's parameters
into runs, and :func:`product` any other grid (the protocol forensics' included). :func:`execute`
reads each run's cached files (named by :func:`dqrec.experiment.run_key`), computes the missing ones,
serially in this process or as Ray tasks, writes each finished run into the cache as it lands, and
returns the long frame of :func:`dqrec.experiment.run_models`. A killed sweep resumes: a finished run
is three whole files, an unfinished one leaves none (each file is written to a temporary name and
renamed, the ``.csv`` last). An unfinished run's training resumes too: it checkpoints every epoch under
``<results>/checkpoints/<run key>/`` (:func:`dqrec.train.resumable`) and, started again, continues after
the last saved epoch with the result it would have had uninterrupted; the folder goes once the run lands.

    python -m dqrec.sweep table1 --profile paper --workers 2            # a local Ray instance, 2 workers
    python -m dqrec.sweep table3 --profile paper --address ray://head:10001 --gpus-per-run 1
    python -m dqrec.sweep fig3 --profile paper --missing skip           # what is cached, and what is not
    python -m dqrec.sweep run --model DQRec --dataset ml-1m --split temporal --seed 0 --profile paper
    python -m dqrec.sweep table1 --profile paper --list                 # one `run` command per line (SLURM)

Ray is imported only when runs are sent to it (``workers`` > 0, ``address`` or ``RAY_ADDRESS``).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import experiment

LOSS_MODELS = ("DQRec", "DQRec raw-BPR", "DualTower", "DualTower raw-BPR")  # Eq. 22-23 against raw-score BPR
MISSING = ("compute", "skip")


@dataclass(frozen=True)
class Run:
    """One run: ``model`` with ``seed`` on the ``split`` kind of ``dataset``, under the profile's
    parameters with ``overrides`` ((name, value) pairs, e.g. Fig. 3's ``(("k", 5),)``); ``labels``
    ((column, value) pairs) are added to its result rows."""
    dataset: str
    split: str
    model: str
    seed: int
    overrides: tuple = ()
    labels: tuple = ()

    def params(self, base: dict) -> dict:
        """The profile's ``base`` parameters with this run's overrides (:func:`experiment.apply_overrides`)."""
        return experiment.apply_overrides(self.model, base, dict(self.overrides))

    def __str__(self) -> str:
        return f"{self.model} {self.dataset}/{self.split} seed {self.seed}" + "".join(
            f" {k}={v}" for k, v in self.overrides)


@dataclass
class Outcome:
    """What :func:`execute` returns: ``results`` (``RUN_COLUMNS`` plus the runs' label columns, one
    row per run x protocol x metric@k, in the order of the runs given), ``ranks[(dataset, split,
    model)]`` (per-sample ranks of the first seed of each run without overrides), the runs that were
    ``computed`` now, those left ``missing`` (policy "skip") and the seconds the sweep took."""
    results: pd.DataFrame
    ranks: dict = field(default_factory=dict)
    computed: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    wall_seconds: float = 0.0
    keys: dict = field(default_factory=dict)  # {Run: its cache key}, for the runs with results

    def histories(self, cache: Path) -> pd.DataFrame:
        """Each run's validation score per epoch (in-batch NDCG@10 on the validation split,
        :func:`dqrec.evaluate.validation_criterion`), read from its record in ``cache``: one row per run and
        epoch, columns model, dataset, split, seed, the runs' label columns, epoch and valid. Runs without
        a trainer history (the closed-form models) have no rows."""
        rows = []
        for run, key in self.keys.items():
            record = json.loads((Path(cache) / f"{key}.json").read_text())
            rows += [dict(model=run.model, dataset=run.dataset, split=run.split, seed=run.seed, **dict(run.labels),
                          epoch=h["epoch"], valid=h["valid"]) for h in record.get("history") or []]
        return pd.DataFrame(rows, columns=["model", "dataset", "split", "seed"] + label_columns(self.keys) + ["epoch", "valid"])

    def coverage(self) -> pd.DataFrame:
        """One row per cell (model, dataset, split and the runs' label columns, in the order the runs
        came): ``done`` runs (distinct seeds with results), ``planned`` (done + missing) and the ``missing``
        seeds; what a table was computed from, and what it still lacks."""
        labels = [c for c in self.results.columns if c not in experiment.RUN_COLUMNS]
        keys = ["model", "dataset", "split"] + labels
        ran = self.results[keys + ["seed"]].drop_duplicates().to_dict("records")
        runs = pd.DataFrame([dict(r, done=True) for r in ran] + [
            dict(model=r.model, dataset=r.dataset, split=r.split, seed=r.seed, done=False, **dict(r.labels))
            for r in self.missing], columns=keys + ["seed", "done"])
        done = runs.done.astype(bool)  # object dtype when there are no runs at all
        runs = runs.assign(done=done, absent=runs.seed.where(~done))
        cells = runs.groupby(keys, sort=False, dropna=False)
        return pd.DataFrame({"done": cells.done.sum().astype(int), "planned": cells.size(),
                             "missing": cells.absent.agg(lambda s: sorted(int(v) for v in s.dropna()))}).reset_index()


# --------------------------------------------------------------------------------------------
# Enumerating runs
# --------------------------------------------------------------------------------------------
def product(params: dict, datasets, splits, models, seeds, variations=({},), labels=None) -> list[Run]:
    """Every (dataset, split, variation, model, seed) as a :class:`Run`, in that order; a model without
    a seed (:func:`dqrec.experiment.is_deterministic`) runs once, with the first seed. ``variations``:
    parameter overrides (dicts), ``labels``: the columns each variation adds to its rows (dicts)."""
    labels = labels or [{}] * len(variations)
    once = {m: experiment.is_deterministic(m) for m in models}  # also checks every name
    return [Run(d, s, m, seed, tuple(sorted(v.items())), tuple(lab.items()))
            for d in datasets for s in splits for v, lab in zip(variations, labels)
            for m in models for seed in (list(seeds)[:1] if once[m] else seeds)]


def _cells(by_dataset: dict, datasets, splits, seeds, fallback_seeds) -> list[tuple[str, str, list]]:
    """(dataset, split, seeds) from a ``{dataset: {split: seeds}}`` profile entry; given ``datasets``,
    ``splits`` or ``seeds`` replace its parts (a dataset or split it lacks takes ``fallback_seeds``)."""
    out = []
    for d in datasets or by_dataset:
        by_split = by_dataset.get(d, {})
        for s in splits or by_split or ["temporal"]:
            out.append((d, s, list(seeds or by_split.get(s) or fallback_seeds)))
    return out


def table1(params: dict, datasets=None, splits=None, models=None, seeds=None) -> list[Run]:
    """Table 1: the profile's ``table1_models`` on its ``datasets``, both splits, its ``seeds``."""
    return product(params, datasets or params["datasets"], splits or ("temporal", "random"),
                   models or params["table1_models"], seeds or params["seeds"])


def loss(params: dict, datasets=None, splits=None, models=None, seeds=None) -> list[Run]:
    """The loss comparison (Eq. 22-23 against BPR on raw scores) on the profile's ``loss_runs``."""
    return [r for d, s, cell_seeds in _cells(params["loss_runs"], datasets, splits, seeds, params["seeds"])
            for r in product(params, [d], [s], models or LOSS_MODELS, cell_seeds)]


def table3(params: dict, datasets=None, splits=None, models=None, seeds=None) -> list[Run]:
    """Table 3: DQRec and its ablation variants, each dataset of the profile's ``ablation_seeds`` with
    its seeds, on its ``ablation_splits``."""
    splits = splits or params.get("ablation_splits", ["temporal"])
    by_dataset = {d: {s: ds_seeds for s in splits} for d, ds_seeds in params["ablation_seeds"].items()}
    return [r for d, s, cell_seeds in _cells(by_dataset, datasets, splits, seeds, params["seeds"])
            for r in product(params, [d], [s], models or experiment.ABLATION_MODELS, cell_seeds)]


def fig3(params: dict, datasets=None, splits=None, models=None, seeds=None, grid=None) -> list[Run]:
    """Fig. 3: DQRec with one of K, J, L changed at a time over the profile's ``sensitivity_grid``, on
    its ``sensitivity_dataset`` and ``sensitivity_seeds``; rows labelled ``parameter`` and
    ``value_of_parameter``."""
    grid = grid or params["sensitivity_grid"]
    points = [(name, value) for name, values in grid.items() for value in values]
    return product(params, datasets or [params["sensitivity_dataset"]], splits or ["temporal"], models or ["DQRec"],
                   seeds or params["sensitivity_seeds"], variations=[{n: v} for n, v in points],
                   labels=[dict(parameter=n, value_of_parameter=v) for n, v in points])


def schemes(params: dict, datasets=None, splits=None, models=None, seeds=None) -> list[Run]:
    """The sequential models' two training schemes (``train_on``: windows of each user's timeline,
    "sequences", and one prefix per target, "prefixes") for the profile's ``scheme_models`` on its
    ``scheme_runs``; rows labelled ``scheme``."""
    variations = [{"train_on": t} for t in ("sequences", "prefixes")]
    return [r for d, s, cell_seeds in _cells(params["scheme_runs"], datasets, splits, seeds, params["seeds"])
            for r in product(params, [d], [s], models or params["scheme_models"], cell_seeds, variations=variations,
                             labels=[{"scheme": v["train_on"]} for v in variations])]


def patience(params: dict, datasets=None, splits=None, models=None, seeds=None) -> list[Run]:
    """Does the profile's ``patience`` stop training too early? Its ``patience_models`` on its
    ``patience_runs``, each trained with that patience (Table 1's runs) and with ``patience_check``; rows
    labelled ``patience``."""
    variations = [{"patience": n} for n in (params["patience"], params["patience_check"])]
    return [r for d, s, cell_seeds in _cells(params["patience_runs"], datasets, splits, seeds, params["seeds"])
            for r in product(params, [d], [s], models or params["patience_models"], cell_seeds, variations=variations,
                             labels=[{"patience": v["patience"]} for v in variations])]


TABLES = {"table1": table1, "loss": loss, "table3": table3, "fig3": fig3, "schemes": schemes, "patience": patience}


# --------------------------------------------------------------------------------------------
# Executing runs
# --------------------------------------------------------------------------------------------
class Splits:
    """Prepared splits by (dataset, split kind, seq_len), each dataset read once per process; ``given``
    ((dataset, kind) -> Split) serves splits that are not loaded by name (fixtures)."""

    def __init__(self, given=None):
        self.given, self.prepared, self.datasets = dict(given or {}), {}, {}

    def __call__(self, run: Run, params: dict):
        if (run.dataset, run.split) in self.given:
            return self.given[(run.dataset, run.split)]
        from . import data

        key = (run.dataset, run.split, run.params(params)["seq_len"])
        if key not in self.prepared:
            if run.dataset not in self.datasets:
                self.datasets[run.dataset] = data.load(run.dataset)
            self.prepared[key] = data.prepare(self.datasets[run.dataset], split=run.split, seq_len=key[2], seed=0)
        return self.prepared[key]


def checkpoint_folder(path: Path | None) -> Path | None:
    """Where the run cached at ``path`` (``<results>/runs/<key>``) keeps its training checkpoints while it
    runs: ``<results>/checkpoints/<key>`` (see :func:`dqrec.train.resumable`); removed once the run lands."""
    return None if path is None else Path(path).parent.parent / "checkpoints" / Path(path).name


def compute(split, run: Run, params: dict, threads: int | None = None, sha: str | None = None,
             checkpoints: str | Path | None = None):
    """One run, in this process or a Ray worker: (rows, ranks, record) of
    :func:`dqrec.experiment.compute_run`, with ``threads`` torch threads and ``sha`` as its commit;
    training checkpoints each epoch to the folder ``checkpoints`` and resumes from it (None: neither)."""
    import contextlib

    import torch

    from . import train

    if sha:
        os.environ.setdefault("DQREC_GIT_SHA", sha)
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        earlier = resumed_epochs(checkpoints)
        with train.resumable(checkpoints) if checkpoints is not None else contextlib.nullcontext():
            res, ranks, record = experiment.compute_run(split, run.model, run.seed, run.params(params))
    finally:
        torch.set_num_threads(before)
    if earlier:  # the epochs trained by the processes before this one count in the run's fit time
        before = round(sum(seconds for _, seconds in earlier.values()), 2)
        res = res.assign(fit_seconds=(res.fit_seconds + before).round(2))
        record = dict(record, resumed={"epochs": {f: n for f, (n, _) in earlier.items()}, "seconds_before": before})
    return res, ranks, record


def resumed_epochs(folder: str | Path | None) -> dict:
    """{checkpoint file: (epochs it saved, their training and validation seconds)} of the fits a run resumes
    from (empty when it starts afresh): what the processes before this one trained. A resumed run's
    ``fit_seconds`` is its own wall time plus these seconds (their set-up time, e.g. data preparation or
    DQRec's representation stage, is not counted) and its json says what it resumed."""
    import torch

    if folder is None or not Path(folder).is_dir():
        return {}
    out = {}
    for path in sorted(Path(folder).glob("fit*.pt")):
        history = torch.load(path, weights_only=False)["history"]
        out[path.name] = (len(history), sum(v for h in history for k, v in h.items() if k.endswith("_seconds")))
    return out


def _main_metric(res: pd.DataFrame) -> str:
    """'Recall@10 in_batch 0.1234, full 0.0123' from a run's rows."""
    r = res[(res.metric == "Recall") & (res.k == 10)].set_index("protocol").value
    return "Recall@10 " + ", ".join(f"{p} {r[p]:.4f}" for p in ("in_batch", "full") if p in r)


def missing_summary(runs) -> str:
    """One line per model: its absent (dataset, split) cells and their seeds, e.g.
    ``NCF: ml-1m temporal seeds 0, 1, 2; ml-100k random seeds 1, 2``."""
    cells: dict[str, dict[str, list]] = {}
    for r in runs:
        cell = " ".join([r.dataset, r.split] + [f"{k}={v}" for k, v in r.overrides])
        cells.setdefault(r.model, {}).setdefault(cell, []).append(r.seed)
    return "\n".join(f"  {model}: " + "; ".join(f"{cell} seed{'s' if len(seeds) > 1 else ''} "
                                                 + ", ".join(map(str, sorted(seeds)))
                                                 for cell, seeds in by_cell.items())
                     for model, by_cell in cells.items())


def execute(runs, params: dict, cache: Path | None = None, *, workers: int = 0, address: str | None = None,
            gpus_per_run: float = 0, cpus_per_run: int = 1, threads: int | None = None, missing: str = "compute",
            splits=None, progress: bool = True, log=print) -> Outcome:
    """Read, compute and collect ``runs`` (a list of :class:`Run`) under the profile ``params``.

    cache: the run cache folder (``results[/<profile>]/runs``); a cached run is read, never recomputed;
        each computed run is written there atomically as soon as it finishes. None: nothing is stored.
    workers: 0 computes the missing runs one after another in this process; N > 0 on a local Ray
        instance with N workers of ``cpus_per_run`` CPUs (torch threads) each.
    address: an existing Ray cluster (``ray://host:10001``, ``host:6379`` or ``auto``; the
        ``RAY_ADDRESS`` variable does the same); the package is shipped to it with each task.
    gpus_per_run: GPUs each Ray task asks for (the models use the one Ray assigns them).
    threads: torch threads of serial runs (default: torch's); a Ray task has ``cpus_per_run``.
    missing: "compute" (default) or "skip": leave uncached runs out of the results and list them in
        ``Outcome.missing`` (and in a log line), e.g. to render a notebook from a committed cache.
    splits: {(dataset, split kind): Split} for data not loaded by name.
    log: called with a line per computed run (model, data, seed, fit + test seconds, Recall@10) and a
        summary; None for silence.

    Serially, an error stops the sweep (the runs finished before it are cached); on Ray, the other
    tasks finish and land, then the failures are raised together.
    """
    from tqdm.auto import tqdm

    if missing not in MISSING:
        raise ValueError(f"missing={missing!r}: choose one of {MISSING}")
    runs, start = list(runs), time.perf_counter()
    log = log or (lambda line: None)
    if cache is not None:
        experiment.check_writable(Path(cache))
        _remove_orphans(Path(cache))
    split_of = Splits(splits)
    key_of, found, todo, skipped = {}, {}, {}, {}  # todo, skipped: {key: (run, path)}, one per run key
    for run in runs:
        split = split_of(run, params)
        key = key_of[run] = experiment.run_key(split, run.model, run.seed, run.params(params))
        path = None if cache is None else Path(cache) / key
        if key in found or key in todo or key in skipped:  # Fig. 3's default point appears once per parameter
            continue
        cached = None if path is None else experiment.read_cached_run(path, len(split.test))
        if cached is not None:
            found[key] = cached
        else:
            (todo if missing == "compute" else skipped)[key] = (run, path)
    todo, skipped = list(todo.values()), list(skipped.values())
    if skipped:
        log(f"{len(skipped)} of {len(runs)} runs are not in {cache} and were skipped (missing='skip'):\n"
            + missing_summary([r for r, _ in skipped]))
    bar = tqdm(total=len(found) + len(todo) + len(skipped), initial=len(found), desc="runs", unit="run",
               disable=not (progress and todo), dynamic_ncols=True)
    say = (lambda line: bar.write(line)) if progress else log

    def land(run, path, result):
        res, sample_ranks, record = result
        if path is not None:
            spec = experiment.run_spec(split_of(run, params), run.model, run.seed, run.params(params))
            experiment.write_run(path, spec, res, sample_ranks, record)
            shutil.rmtree(checkpoint_folder(path), ignore_errors=True)
        found[key_of[run]] = (res, sample_ranks)
        bar.update()
        say(f"{run}: {res.fit_seconds.iloc[0] + res.eval_seconds.iloc[0]:.0f} s, {_main_metric(res)}")

    failed = []
    try:
        if todo and (workers or address or os.environ.get("RAY_ADDRESS")):
            failed = _execute_ray(todo, params, split_of, land, workers=workers, address=address,
                                  gpus_per_run=gpus_per_run, cpus_per_run=cpus_per_run)
        else:
            for run, path in todo:  # an error stops the sweep here; the runs before it are cached
                land(run, path, compute(split_of(run, params), run, params, threads,
                                         checkpoints=checkpoint_folder(path)))
    finally:
        bar.close()
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(todo)} Ray tasks failed (the others are cached): "
                           + "; ".join(f"{r}: {type(e).__name__}: {e}" for r, e in failed)) from failed[0][1]
    outcome = _collect(runs, key_of, found, [r for r, _ in todo], [r for r, _ in skipped], time.perf_counter() - start)
    if todo or skipped:
        log(f"{len(found) + len(skipped)} runs: {len(todo)} computed, {len(found) - len(todo)} read from the cache"
            + (f", {len(skipped)} missing" if skipped else "") + f" ({outcome.wall_seconds / 60:.1f} min)")
    return outcome


def _remove_orphans(cache: Path) -> list[Path]:
    """Remove the temporary files (:func:`dqrec.experiment._atomic_write`) that a killed process of this
    host left in ``cache``; those of a live process (another driver writing now) stay."""
    import re
    import socket

    removed = []
    for tmp in cache.glob(".*.tmp"):
        m = re.search(rf"\.{re.escape(socket.gethostname())}\.(\d+)\.[0-9a-f]{{8}}\.tmp$", tmp.name)
        if m and not _alive(int(m.group(1))):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def start_ray(workers: int = 0, address: str | None = None, cpus_per_run: int = 1) -> bool:
    """Connect to the Ray cluster at ``address`` (or ``RAY_ADDRESS``), shipping this package to it, or
    start a local instance with ``workers`` x ``cpus_per_run`` CPUs whose workers import this checkout's
    dqrec; nothing if Ray is already initialised. True if it started or connected."""
    import ray

    if ray.is_initialized():
        return False
    env = {"DQREC_GIT_SHA": experiment.git_sha()}
    if address or os.environ.get("RAY_ADDRESS"):
        ray.init(address=address, runtime_env={"py_modules": [str(experiment.ROOT / "dqrec")], "env_vars": env},
                 log_to_driver=False)
    else:
        path = os.pathsep.join(p for p in (str(experiment.ROOT), os.environ.get("PYTHONPATH")) if p)
        ray.init(num_cpus=max(1, workers) * cpus_per_run, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": dict(env, PYTHONPATH=path)})
    return True


def _execute_ray(todo, params, split_of, land, workers, address, gpus_per_run, cpus_per_run) -> list:
    """Send every (run, path) of ``todo`` to Ray as a task; ``land`` each result in the driver as it
    arrives (the driver alone writes the cache). Each prepared split is put in the object store once,
    so a node fetches it once whatever the number of its tasks. Returns the failed (run, error)s."""
    import ray

    started = start_ray(workers, address, cpus_per_run)
    task = ray.remote(compute).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)
    refs, data, failed = {}, {}, []
    try:
        for run, path in todo:
            split = split_of(run, params)
            if id(split) not in data:
                data[id(split)] = ray.put(split)
            ref = task.remote(data[id(split)], run, params, cpus_per_run, experiment.git_sha(),
                              checkpoint_folder(path))
            refs[ref] = (run, path)
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            run, path = refs[done[0]]
            try:
                result = ray.get(done[0])
            except Exception as err:  # a task that raised, or a worker that died
                failed.append((run, err))
                continue
            land(run, path, result)
    finally:
        if started:
            ray.shutdown()
    return failed


def label_columns(runs) -> list[str]:
    """The label columns ``runs`` add to their rows, in order of first appearance."""
    return list(dict.fromkeys(k for r in runs for k, _ in r.labels))


def _collect(runs, key_of, found, computed, skipped, wall_seconds) -> Outcome:
    frames, ranks = [], {}
    for run in runs:
        if key_of[run] not in found:
            continue
        res, sample_ranks = found[key_of[run]]
        frames.append(res.assign(**dict(run.labels)))
        if not run.overrides:
            ranks.setdefault((run.dataset, run.split, run.model), sample_ranks)
    columns = experiment.RUN_COLUMNS + label_columns(runs)
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    keys = {run: key_of[run] for run in runs if key_of[run] in found}
    return Outcome(results.reindex(columns=columns), ranks, computed, skipped, round(wall_seconds, 2), keys)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def _value(text: str):
    """A ``--set`` value: JSON if it parses (5, 0.5, true, [1, 2]), the text otherwise."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _seed(text: str) -> int:
    """A ``--seed`` value: a non-negative integer (numpy's generators take no negative seed)."""
    import argparse

    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"a seed is a non-negative integer, got {text!r}")
    return int(text)


def _command(run: Run, profile: str) -> str:
    """The single-run command of ``run``."""
    sets = "".join(f" --set {k}={json.dumps(v)}" for k, v in run.overrides)
    return (f"python -m dqrec.sweep run --model '{run.model}' --dataset {run.dataset} --split {run.split} "
            f"--seed {run.seed} --profile {profile}{sets}")


def parser():
    import argparse

    ap = argparse.ArgumentParser(prog="python -m dqrec.sweep", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=[*TABLES, "run"], help="the runs of a table or figure, or one run")
    ap.add_argument("--profile", choices=sorted(experiment.PROFILES), default="quick",
                    help="parameter profile; only 'paper' writes the committed results/runs/ (default: quick)")
    ap.add_argument("--datasets", nargs="+", help="these datasets instead of the profile's")
    ap.add_argument("--splits", nargs="+", choices=["temporal", "random"],
                    help="these split kinds instead of the table's")
    ap.add_argument("--models", nargs="+", help="these models instead of the table's")
    ap.add_argument("--seeds", nargs="+", type=_seed, help="these seeds instead of the profile's")
    ap.add_argument("--model", help="run: the model")
    ap.add_argument("--dataset", help="run: the dataset")
    ap.add_argument("--split", choices=["temporal", "random"], default="temporal", help="run: the split kind")
    ap.add_argument("--seed", type=_seed, default=0, help="run: the seed (a non-negative integer)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="run: a profile parameter (Fig. 3's k=5, codebook_size=16, ...) or any constructor "
                         "parameter of the model (n_heads=2) changed for this run; one it would ignore is an error")
    ap.add_argument("--workers", type=int, default=None,
                    help="local Ray workers (default: one per CPU core for tables, 0 for `run`); 0: serially, no Ray")
    ap.add_argument("--cpus-per-run", type=int, default=1, help="CPUs (torch threads) of each Ray task (default: 1)")
    ap.add_argument("--threads", type=int, help="torch threads of serial runs, --workers 0 (default: torch's)")
    ap.add_argument("--address", default=None, help="an existing Ray cluster, e.g. ray://host:10001 (or RAY_ADDRESS)")
    ap.add_argument("--gpus-per-run", type=float, default=0, help="GPUs each Ray task asks for (default: 0)")
    ap.add_argument("--missing", choices=MISSING, default="compute",
                    help="compute the runs not in the cache (default), or only report them")
    ap.add_argument("--progress", action="store_true",
                    help="show each run's training bar (epoch, loss, validation score); not part of the run key")
    ap.add_argument("--list", action="store_true", help="print each run's single-run command and exit")
    return ap


def main(argv=None) -> Outcome | None:
    import warnings

    from .registry import model_names

    args = parser().parse_args(argv)
    warnings.filterwarnings("ignore", message=".*have no timestamp.*")
    params = experiment.profile_params(args.profile, progress=args.progress)
    if args.what == "run":
        if not (args.model and args.dataset):
            parser().error("run needs --model and --dataset")
        bad = [s for s in args.set if "=" not in s]
        if bad:
            parser().error(f"--set wants NAME=VALUE, got {bad}")
        overrides = dict((s.split("=", 1)[0], _value(s.split("=", 1)[1])) for s in args.set)
        runs = [Run(args.dataset, args.split, args.model, args.seed, tuple(sorted(overrides.items())))]
        runs[0].params(params)  # checked before any data is read
        workers = args.workers or 0
    else:
        runs = TABLES[args.what](params, datasets=args.datasets, splits=args.splits, models=args.models,
                                 seeds=args.seeds)
        workers = os.cpu_count() if args.workers is None else args.workers
    if args.list:
        print("\n".join(_command(r, args.profile) for r in runs))
        return None
    model_names()  # import every model now: the code a long sweep runs is the code it started with,
    print(f"commit {experiment.git_sha()}, run code of DQRec {experiment.code_version('DQRec')}, {len(runs)} runs",
          flush=True)  # and the commit recorded is read now
    return execute(runs, params, experiment.results_dir(args.profile) / "runs", workers=workers, address=args.address,
                   gpus_per_run=args.gpus_per_run, cpus_per_run=args.cpus_per_run, threads=args.threads,
                   missing=args.missing,
                   log=lambda line: print(line, flush=True))


if __name__ == "__main__":
    main()

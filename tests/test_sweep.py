"""The sweep module: enumerating runs, Ray against serial, resuming a killed sweep, the command line."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dqrec import experiment, sweep
from tests.test_augment_model import planted_split

ROOT = Path(__file__).resolve().parent.parent
TIMES = ["fit_seconds", "eval_seconds"]  # everything else in a run's rows is a result


def _planted(params, models=("MostPopular", "EASE", "MF-BPR"), seeds=(0, 1)):
    return sweep.product(params, ["planted"], ["temporal"], list(models), list(seeds))


def test_importing_dqrec_does_not_import_ray():
    code = ("import sys, dqrec, dqrec.sweep, dqrec.experiment; from dqrec import sweep, experiment; "
            "sweep.table1(experiment.profile_params('paper')); assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_enumerators_follow_the_profile():
    p = experiment.profile_params("test")
    t1 = sweep.table1(p)
    assert len(t1) == 2 * len(p["table1_models"]) and {r.split for r in t1} == {"temporal", "random"}
    # a model without a seed runs once; Table 1's model list comes from the profile
    t1 = sweep.table1(dict(p, table1_models=["MostPopular", "MF-BPR"]), seeds=[0, 1, 2])
    assert [(r.model, r.seed) for r in t1 if r.split == "temporal"] == [("MostPopular", 0), ("MF-BPR", 0),
                                                                       ("MF-BPR", 1), ("MF-BPR", 2)]
    t3 = sweep.table3(experiment.profile_params("paper"), datasets=["ml-1m"], splits=["temporal", "random"],
                      seeds=[0, 1, 2])
    assert len(t3) == 2 * 3 * len(experiment.ABLATION_MODELS) and {r.seed for r in t3} == {0, 1, 2}
    assert {r.split for r in sweep.table3(dict(p, ablation_splits=["random"]))} == {"random"}
    f3 = sweep.fig3(p)
    grid = p["sensitivity_grid"]
    assert len(f3) == sum(map(len, grid.values())) and all(r.model == "DQRec" for r in f3)
    assert {dict(r.labels)["parameter"]: dict(r.overrides) for r in f3}["k"] == {"k": grid["k"][-1]}
    assert {(r.dataset, r.split) for r in sweep.loss(experiment.profile_params("paper"))} == {
        ("ml-100k", "temporal"), ("ml-1m", "temporal"), ("ml-1m", "random")}
    with pytest.raises(ValueError, match="unknown model 'NoSuchModel'"):
        sweep.table1(p, models=["NoSuchModel"])


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance with 2 workers for the tests of this file (started as a sweep starts it)."""
    import ray

    assert sweep.start_ray(workers=2)
    yield
    ray.shutdown()


def test_ray_sweep_gives_exactly_the_serial_results(tmp_path, local_ray):
    """Two local Ray workers and this process compute the same runs, bit for bit, and each run equals
    its model fitted directly with its own seed (a task given the wrong seed or parameters fails)."""
    split, params = planted_split(), experiment.profile_params("test", progress=False)
    runs = _planted(params)
    given = {("planted", "temporal"): split}
    serial = sweep.execute(runs, params, tmp_path / "serial", splits=given, progress=False, log=None)
    on_ray = sweep.execute(runs, params, tmp_path / "ray", workers=2, splits=given, progress=False, log=None)
    assert len(serial.computed) == len(on_ray.computed) == 4  # MostPopular and EASE once, MF-BPR twice
    pd.testing.assert_frame_equal(serial.results.drop(columns=TIMES), on_ray.results.drop(columns=TIMES))
    for run in runs:
        direct, ranks, _ = experiment.compute_run(split, run.model, run.seed, params)
        got = on_ray.results[(on_ray.results.model == run.model) & (on_ray.results.seed == run.seed)]
        assert got.value.tolist() == direct.value.tolist(), run
    mf = on_ray.results[on_ray.results.model == "MF-BPR"].pivot_table(index=["protocol", "metric", "k"], columns="seed",
                                                                     values="value")
    assert (mf[0] != mf[1]).any()  # the seeds give different runs: the check above can tell them apart
    names = {name: sorted(p.name for p in (tmp_path / name).iterdir()) for name in ("serial", "ray")}
    assert names["serial"] == names["ray"] and len(names["ray"]) == 3 * 4  # .csv, .npz, .json per run, no .tmp
    for name in ("serial", "ray"):  # the driver wrote every run whole: the cache reads back, nothing is computed
        again = sweep.execute(runs, params, tmp_path / name, splits=given, progress=False, log=None)
        assert again.computed == [] and again.results.value.tolist() == serial.results.value.tolist()


def test_a_failing_ray_task_leaves_the_others_cached(tmp_path, local_ray):
    split, params = planted_split(), experiment.profile_params("test", progress=False)
    given = {("planted", "temporal"): split}
    bad = sweep.Run("planted", "temporal", "MF-BPR", 1, (("device", "cuda"),))  # a Ray task without a GPU sees none
    good = _planted(params, models=["MostPopular", "MF-BPR"], seeds=[0])
    with pytest.raises(RuntimeError, match=r"1 of 3 Ray tasks failed.*MF-BPR planted/temporal seed 1 device=cuda"):
        sweep.execute(good + [bad], params, tmp_path, workers=2, splits=given, progress=False, log=None)
    assert len(list(tmp_path.glob("*.csv"))) == 2 and not list(tmp_path.glob(".*"))
    resumed = sweep.execute(good, params, tmp_path, splits=given, progress=False, log=None)
    assert resumed.computed == [] and set(resumed.results.model) == {"MostPopular", "MF-BPR"}


KILLED = """
import os, signal, numpy as np
from dqrec import experiment, sweep
from tests.test_augment_model import planted_split

save, calls = np.savez_compressed, []
def save_then_die(file, **arrays):  # the second run's ranks: half written, then the process is killed
    calls.append(1)
    if len(calls) == 2:
        file.write(b"PK half a file")
        file.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    save(file, **arrays)
np.savez_compressed = save_then_die
params = experiment.profile_params("test", progress=False)
runs = sweep.product(params, ["planted"], ["temporal"], ["MostPopular", "EASE"], [0])
sweep.execute(runs, params, {cache!r}, splits={{("planted", "temporal"): planted_split()}}, progress=False)
"""


def test_a_killed_sweep_resumes_without_recomputing_and_leaves_no_partial_file(tmp_path, monkeypatch):
    cache = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-c", KILLED.format(cache=str(cache))], cwd=ROOT)
    assert proc.returncode == -9  # killed while writing the second run
    assert [p.suffix for p in sorted(cache.glob("*MostPopular*"))] == [".csv", ".json", ".npz"]
    assert not list(cache.glob("*EASE*.csv")) and not list(cache.glob("*EASE*.npz"))
    assert len(list(cache.glob(".*.tmp"))) == 1  # the half-written file never got its real name

    split, params = planted_split(), experiment.profile_params("test", progress=False)
    runs = sweep.product(params, ["planted"], ["temporal"], ["MostPopular", "EASE"], [0])
    fitted, compute = [], experiment.compute_run

    def counted(split, name, *args):
        fitted.append(name)
        return compute(split, name, *args)

    monkeypatch.setattr(experiment, "compute_run", counted)
    out = sweep.execute(runs, params, cache, splits={("planted", "temporal"): split}, progress=False, log=None)
    assert fitted == ["EASE"] and [r.model for r in out.computed] == ["EASE"]  # MostPopular was read back
    assert not list(cache.glob(".*.tmp"))  # the dead process's temporary file is cleared
    for path in cache.glob("*.csv"):
        assert experiment.read_cached_run(path, len(split.test)) is not None
    with np.load(next(cache.glob("*EASE*.npz"))) as f:
        assert set(f.files) == {"in_batch", "full"}


def test_missing_skip_reports_instead_of_computing(tmp_path):
    split, params = planted_split(), experiment.profile_params("test", progress=False)
    given = {("planted", "temporal"): split}
    runs = _planted(params, models=["MostPopular", "EASE"], seeds=[0])
    lines = []
    out = sweep.execute(runs, params, tmp_path, missing="skip", splits=given, progress=False, log=lines.append)
    assert out.results.empty and list(out.results.columns) == experiment.RUN_COLUMNS
    assert out.missing == runs and not list(tmp_path.iterdir()) and "2 of 2 runs are not in" in lines[0]
    sweep.execute(runs[:1], params, tmp_path, splits=given, progress=False, log=None)
    out = sweep.execute(runs, params, tmp_path, missing="skip", splits=given, progress=False, log=None)
    assert out.missing == runs[1:] and set(out.results.model) == {"MostPopular"}
    with pytest.raises(ValueError, match="missing='later'"):
        sweep.execute(runs, params, tmp_path, missing="later", splits=given)


def test_coverage_counts_seeds_with_results_per_cell(tmp_path):
    split, params = planted_split(), experiment.profile_params("test", progress=False)
    given = {("planted", "temporal"): split}
    runs = _planted(params, models=["MF-BPR", "MostPopular"], seeds=[0, 1, 2])  # MostPopular: one run, no seeds
    mf = [r for r in runs if r.model == "MF-BPR"]
    sweep.execute([mf[0], mf[2]], params, tmp_path, splits=given, progress=False, log=None)
    out = sweep.execute(runs, params, tmp_path, missing="skip", splits=given, progress=False, log=None)
    cov = out.coverage().set_index("model")  # 12 result rows per run: counted once per seed, not per row
    assert cov.loc["MF-BPR", ["done", "planned"]].tolist() == [2, 3] and cov.loc["MF-BPR", "missing"] == [1]
    assert cov.loc["MostPopular", ["done", "planned"]].tolist() == [0, 1]
    assert list(cov.index) == ["MF-BPR", "MostPopular"]
    empty = sweep.execute(runs, params, tmp_path / "none", missing="skip", splits=given, progress=False, log=None)
    assert empty.coverage().done.tolist() == [0, 0] and empty.coverage().planned.tolist() == [3, 1]


@pytest.mark.skipif(not os.environ.get("DQREC_DATA_DIR"), reason="needs the ML-100K mirror (DQREC_DATA_DIR)")
def test_single_run_command_writes_the_file_the_table_sweep_reads(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DQREC_RESULTS_DIR", str(tmp_path))
    sweep.main(["run", "--model", "MostPopular", "--dataset", "ml-100k", "--split", "random", "--profile", "test"])
    assert len(list((tmp_path / "test" / "runs").glob("ml-100k_random_MostPopular_s0_*.csv"))) == 1
    out = sweep.main(["table1", "--profile", "test", "--models", "MostPopular", "--splits", "random",
                      "--missing", "skip", "--workers", "0"])
    assert out.missing == [] and len(out.results) == experiment.RUN_ROWS
    shown = sweep.main(["table1", "--profile", "test", "--models", "MostPopular", "--splits", "random",
                        "--missing", "skip", "--workers", "0", "--progress"])
    assert shown.missing == []  # training bars do not change what a run is: the same cached file is read
    sweep.main(["fig3", "--profile", "test", "--list"])
    lines = capsys.readouterr().out.splitlines()
    assert "python -m dqrec.sweep run --model 'DQRec' --dataset ml-100k --split temporal --seed 0 --profile test " \
           "--set k=5" in lines
    # the old script's command still works (an alias)
    alias = subprocess.run([sys.executable, "scripts/run_sweep.py", "--table", "1", "--profile", "test", "--datasets",
                            "ml-100k", "--models", "MostPopular", "--seeds", "0", "--list"], cwd=ROOT, check=True,
                           capture_output=True, text=True)
    assert alias.stdout.count("--model 'MostPopular'") == 2  # both splits


def test_each_dataset_is_read_once_and_each_split_prepared_once(monkeypatch):
    from dqrec import data

    loads, prepares, planted = [], [], {kind: planted_split(kind=kind) for kind in ("temporal", "random")}
    monkeypatch.setattr(data, "load", lambda name: loads.append(name) or name)
    monkeypatch.setattr(data, "prepare", lambda ds, split, seq_len, seed: prepares.append(split) or planted[split])
    params = experiment.profile_params("test", progress=False)
    runs = sweep.product(params, ["ml-100k"], ["temporal", "random"], ["MostPopular", "MF-BPR"], [0, 1])
    split_of = sweep.Splits()
    splits = [split_of(r, params) for r in runs]
    assert loads == ["ml-100k"] and prepares == ["temporal", "random"] and splits[0] is splits[1]


def test_missing_summary_lists_each_models_absent_cells_and_seeds():
    runs = [sweep.Run("ml-1m", "temporal", "NCF", s) for s in (2, 0)] + [
        sweep.Run("ml-100k", "random", "NCF", 1), sweep.Run("ml-100k", "temporal", "DQRec", 0, (("k", 5),))]
    assert sweep.missing_summary(runs).splitlines() == [
        "  NCF: ml-1m temporal seeds 0, 2; ml-100k random seed 1", "  DQRec: ml-100k temporal k=5 seed 0"]


def test_scheme_runs_reach_the_model_and_share_table1s_cache():
    """The scheme comparison's "sequences" runs are Table 1's runs (one cache entry), its "prefixes" runs
    really train on prefixes (the override reaches the model's constructor, and so its run key)."""
    p = experiment.profile_params("paper")
    runs = sweep.schemes(p)
    assert {(r.model, dict(r.labels)["scheme"]) for r in runs} == {
        (m, s) for m in p["scheme_models"] for s in ("sequences", "prefixes")}
    split = planted_split()
    for r in runs:
        spec = experiment.run_spec(split, r.model, r.seed, r.params(p))
        assert spec["params"]["train_on"] == dict(r.overrides)["train_on"]
        same_as_table1 = experiment.run_key(split, r.model, r.seed, r.params(p)) == experiment.run_key(split, r.model, r.seed, p)
        assert same_as_table1 == (dict(r.labels)["scheme"] == "sequences")
    assert sweep.schemes(experiment.profile_params("test")) == []  # no sequential model in the small profiles


def test_patience_runs_reach_the_trainer_and_share_table1s_cache():
    """The patience check's runs with the profile's patience are Table 1's (one cache entry); the others
    really train with ``patience_check`` (the override reaches the model, and so its run key)."""
    p = experiment.profile_params("paper")
    runs = sweep.patience(p)
    assert {(r.model, dict(r.labels)["patience"]) for r in runs} == {
        (m, n) for m in p["patience_models"] for n in (p["patience"], p["patience_check"])}
    split = planted_split()
    for r in runs:
        assert experiment.model_kwargs(r.model, 0, r.params(p))["patience"] == dict(r.overrides)["patience"]
        same_as_table1 = experiment.run_key(split, r.model, r.seed, r.params(p)) == experiment.run_key(split, r.model, r.seed, p)
        assert same_as_table1 == (dict(r.labels)["patience"] == p["patience"])
    assert sweep.patience(experiment.profile_params("test")) == []


def test_a_killed_run_resumes_its_training_and_drops_its_checkpoints(tmp_path, monkeypatch):
    """Killed in epoch 3, a run keeps epochs 1-2 in its checkpoint; started again it continues from there
    (the first two epochs' timings are the checkpoint's, and count in its fit time), ends as an
    uninterrupted run does, and its checkpoint folder goes once it lands."""
    from dqrec import evaluate

    split, params = planted_split(), experiment.profile_params("test", progress=False, epochs=5, patience=5)
    runs, given = _planted(params, models=["MF-BPR"], seeds=[0]), {("planted", "temporal"): planted_split()}
    straight = sweep.execute(runs, params, tmp_path / "a" / "runs", splits=given, progress=False, log=None)
    real = evaluate.validation_criterion

    def dying(split, seed):
        criterion, calls = real(split, seed), [0]

        def validate(model):
            calls[0] += 1
            if calls[0] > 2:
                raise KeyboardInterrupt
            return criterion(model)
        return validate

    cache, checkpoints = tmp_path / "b" / "runs", tmp_path / "b" / "checkpoints"
    with monkeypatch.context() as m:
        m.setattr(evaluate, "validation_criterion", dying)
        with pytest.raises(KeyboardInterrupt):
            sweep.execute(runs, params, cache, splits=given, progress=False, log=None)
    (folder,) = checkpoints.iterdir()
    assert folder == sweep.checkpoint_folder(cache / folder.name) and not list(cache.glob("*.csv"))
    import torch
    saved = torch.load(folder / "fit0.pt", weights_only=False)["history"]
    resumed = sweep.execute(runs, params, cache, splits=given, progress=False, log=None)
    pd.testing.assert_frame_equal(resumed.results.drop(columns=TIMES), straight.results.drop(columns=TIMES))
    run = json.loads((cache / f"{folder.name}.json").read_text())
    assert run["history"][:2] == saved and len(run["history"]) == 5
    before = sum(v for h in saved for k, v in h.items() if k.endswith("_seconds"))
    assert run["resumed"] == {"epochs": {"fit0.pt": 2}, "seconds_before": round(before, 2)}
    assert (resumed.results.fit_seconds >= round(before, 2)).all()  # the killed process's epochs count too
    assert not list(checkpoints.iterdir())


def test_a_run_setting_is_applied_or_refused_never_ignored():
    """--set: a setting the run would not use must fail, else its run is labelled with a setting it never had
    (and, with an unchanged key, the default run is read back under that label)."""
    params, split = experiment.profile_params("test"), planted_split()
    key = lambda run: experiment.run_key(split, run.model, run.seed, run.params(params))  # noqa: E731
    run = lambda model, **s: sweep.Run("planted", "temporal", model, 0, tuple(sorted(s.items())))  # noqa: E731

    # a constructor parameter outside the profile reaches the model and the key
    heads = run("SASRec", n_heads=2)
    assert key(heads) != key(run("SASRec"))
    assert experiment.model_kwargs("SASRec", 0, heads.params(params))["n_heads"] == 2
    # so does a baseline's own parameter that shares a name with DQRec's profile parameter L
    assert experiment.model_kwargs("LightGCN", 0, run("LightGCN", n_layers=1).params(params))["n_layers"] == 1
    assert "n_layers" not in experiment.model_kwargs("LightGCN", 0, params)
    # a profile parameter the model takes keeps its old route and key (Fig. 3's cached runs stay valid)
    assert key(run("DQRec", k=5)) == experiment.run_key(split, "DQRec", 0, dict(params, k=5))
    for model, setting, message in [("SASRec", dict(nosuch=3), "would ignore nosuch"),
                                    ("SASRec", dict(k=5), "would ignore k"),  # DQRec's K, not SASRec's
                                    ("SASRec", dict(seed=3), "--seed"),
                                    ("SASRec", dict(dim="abc"), "want an integer"),
                                    ("SASRec", dict(dropout=True), "want a number"),
                                    ("ItemKNN", dict(k=5), "chosen on validation")]:
        with pytest.raises(ValueError, match=message):
            run(model, **setting).params(params)


def test_the_command_line_refuses_a_bad_seed_or_setting(capsys):
    for argv, message in [(["--seed", "-1"], "non-negative integer"), (["--set", "dim"], "NAME=VALUE")]:
        with pytest.raises(SystemExit):
            sweep.main(["run", "--model", "SASRec", "--dataset", "ml-100k", "--profile", "test", *argv])
        assert message in capsys.readouterr().err
    with pytest.raises(ValueError, match="would ignore nosuch"):  # before any data is read
        sweep.main(["run", "--model", "SASRec", "--dataset", "no-such-data", "--profile", "test", "--set", "nosuch=1"])


def test_histories_are_each_runs_own_validation_curve(tmp_path):
    """``Outcome.histories``: one row per epoch each trained run ran (as its result rows say), under its
    own label; its best validation score is at the epoch it kept; a closed-form model has no rows."""
    params = experiment.profile_params("test", progress=False, epochs=8)
    variations = [{"patience": 1}, {"patience": 4}]
    runs = sweep.product(params, ["planted"], ["temporal"], ["MF-BPR"], [0], variations=variations,
                         labels=[{"patience": v["patience"]} for v in variations])
    runs += sweep.product(params, ["planted"], ["temporal"], ["MostPopular"], [0])
    cache = tmp_path / "runs"
    out = sweep.execute(runs, params, cache, splits={("planted", "temporal"): planted_split()}, progress=False, log=None)
    hist = out.histories(cache)
    assert set(hist.model) == {"MF-BPR"} and list(hist.columns[-3:]) == ["patience", "epoch", "valid"]
    ran = out.results[out.results.model == "MF-BPR"].drop_duplicates("patience").set_index("patience")
    assert ran.epochs_run.nunique() == 2, "the two patiences should stop at different epochs on this split"
    for patience, curve in hist.groupby("patience"):
        assert list(curve.epoch) == list(range(1, ran.epochs_run[patience] + 1))
        assert curve.epoch[curve.valid.idxmax()] == ran.best_epoch[patience]

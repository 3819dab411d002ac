"""Profiles, provenance files and the cached experiment runner."""
import json

import numpy as np
import pytest

from dqrec import experiment
import pandas as pd

from dqrec.evaluate import equivalent_full_k
from dqrec.registry import make_model
from tests.test_augment_model import planted_split


def test_profiles_and_overrides():
    p = experiment.profile_params("test", epochs=7, seeds=None)
    assert p["epochs"] == 7 and p["seeds"] == experiment.PROFILES["test"]["seeds"] and p["profile"] == "test"
    assert all(p[k] == v for k, v in experiment.PAPER_HPARAMS.items())
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        experiment.profile_params("fast")


def test_write_table_records_provenance(tmp_path, monkeypatch):
    monkeypatch.setenv("DQREC_RESULTS_DIR", str(tmp_path))
    import pandas as pd

    params = experiment.profile_params("test")
    out = experiment.write_table(pd.DataFrame({"a": [1, 2]}), "demo", params, 1.234, checksums={"x": "abc"})
    assert out == tmp_path / "test" / "demo.csv"
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["params"]["profile"] == "test" and meta["wall_seconds"] == 1.23 and meta["rows"] == 2
    assert meta["checksums"] == {"x": "abc"} and meta["git_sha"]
    assert experiment.results_dir("paper") == tmp_path  # only the paper profile writes results/ itself


def test_run_models_caches_and_resumes(tmp_path, monkeypatch):
    split = planted_split()
    params = experiment.profile_params("test")
    ranks = {}
    first = experiment.run_models(split, ["MostPopular", "EASE"], [0], params, progress=False, ranks=ranks,
                                  cache=tmp_path)
    assert set(first.protocol) == {"in_batch", "full"} and set(first.model) == {"MostPopular", "EASE"}
    assert len(list(tmp_path.glob("*.csv"))) == 2 and ("planted", "temporal", "EASE") in ranks
    assert 1 <= equivalent_full_k(ranks[("planted", "temporal", "EASE")], 10) <= split.n_items

    def no_fitting(*args, **kwargs):
        raise AssertionError("a cached run was recomputed")

    monkeypatch.setattr(experiment, "fit_model", no_fitting)
    again = experiment.run_models(split, ["MostPopular", "EASE"], [0], params, progress=False, cache=tmp_path)
    assert again["value"].tolist() == first["value"].tolist()
    # a parameter EASE does not take leaves its key alone; one it takes (no tuning grid) changes it
    experiment.run_models(split, ["EASE"], [0], dict(params, k=5), progress=False, cache=tmp_path)
    with pytest.raises(AssertionError, match="recomputed"):
        experiment.run_models(split, ["EASE"], [0], dict(params, tune=False), progress=False, cache=tmp_path)


def test_unknown_model():
    with pytest.raises(ValueError, match="unknown model 'NoSuchModel'"):
        experiment.fit_model("NoSuchModel", planted_split(), 0, experiment.profile_params("test"))


def test_table2_beside_paper_and_mean_sd_table():
    import pandas as pd

    stats = pd.DataFrame([dict(dataset="ml-1m", subset="all", users=6040, items=3706, interactions=1000209,
                               density_percent=4.468)])
    t = experiment.table2_beside_paper(stats)
    ml = t[t.dataset == "MovieLens"].iloc[0]
    assert ml.paper_users == 6034 and ml.users == 6040 and ml.density == 4.47
    assert t[t.dataset == "Netflix"].ours.iloc[0] == "netflix: not available here"
    summary = pd.DataFrame(dict(dataset="d", split="temporal", protocol="full", model=["A", "B"] * 3,
                                metric=["Recall"] * 4 + ["NDCG"] * 2, k=[10, 10, 5, 5, 10, 10],
                                mean=[0.5, 0.25, 0.4, 0.2, 0.3, 0.1], std=[0.01, 0.0] * 3, count=[3, 1] * 3))
    cells = experiment.mean_sd_table(summary, "d", "temporal", "full", ["B", "A"])
    assert cells.index.tolist() == ["B", "A"] and cells.loc["A", "Recall@10"] == "0.5000 ± 0.0100"
    assert cells.loc["B", "Recall@10"] == "0.2500"  # one run: no '± 0.0000'
    assert cells.columns.tolist() == ["Recall@5", "Recall@10", "NDCG@10"]  # in metric and k order


def test_ablation_variants_switch_off_their_part():
    """'DQRec <variant>' is DQRec with the variant's flags and the profile's K; unknown variants are refused."""
    params = experiment.profile_params("test")
    for variant, flags in experiment.ABLATIONS.items():
        kw = experiment.model_kwargs(f"DQRec {variant}", 0, params)
        model = make_model(f"DQRec {variant}", **kw)
        assert all(getattr(model, f) is v for f, v in flags.items()) and model.k == params["k"]
    with pytest.raises(ValueError, match="unknown model 'DQRec w/o IDs'"):
        experiment.fit_model("DQRec w/o IDs", planted_split(), 0, params)


@pytest.mark.parametrize("name", ["NCF", "NGCF", "LightGCN", "HCCF"])
def test_baselines_keep_their_authors_depth_under_the_paper_profile(name):
    """The paper profile's n_layers is DQRec's codebook depth L = 4; a graph baseline's n_layers is its
    propagation depth and must stay at its authors' default (LightGCN 3, HCCF 2, ...)."""
    import inspect

    params = experiment.profile_params("paper")
    model = make_model(name, **experiment.model_kwargs(name, 0, params))
    default = inspect.signature(type(model).__init__).parameters["n_layers"].default
    assert model.n_layers == default != params["n_layers"]
    assert make_model("DQRec", **experiment.model_kwargs("DQRec", 0, params)).n_layers == params["n_layers"]


def test_model_settings_show_what_each_model_runs_with():
    params = experiment.profile_params("paper")
    table = experiment.model_settings(["DQRec", "LightGCN", "EASE"], params).set_index("model")
    assert "n_layers=4" in table.settings["DQRec"] and "n_layers" in table.from_profile["DQRec"]
    assert "n_layers=3" in table.settings["LightGCN"] and table.from_profile["LightGCN"] == "none"
    assert "l2=tuned on validation" in table.settings["EASE"]


@pytest.mark.parametrize("name,param", [("EASE", "l2"), ("ItemKNN", "k")])
def test_tuned_baselines_pick_the_best_validation_point(name, param):
    split = planted_split()
    params = experiment.profile_params("test")  # holds DQRec's k, which ItemKNN's k must not take
    model = experiment.fit_model(name, split, 0, params)
    tried = pd.DataFrame(model.tuning_)
    assert list(tried[param]) == experiment.TUNING_GRIDS[name][param]
    assert getattr(model, param) == tried.loc[tried.valid.idxmax(), param]


def test_ablation_changes_and_table():
    import pandas as pd

    rows = [dict(dataset="d", split="temporal", protocol="in_batch", metric="Recall", k=5, model=m, seed=s, value=v)
            for m, s, v in [("DQRec", 0, 0.5), ("DQRec", 1, 0.4), ("DQRec w/o Lat.", 0, 0.45),
                            ("DQRec w/o Lat.", 1, 0.42), ("EASE", 0, 0.9)]]
    changes = experiment.ablation_changes(pd.DataFrame(rows))
    ours = changes[changes.source == "ours"].set_index(["variant", "seed"]).change
    assert ours[("w/o Lat.", 0)] == pytest.approx(-0.1) and ours[("w/o Lat.", 1)] == pytest.approx(0.05)
    assert ours[("DQRec", 0)] == 0 and "EASE" not in changes.variant.values
    paper = changes[(changes.source == "paper") & (changes.dataset == "MovieLens")].set_index("variant")
    assert paper.loc["w/o Lat.", "change"] == pytest.approx(0.6066 / 0.6204 - 1)
    table = experiment.ablation_table(changes)
    assert table.index[-1] == "DQRec" and table.index[0] == "w/o Feat.Aug. User"
    assert table.loc["w/o Lat.", ("ours", "d", "temporal")] == "0.4350 ± 0.0212 (-2.5%)"
    assert table.loc["w/o Lat.", ("paper", "MovieLens", "paper")] == "0.6066 (-2.2%)"
    one_seed = experiment.ablation_table(changes[changes.seed != 1])
    assert one_seed.loc["w/o Lat.", ("ours", "d", "temporal")] == "0.4500 (1 seed) (-10.0%)"


def test_run_keys_are_distinct_plain_file_names():
    split = planted_split()
    params = experiment.profile_params("test")
    keys = [experiment.run_key(split, m, 0, params) for m in experiment.MODEL_NAMES + experiment.ABLATION_MODELS[:-1]]
    assert len(set(keys)) == len(keys)
    assert all("/" not in key and "." not in key and " " not in key for key in keys)
    assert experiment.run_key(split, "MF-BPR", 0, params).startswith("planted_temporal_MF-BPR_s0_")
    # a training bar (sweep --progress) is not part of what a run is; its training length is
    assert experiment.run_key(split, "DQRec", 0, dict(params, progress=True)) == experiment.run_key(
        split, "DQRec", 0, dict(params, progress=False))
    assert experiment.run_key(split, "DQRec", 0, dict(params, epochs=3)) != experiment.run_key(split, "DQRec", 0, params)


def test_history_lengths():
    from types import SimpleNamespace

    import numpy as np

    split = SimpleNamespace(user_seq=np.array([[-1, -1], [1, -1], [1, 2], [3, 4]]),
                            samples=pd.DataFrame({"part": ["train", "test", "test", "valid"]}))
    out = experiment.history_lengths(split)
    assert out.loc["train"].tolist() == [1.0, 0.0] and out.loc["test"].tolist() == [0.0, 0.5]
    assert out.loc["valid"].tolist() == [0.0, 1.0]


def test_findings_sentences_follow_the_numbers():
    summary = pd.DataFrame(dict(dataset="d", split="temporal", protocol="full", metric="Recall", k=10,
                                model=["DQRec", "DualTower", "EASE"], mean=[0.2, 0.1, 0.3], std=[0.01, 0.02, 0.0],
                                count=[3, 3, 1]))
    text = experiment.table1_findings(summary)
    assert "best EASE (0.3000)" in text and "DQRec 0.2000 vs DualTower 0.1000 (+100%, beyond the seed sd of 0.0200)" in text
    assert "DQRec is -33% from the best" in text
    close = summary.assign(mean=[0.11, 0.1, 0.3])
    assert "within the seed sd" in experiment.table1_findings(close)
    one = experiment.pair_findings(summary, [("DQRec", "EASE")])
    assert "one seed: no spread to judge it by" in one


@pytest.mark.parametrize("name", ["SASRec", "DualTower"])
def test_run_record_keeps_the_epoch_log(name):
    """The .json beside a run holds its training log, one entry per epoch (a sequential model's own
    ``history_`` is its input sequences, which the record once stored instead)."""
    split = planted_split()
    rows, _, record = experiment.compute_run(split, name, 0, dict(epochs=2, patience=2, seq_len=8, progress=False))
    assert isinstance(record["history"], list) and len(record["history"]) == rows.epochs_run.iloc[0] == 2
    assert {"epoch", "loss", "valid"} <= set(record["history"][0])


def test_variant_comparison_findings_and_summary():
    rows = []
    for scheme, value, seconds, epochs in (("sequences", 0.15, 60.0, 20), ("prefixes", 0.20, 1200.0, 10)):
        for seed in (0, 1):
            for protocol in ("full", "in_batch"):
                for metric in ("Recall", "NDCG"):
                    rows.append(dict(dataset="d", split="temporal", protocol=protocol, model="SASRec", metric=metric,
                                     k=10, seed=seed, value=value + 0.01 * seed + (protocol == "in_batch") * 0.1,
                                     fit_seconds=seconds, epochs_run=epochs, best_epoch=epochs - 5, scheme=scheme,
                                     stopped_by="max_epochs" if (scheme, seed) == ("prefixes", 1) else "patience"))
    rows.append(dict(rows[0], model="VQRec"))
    table = experiment.variant_comparison(pd.DataFrame(rows), "scheme")
    sas = table[table.model == "SASRec"].set_index("scheme")
    assert sas.loc["sequences", "Recall@10 full"] == pytest.approx(0.155)
    assert sas.loc["prefixes", "fit_minutes"] == pytest.approx(20.0) and sas.loc["prefixes", "seeds"] == 2
    assert sas.loc["prefixes", "best_epoch"] == 5
    assert "NDCG@10 full" in sas and "NDCG@10 full" not in experiment.variant_comparison(pd.DataFrame(rows), "scheme", ("Recall",))
    text = experiment.variant_findings(table, "scheme", "sequences", "prefixes")
    assert "0.1550 trained on sequences, 0.2050 trained on prefixes (x0.76; in-batch 0.2550 and 0.3050, x0.84)" in text
    assert "(20 and 10 epochs, best 15 and 5; 2 seed(s)). **Trained on prefixes, 1 seed(s) reached the epoch cap**" in text
    assert sas.loc["sequences", "capped"] == 0 and "trained on sequences, 1" not in text
    assert "VQRec on d (temporal): only trained on sequences ran." in text
    # the patience check: three models, each better with more patience but by different amounts
    rows = [dict(dataset="d", split="temporal", protocol=p, model=m, metric="Recall", k=10, seed=0,
                 value=v * (1 + gain * (patience == 20)), fit_seconds=60.0, epochs_run=10, best_epoch=5, patience=patience,
                 stopped_by="max_epochs" if (m, patience) == ("SASRec", 20) else "patience")
            for m, v, gain in (("DQRec", 0.30, 0.0), ("SASRec", 0.25, 0.4), ("LightGCN", 0.10, 0.1))
            for patience in (5, 20) for p in ("full", "in_batch")]
    summary = experiment.variant_summary(experiment.variant_comparison(pd.DataFrame(rows), "patience"), "patience", 5, 20)
    assert summary.startswith("With patience 20 instead of patience 5, in-batch Recall@10 (d temporal) changed by a "
                              "median of +10.0% over 3 models, from +0.0% (DQRec) to +40.0% (SASRec)")
    assert summary.endswith("DQRec ranks 1 of 3 with patience 5 and 2 with patience 20; SASRec reached the epoch cap "
                            "with patience 20, so may gain more.")


def rekey_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("rekey_runs", experiment.ROOT / "scripts" / "rekey_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rekey_carries_the_checkpoint_of_an_unfinished_run_of_a_checked_change_only(tmp_path):
    """An unfinished run's checkpoint folder, named by the key under the old code, moves to today's key
    when that change was checked and agreed; a folder of an unchecked change stays where it is."""
    from dqrec import sweep

    rekey = rekey_script()
    params = experiment.profile_params("test", progress=False)
    splits = sweep.Splits({("planted", "temporal"): planted_split()})
    run = sweep.Run("planted", "temporal", "SASRec", 1)
    today = experiment.run_key(splits(run, params), "SASRec", 1, run.params(params))
    spec = experiment.run_spec(splits(run, params), "SASRec", 1, run.params(params))
    old = today[:-12] + rekey.key_of(dict(spec, code="old000000000"))
    (tmp_path / old).mkdir()
    rekey.carry_checkpoints(tmp_path, {today: run}, {"SASRec": "old000000000"}, set(), params, splits, False)
    assert [p.name for p in tmp_path.iterdir()] == [old]  # not checked: left
    checked = {("old000000000", experiment.code_version("SASRec"))}
    rekey.carry_checkpoints(tmp_path, {today: run}, {"SASRec": "old000000000"}, checked, params, splits, False)
    assert [p.name for p in tmp_path.iterdir()] == [today]


def test_rekey_verification_tells_a_recomputed_run_from_a_different_one(tmp_path):
    """scripts/rekey_runs.py --verify renames a code change's runs only if a recomputed run is the cached
    one bit for bit: any other metric value, sample rank or epoch loss must be reported."""
    import copy

    rekey = rekey_script()
    split, params = planted_split(), experiment.profile_params("test", progress=False)
    res, ranks, record = experiment.compute_run(split, "MF-BPR", 0, params)
    path = tmp_path / "run.json"
    experiment.write_run(path, {"model": "MF-BPR"}, res, ranks, record)
    again = experiment.compute_run(split, "MF-BPR", 0, params)
    assert rekey.same_run(path, again) is None
    other = res.copy()
    other.loc[3, "value"] = np.nextafter(other.loc[3, "value"], 1)
    assert "metrics differ" in rekey.same_run(path, (other, ranks, record))
    moved = {k: v.copy() for k, v in ranks.items()}
    moved["full"][0] += 1
    assert "ranks differ" in rekey.same_run(path, (res, moved, record))
    later = copy.deepcopy(record)
    later["history"][-1]["loss"] *= 1 + 1e-6
    assert "histories differ" in rekey.same_run(path, (res, ranks, later))
    later = copy.deepcopy(record)
    later["history"][0]["valid"] += 1e-12
    assert "histories differ" in rekey.same_run(path, (res, ranks, later))


def test_run_minutes_is_one_cell_per_model_and_data_mean_over_seeds():
    rows = [dict(dataset=d, split="temporal", model=m, seed=s, fit_seconds=f, eval_seconds=60.0, metric=metric)
            for d, m, s, f in (("ml-1m", "NCF", 0, 540.0), ("ml-1m", "NCF", 1, 660.0), ("ml-100k", "NCF", 0, 0.0),
                               ("ml-100k", "SASRec", 0, 120.0)) for metric in ("Recall", "NDCG")]  # 2 rows per run
    table = experiment.run_minutes(pd.DataFrame(rows), ["SASRec", "NCF", "DuoRec"])
    assert list(table.index) == ["SASRec", "NCF", "DuoRec"] and list(table.columns) == ["ml-1m temporal", "ml-100k temporal"]
    assert table.loc["NCF", "ml-1m temporal"] == 11.0 and table.loc["NCF", "ml-100k temporal"] == 1.0
    assert table.loc["SASRec", "ml-100k temporal"] == 3.0 and table.loc["DuoRec"].isna().all()
    assert np.isnan(table.loc["SASRec", "ml-1m temporal"])

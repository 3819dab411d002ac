"""The one trainer, the registry, and tests that fail when a model is broken (issue 8)."""
import numpy as np
import pandas as pd
import pytest
import torch

from dqrec import augment, experiment, train
from dqrec.evaluate import evaluate
from dqrec.model import DQRec, DualTower
from dqrec.registry import Recommender, make_model, model_names
from tests.test_augment_model import planted_split


# ----------------------------------------------------------------------------- the trainer
class Line(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))


def fit_line(scores, patience=2, epochs=50):
    """Train w towards 1 while validation returns scores[epoch - 1] (then the last one)."""
    net, calls = Line(), []

    def validate():
        calls.append(float(net.w.detach()))
        return scores[min(len(calls), len(scores)) - 1]

    trainer = train.Trainer(epochs=epochs, patience=patience, lr=0.1, batch_size=4, progress=False)
    trainer.fit(net, 8, lambda idx, rng: torch.ones(len(idx)), lambda b: ((net.w - 1) ** 2 * b).mean(), validate)
    return trainer, net, calls


def test_trainer_stops_on_validation_and_restores_the_best_state():
    trainer, net, calls = fit_line([0.1, 0.3, 0.2, 0.25, 0.2, 0.1])
    s = trainer.summary()
    assert s["stopped_by"] == "patience" and s["best_epoch"] == 2 and s["epochs_run"] == 4
    assert float(net.w.detach()) == pytest.approx(calls[1])  # the weights of epoch 2, not of the last epoch
    assert {"data_seconds", "forward_seconds", "backward_seconds", "optimizer_seconds",
            "validation_seconds"} <= set(trainer.history_[0])


def test_trainer_cap_and_no_finite_score():
    trainer, _, _ = fit_line(list(np.linspace(0, 1, 10)), epochs=5)
    assert trainer.summary()["stopped_by"] == "max_epochs" and trainer.summary()["best_epoch"] == 5
    with pytest.warns(RuntimeWarning, match="initial state"):
        _, net, _ = fit_line([float("nan")])
    assert float(net.w.detach()) == 0.0


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(patience=0), dict(lr=-1.0), dict(batch_size=0),
                                 dict(epochs=1.5), dict(epochs=True)])
def test_trainer_rejects_nonsense(bad):
    with pytest.raises(ValueError):
        train.Trainer(**bad)


def test_losses_are_the_papers():
    pos, neg = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 0.0])
    expected = -torch.log(torch.sigmoid(torch.sigmoid(pos) - torch.sigmoid(neg))).mean()  # Eq. 22-23
    assert float(train.sigmoid_bpr(pos, neg)) == pytest.approx(float(expected))
    assert float(train.bpr(pos, neg)) == pytest.approx(float(-torch.log(torch.sigmoid(pos - neg)).mean()))
    assert float(train.sigmoid_bpr(neg, pos)) > float(train.sigmoid_bpr(pos, neg))
    with pytest.raises(ValueError, match="sigmoid_bpr"):
        DQRec(loss="hinge")


def test_device_argument():
    assert train.resolve_device("cpu").type == "cpu"
    assert train.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            train.resolve_device("cuda")


# ----------------------------------------------------------------------------- the registry
def test_registry_contract():
    names = model_names()
    assert {"DQRec", "DualTower", "MF-BPR", "EASE", "ItemKNN", "MostPopular"} <= set(names)
    for name in names:
        model = make_model(name)
        assert isinstance(model, Recommender)
        params = model.get_params()
        assert type(model)(**{k: v for k, v in params.items()}).get_params() == params
    assert make_model("DQRec w/o Lat.").latent_exploration is False
    assert make_model("DQRec w/o Relat.Aug. All").get_params()["user_linkage_aug"] is False
    with pytest.raises(ValueError, match="unknown model 'NoSuchModel'"):
        make_model("NoSuchModel")
    with pytest.raises(ValueError, match="takes no parameter"):
        make_model("EASE", epochs=3)


def test_fitted_state_has_trailing_underscores():
    split = planted_split()
    model = DQRec(dim=8, hidden=16, epochs=1, batch_size=256, progress=False, **SEM).fit(split)
    assert {"net_", "trainer_", "history_", "split_"} <= set(vars(model))
    assert not [k for k in vars(model) if not k.endswith("_") and k not in model.get_params()]


# ----------------------------------------------------------------------------- models that must learn
KW = dict(dim=16, hidden=32, epochs=12, patience=12, batch_size=128, lr=3e-3, progress=False)
SEM = dict(n_layers=2, codebook_size=8, k=5, k_latent=1, representation_epochs=4)


def full_recall10(model, split):
    res = evaluate(model.scorer("test"), split.test, split.known(), split.n_items, protocols=("full",), ks=(10,),
                   progress=False)
    return float(res.set_index("metric").value["Recall"])


@pytest.fixture(scope="module")
def planted():
    split = planted_split(n_users=200, n_items=80, per_user=30)
    popular = make_model("MostPopular").fit(split)
    return split, full_recall10(popular, split)


@pytest.mark.parametrize("cls,extra", [(DQRec, SEM), (DualTower, {})])
def test_models_beat_most_popular_clearly(planted, cls, extra):
    """On planted two-group data a working model ranks the own group's items first. A flipped loss
    sign, or a model that learns nothing, lands at or below MostPopular."""
    split, popular = planted
    model = cls(**KW, **extra).fit(split)
    assert full_recall10(model, split) > popular + 0.15


def test_validation_never_sees_the_test_split():
    """Replacing every test positive by another item changes nothing in training or model selection."""
    split = planted_split()
    other = planted_split()
    test = other.samples.part.to_numpy() == "test"
    rng = np.random.default_rng(0)
    other.samples.loc[test, "item"] = rng.integers(0, other.n_items, test.sum())
    kw = dict(dim=8, hidden=16, epochs=4, patience=4, batch_size=256, progress=False)
    a, b = DualTower(**kw).fit(split), DualTower(**kw).fit(other)
    assert [h["valid"] for h in a.history_] == [h["valid"] for h in b.history_]
    assert a.trainer_.best_epoch_ == b.trainer_.best_epoch_


def test_candidate_items_are_scored_in_their_state_before_the_part():
    split = planted_split()
    model = DQRec(dim=8, hidden=16, epochs=1, batch_size=256, progress=False, **SEM).fit(split)
    times = split.samples.timestamp.to_numpy()
    for part in ("valid", "test"):
        rows = model.scorer(part).item_rows_
        assert (times[rows[rows >= 0]] < split.part(part).timestamp.min()).all()
    # Whatever happens at or after the test period does not move the items' scores.
    before = model.scorer("test").item_z.clone()
    late = np.flatnonzero(times >= split.test.timestamp.min())
    model.items_.seq.values[model.items_.seq.ptr[late.min()]:] = 0
    assert torch.equal(model.scorer("test").item_z, before)


# ----------------------------------------------------------------------------- neighbour ties
def test_neighbour_ties_do_not_favour_low_ids():
    """All stored users share one semantic ID: the K neighbours are all ties; they must not be the
    K lowest ids, and another seed picks others."""
    split = planted_split(n_users=200)
    z = np.ones((len(split.samples), 8))
    picks = {}
    for seed in (0, 1):
        aug = augment.augment_side(split, z, "user", n_layers=2, codebook_size=2, k=5, k_latent=0, seed=seed)
        picks[seed] = aug.explicit[split.test.index.to_numpy()]
    stored = np.flatnonzero(aug.store >= 0)
    assert picks[0].mean() > np.sort(stored)[:6].mean() + 30  # lowest-id preference would give ~2.5
    assert (picks[0] != picks[1]).any()


# ----------------------------------------------------------------------------- the run cache
def test_run_cache_keys_hold_params_and_code(tmp_path, monkeypatch):
    split = planted_split()
    params = experiment.profile_params("test")
    key = experiment.run_key(split, "DQRec", 0, params)
    assert experiment.run_key(split, "DQRec", 0, dict(params, k=7)) != key
    spec = experiment.run_spec(split, "DQRec", 0, params)
    assert {"dim", "hidden", "lr", "batch_size", "loss"} <= set(spec["params"])
    monkeypatch.setattr(experiment, "code_version", lambda model: "other-code")
    assert experiment.run_key(split, "DQRec", 0, params) != key


def test_run_code_is_the_models_own_import_closure():
    names = {p.relative_to(experiment.ROOT).as_posix() for p in experiment.run_code_files("DQRec")}
    assert {"dqrec/model.py", "dqrec/augment.py", "dqrec/codesearch.py", "dqrec/dqvae.py", "dqrec/representation.py",
            "dqrec/train.py", "dqrec/sampling.py"} == names
    ease = {p.name for p in experiment.run_code_files("EASE")}
    assert {"ease.py", "popular.py"} == ease  # another model's module never stales EASE's runs
    assert experiment.code_version("DQRec w/o Lat.") == experiment.code_version("DQRec")


def test_code_text_ignores_what_code_says_of_itself_only():
    """Docstrings and comments never stale a run; any change to what runs does, also right after a
    docstring with non-ASCII characters (ast counts its columns in bytes)."""
    src = ('def f(x):\n    """Eq. 22: σ(z_u·z_i) ≥ 0…"""\n    return x + 1  # the answer\n\n\n'
           'class A:\n    "doc"\n    y = "# not a comment"  # but this is\n')
    text = experiment.code_text(src)
    assert text == 'def f(x):\n    return x + 1\nclass A:\n    y = "# not a comment"'
    assert experiment.code_text(src.replace("≥ 0…", "is a probability").replace("the answer", "")) == text
    assert experiment.code_text(src.replace("x + 1", "x - 1")) != text
    assert experiment.code_text(src.replace('"""\n    return', '"""; y = 2\n    return')) != text


def test_run_code_counts_the_evaluator_version(monkeypatch):
    from dqrec import evaluate

    before = experiment.code_version("EASE")
    experiment.code_version.cache_clear()
    monkeypatch.setattr(evaluate, "EVALUATOR_VERSION", evaluate.EVALUATOR_VERSION + 1)
    assert experiment.code_version("EASE") != before
    experiment.code_version.cache_clear()


def test_truncated_cache_entries_are_recomputed(tmp_path):
    split = planted_split()
    params = experiment.profile_params("test")
    first = experiment.run_models(split, ["MostPopular"], [0], params, progress=False, cache=tmp_path)
    csv = next(tmp_path.glob("*.csv"))
    assert not list(tmp_path.glob(".*tmp"))  # atomic writes leave no temporary files
    csv.write_text(csv.read_text()[:200])
    with pytest.warns(RuntimeWarning, match="ignoring the cached run"):
        again = experiment.run_models(split, ["MostPopular"], [0], params, progress=False, cache=tmp_path)
    pd.testing.assert_frame_equal(first.drop(columns=["fit_seconds", "eval_seconds"]),
                                  again.drop(columns=["fit_seconds", "eval_seconds"]))
    csv.with_suffix(".npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        experiment.run_models(split, ["MostPopular"], [0], params, progress=False, cache=tmp_path)


# ----------------------------------------------------------------------------- papermill parameters
@pytest.mark.parametrize("bad,match", [(dict(main_dataset="ml100k"), "unknown dataset"),
                                       (dict(datasets=["ml-100k", "ml100k"]), "unknown dataset"),
                                       (dict(epochs=-1), "positive integer"), (dict(epochs=2.5), "positive integer"),
                                       (dict(seeds=[0, -1]), "non-negative"), (dict(k_latent=-2), "non-negative")])
def test_profile_parameters_are_checked_before_anything_runs(bad, match):
    with pytest.raises(ValueError, match=match):
        experiment.profile_params("test", **bad)


def test_a_single_dataset_or_seed_becomes_a_list():
    p = experiment.profile_params("test", datasets="ml-100k", seeds=3)
    assert p["datasets"] == ["ml-100k"] and p["seeds"] == [3]


def test_read_only_results_fail_before_fitting(tmp_path, monkeypatch):
    import os
    if os.geteuid() == 0:  # root writes anywhere: simulate the failure
        monkeypatch.setattr(experiment.Path, "write_text", lambda *a, **k: (_ for _ in ()).throw(OSError(13, "Permission denied")))
    else:
        tmp_path.chmod(0o500)
    monkeypatch.setattr(experiment, "fit_model", lambda *a, **k: pytest.fail("fitted before checking the cache"))
    with pytest.raises(PermissionError, match="cannot write results"):
        experiment.run_models(planted_split(), ["MostPopular"], [0], experiment.profile_params("test"),
                              progress=False, cache=tmp_path / "runs")


@pytest.mark.parametrize("make", [lambda: DQRec(epochs=0), lambda: DQRec(k=0), lambda: DQRec(n_layers=3),
                                  lambda: DQRec(codebook_size=1), lambda: DQRec(k_latent=-1), lambda: DQRec(dim=0),
                                  lambda: make_model("MF-BPR", epochs=0), lambda: make_model("MF-BPR", dim=0),
                                  lambda: DualTower(patience=0)])
def test_model_parameters_are_checked_at_construction(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize("bad,match", [(dict(k=5000), "k \\(K=5000\\)"), (dict(codebook_size=2000), "codebook_size")])
def test_k_and_codebook_size_are_checked_against_the_data_before_training(bad, match, monkeypatch):
    from dqrec.representation import RepresentationModel

    monkeypatch.setattr(RepresentationModel, "fit", lambda *a, **k: pytest.fail("trained before checking the data"))
    with pytest.raises(ValueError, match=match):
        DQRec(progress=False, **bad).fit(planted_split())


def test_run_keys_follow_content_not_files():
    """The same data read from a mirror or a fresh download (other file bytes) shares its run keys."""
    a, b = planted_split(), planted_split()
    b.params["checksum"] = "another-file-hash"
    params = experiment.profile_params("test")
    assert experiment.run_key(a, "EASE", 0, params) == experiment.run_key(b, "EASE", 0, params)
    b.samples.loc[b.samples.index[-1], "item"] = (b.samples.item.iloc[-1] + 1) % b.n_items
    b.params.pop("fingerprint", None)
    assert experiment.run_key(a, "EASE", 0, params) != experiment.run_key(b, "EASE", 0, params)


def test_sweep_script_defaults_to_an_uncommitted_profile_and_explains_itself():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "scripts/run_sweep.py", "--help"], capture_output=True, text=True,
                         cwd=experiment.ROOT, check=True).stdout
    assert "default: quick" in out and "--seeds" in out and "--models" in out

"""Resumable training (issue 11): a fit killed after some epochs and started again in the same
checkpoint folder ends exactly where an uninterrupted fit ends, for every gradient-trained model."""
import inspect

import numpy as np
import pandas as pd
import pytest

from dqrec import train
from dqrec.evaluate import validation_criterion
from dqrec.registry import make_model, model_names
from tests.sequences import make_split

EPOCHS = dict(epochs=4, patience=4, progress=False, device="cpu", seed=3)
SEQ = dict(dim=16, max_len=8, batch_size=64, lr=5e-3)
GRAPH = dict(dim=16, lr=0.01, batch_size=128)
MODELS = {
    "DQRec": dict(dim=16, hidden=32, batch_size=128, lr=3e-3, n_layers=2, codebook_size=8, k=5, k_latent=1,
                  representation_epochs=2),
    "DualTower": dict(dim=16, hidden=32, batch_size=128, lr=3e-3),
    "MF-BPR": dict(dim=16, batch_size=128, lr=0.01),
    "NCF": GRAPH, "NGCF": GRAPH, "LightGCN": GRAPH, "HCCF": dict(GRAPH, n_hyperedges=16),
    "SimRec": dict(GRAPH, n_distill_triples=500),
    "SASRec": SEQ, "BERT4Rec": SEQ, "CL4SRec": SEQ, "DuoRec": SEQ, "ICLRec": dict(SEQ, n_intents=8),
    "VQRec": dict(SEQ, text_dim=32, n_code_groups=8, n_codewords=16),
    "MAERec": dict(SEQ, n_seeds=5, reconstruction_batch=128, n_reconstruction_negatives=8, mask_steps=7),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Killed(Exception):
    """Stands for the process being killed during an epoch."""


@pytest.fixture(scope="module")
def split():
    rng = np.random.default_rng(0)
    rows = []
    for u in range(90):
        start, t0 = rng.integers(0, 40), rng.integers(0, 1000)
        rows += [(u, int((start + k * rng.integers(1, 3)) % 40), 5.0, float(t0 + k)) for k in range(12)]
    ratings = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"]).drop_duplicates(["user", "item"])
    return make_split(ratings)


def fit(name, split, folder=None, kill_after=None):
    """Fit ``name``; with ``kill_after``, raise Killed in the validation after that many epochs (of all
    the fits the model makes, SimRec's teacher included)."""
    criterion, calls = validation_criterion(split, EPOCHS["seed"]), [0]

    def validate(model):
        calls[0] += 1
        if kill_after is not None and calls[0] > kill_after:
            raise Killed
        return criterion(model)

    model = make_model(name, **MODELS[name], **EPOCHS)
    if folder is None:
        return model.fit(split, validate=validate)
    with train.resumable(folder):
        return model.fit(split, validate=validate)


def outcome(model, split):
    history = [{k: v for k, v in h.items() if not k.endswith("_seconds")} for h in model.trainer_.history_]
    return history, model.score(split.test.iloc[:40], np.arange(split.n_items))


@pytest.mark.parametrize("name,kill_after", [(n, 2) for n in sorted(MODELS)] + [("SimRec", 6)])
def test_a_killed_fit_resumes_to_the_same_result(split, tmp_path, name, kill_after):
    """Killed in the 3rd epoch (SimRec also in its student's 2nd, after the teacher's 4)."""
    straight = outcome(fit(name, split), split)
    with pytest.raises(Killed):
        fit(name, split, tmp_path, kill_after=kill_after)
    assert (tmp_path / "fit0.pt").exists() and (tmp_path / "fit1.pt").exists() == (kill_after > EPOCHS["epochs"])
    resumed = outcome(fit(name, split, tmp_path), split)
    assert resumed[0] == straight[0]  # every epoch's loss and validation score, bit for bit
    np.testing.assert_array_equal(resumed[1], straight[1])
    again = outcome(fit(name, split, tmp_path), split)  # a finished fit's checkpoint gives the fitted model
    np.testing.assert_array_equal(again[1], straight[1])


def test_every_trained_model_is_covered():
    trained = {type(make_model(n)).__name__ for n in model_names() if "epochs" in inspect.signature(
        type(make_model(n)).__init__).parameters}
    assert trained <= {type(make_model(n)).__name__ for n in MODELS}


def test_a_checkpoint_of_another_run_is_refused(split, tmp_path):
    with pytest.raises(Killed):
        fit("MF-BPR", split, tmp_path, kill_after=1)
    other = make_model("MF-BPR", **dict(MODELS["MF-BPR"], lr=0.02), **EPOCHS)
    with train.resumable(tmp_path), pytest.raises(ValueError, match="another training run"):
        other.fit(split)

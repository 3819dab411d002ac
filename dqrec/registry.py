"""One registry of models by name, and the contract every model keeps.

Every model is a :class:`Recommender`: hyper-parameters at construction (``get_params()`` returns
them), ``fit(split) -> self`` on ``split.train`` (trained models stop early on ``split.valid``),
fitted state in attributes with a trailing underscore, and ``score(batch, items)`` for
:func:`dqrec.evaluate.evaluate`. ``scorer(part)`` is the evaluator's one hook: a model whose
candidates change state over time (DQRec) returns a scorer with every candidate in its state before
``part`` starts; the default is the model itself.

    model = make_model("EASE", l2=200.0).fit(split)
    model = make_model("DQRec w/o Lat.", seed=1)      # a Table 3 variant: DQRec with flags set
"""
from __future__ import annotations

import inspect

import numpy as np


class Recommender:
    """Base of every model: parameters, the scorer hook and a readable repr."""

    def get_params(self) -> dict:
        """The constructor's parameters and their values (scikit-learn's convention)."""
        params = inspect.signature(type(self).__init__).parameters.values()
        return {p.name: getattr(self, p.name) for p in params
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}

    def scorer(self, part: str):
        """The object that scores samples of ``part`` ("valid" or "test")."""
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"


_REGISTRY: dict[str, tuple[type, dict]] = {}


def register(name: str, cls: type, **fixed) -> None:
    """Make ``cls`` (with the constructor arguments ``fixed``) available as ``name``."""
    _REGISTRY[name] = (cls, fixed)


def model_names() -> list[str]:
    _load()
    return list(_REGISTRY)


def make_model(name: str, **params) -> Recommender:
    """An unfitted model ``name`` with ``params``; unknown names and parameters are errors that list
    the choices."""
    _load()
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(_REGISTRY)}")
    cls, fixed = _REGISTRY[name]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = set(params) - accepted
    if unknown and "overrides" not in accepted:
        raise ValueError(f"{name} takes no parameter(s) {sorted(unknown)}; it takes {sorted(accepted)}")
    return cls(**{**params, **fixed})


def fit_tuned(name: str, split, grid: dict[str, list], validate, **params) -> Recommender:
    """Fit ``name`` once per point of ``grid`` (one parameter at a time, or a product for several)
    and keep the model with the best ``validate(model)``; ``tuning_`` lists every point's score."""
    import itertools

    keys = list(grid)
    best, best_score, tried = None, -np.inf, []
    for values in itertools.product(*(grid[k] for k in keys)):
        point = dict(zip(keys, values))
        model = make_model(name, **params, **point).fit(split)
        score = float(validate(model))
        tried.append(dict(point, valid=score))
        if score > best_score:
            best, best_score = model, score
    best.tuning_ = tried
    return best


def _load() -> None:
    """Register the built-in models (imported lazily: torch-free callers stay light)."""
    if _REGISTRY:
        return
    from .baselines import EASE, MFBPR, ItemKNN, MostPopular
    from .experiment import ABLATIONS
    from .model import DQRec, DualTower

    register("DQRec", DQRec)
    register("DualTower", DualTower)
    for name, cls in (("DQRec", DQRec), ("DualTower", DualTower)):  # BPR on raw dot products, not Eq. 22-23
        register(f"{name} raw-BPR", cls, loss="bpr")
    for variant, flags in ABLATIONS.items():
        register(f"DQRec {variant}", DQRec, **flags)
    register("MF-BPR", MFBPR)
    register("EASE", EASE)
    register("ItemKNN", ItemKNN)
    register("MostPopular", MostPopular)
    from .baselines.hccf import HCCF
    from .baselines.lightgcn import LightGCN
    from .baselines.ncf import NCF
    from .baselines.ngcf import NGCF
    from .baselines.simrec import SimRec

    for cls in (NCF, NGCF, LightGCN, HCCF, SimRec):  # the paper's collaborative and graph baselines
        register(cls.name, cls)
    from .baselines.bert4rec import BERT4Rec
    from .baselines.cl4srec import CL4SRec
    from .baselines.duorec import DuoRec
    from .baselines.iclrec import ICLRec
    from .baselines.sasrec import SASRec

    for cls in (SASRec, BERT4Rec, CL4SRec, DuoRec, ICLRec):  # sequential baselines (Table 1)
        register(cls.__name__, cls)
    from .baselines.maerec import MAERec
    from .baselines.vqrec import VQRec

    for cls in (MAERec, VQRec):  # sequential baselines with a transition graph / text codes (Table 1)
        register(cls.__name__, cls)

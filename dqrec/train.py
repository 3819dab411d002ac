"""One trainer for every gradient-trained model: mini-batches, Adam, early stopping, timings.

A model hands :class:`Trainer` its ``nn.Module`` and two callables,

* ``batch(idx, rng) -> batch``: the tensors of the training samples at positions ``idx`` (negatives
  drawn with ``rng``), already on the trainer's device (the *data* step);
* ``loss(batch) -> scalar tensor``: the forward pass and the loss (the *forward* step),

and a ``validate() -> float`` (higher is better, e.g. :func:`dqrec.evaluate.validation_criterion`).
Each epoch visits the samples in a seeded random order; after each epoch the model is validated, and
training stops once ``patience`` epochs in a row did not beat the best score. The best state is
restored. ``history`` records per epoch the mean loss, the validation score and the seconds spent
in each step (data, forward, backward, optimizer, validation), so a run says whether validation or
the epoch cap stopped it.

Resumable training: inside ``with resumable(folder):`` every :meth:`Trainer.fit` saves, after each epoch,
all that the next epochs depend on (weights, Adam's moments, the best state so far, the history, the
trainer's and torch's random generators, and the ``training_state`` attributes its owner model names)
to ``folder/fit<n>.pt`` (the n-th fit in the block), atomically; a fit that finds its file resumes
after the saved epoch, and a killed run continues where it stopped with the same result, bit for bit,
as if it had never stopped (tests check this for every registered model).

Losses (Eq. 22-23 and the options later models need) live in :data:`LOSSES`.
"""
from __future__ import annotations

import contextlib
import copy
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm


def bpr(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """BPR on raw scores (Rendle et al. 2009): mean of -ln sigma(s_ui - s_uj)."""
    return -nn.functional.logsigmoid(pos - neg).mean()


def sigmoid_bpr(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """The paper's Eq. 23 on Eq. 22's scores: -ln sigma(sigma(s_ui) - sigma(s_uj)), s = z_u . z_i."""
    return -nn.functional.logsigmoid(torch.sigmoid(pos) - torch.sigmoid(neg)).mean()


def softmax_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of (B, C) logits against (B,) target columns: full or sampled softmax."""
    return nn.functional.cross_entropy(logits, target)


LOSSES: dict[str, Callable[..., torch.Tensor]] = {"sigmoid_bpr": sigmoid_bpr, "bpr": bpr,
                                                  "softmax": softmax_cross_entropy}


def pairwise_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The pairwise loss called ``name`` ("sigmoid_bpr" or "bpr"), with a clear error otherwise."""
    if name not in ("sigmoid_bpr", "bpr"):
        raise ValueError(f"loss must be 'sigmoid_bpr' (the paper's Eq. 23) or 'bpr' (raw scores), got {name!r}")
    return LOSSES[name]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """"auto" (or None): CUDA when available, else CPU; anything else as torch understands it."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but torch sees no CUDA device; use device='auto' or 'cpu'")
    return device


STEPS = ("data", "forward", "backward", "optimizer", "validation")


@dataclass
class Trainer:
    """Adam + early stopping on validation, shared by DQRec, DualTower, MF-BPR and later neural models.

    epochs: the most epochs (a cap that should not bind: ``stopped_by`` says which ended the run);
    patience: epochs without a better validation score before stopping; precision: "fp32", or
    "bf16" for the forward pass under ``torch.autocast`` (bfloat16 matrix products, float32
    weights and optimizer; about 3x faster MLPs on CPUs with AVX-512 BF16; the paper names none).
    """

    epochs: int = 200
    patience: int = 5
    lr: float = 1e-3
    batch_size: int = 1024
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "auto"
    progress: bool = True
    desc: str = "train"
    precision: str = "fp32"
    history_: list = field(default_factory=list, init=False)

    def __post_init__(self):
        check_precision(self.precision)
        check_training_params(epochs=self.epochs, patience=self.patience, lr=self.lr, batch_size=self.batch_size)
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")

    def fit(self, net: nn.Module, n_samples: int, batch: Callable[[np.ndarray, np.random.Generator], Any],
            loss: Callable[[Any], torch.Tensor], validate: Callable[[], float],
            on_epoch: Callable[[int], None] | None = None, owner: Any = None) -> "Trainer":
        """Train ``net`` on ``n_samples`` training samples; restore the state of the best epoch.

        on_epoch(epoch): called before the first batch of every epoch (1-based), e.g. to redraw
            per-epoch partners or intents; owner: the model, whose ``training_state`` attributes (state
            kept between epochs outside ``net``: its own random generators, counters) a checkpoint holds.
        """
        if n_samples < 1:
            raise ValueError("no training samples")
        rng, device = np.random.default_rng(self.seed), next(net.parameters()).device
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay, fused=True)
        best, best_state, stale = -np.inf, copy.deepcopy(net.state_dict()), 0
        self.history_, self.best_epoch_, self.stopped_by_ = [], 0, "max_epochs"
        checkpoint = _next_checkpoint()
        fingerprint = self._fingerprint(net, n_samples)
        first, done = 1, False
        if checkpoint is not None and checkpoint.exists():
            saved = torch.load(checkpoint, weights_only=False)
            if saved["fingerprint"] != fingerprint:
                raise ValueError(f"{checkpoint} is the checkpoint of another training run: {saved['fingerprint']} "
                                 f"!= {fingerprint}; delete it to start afresh")
            net.load_state_dict(saved["net"])
            opt.load_state_dict(saved["opt"])
            best, best_state, stale = saved["best"], saved["best_state"], saved["stale"]
            self.history_, self.best_epoch_, self.stopped_by_ = saved["history"], saved["best_epoch"], saved["stopped_by"]
            rng.bit_generator.state = saved["rng"]
            _set_random_state(saved["torch_random"], device)
            _set_owner_state(owner, saved["owner"])
            first, done = saved["epoch"] + 1, saved["done"]
        bar = tqdm(range(first, self.epochs + 1), desc=self.desc, disable=not self.progress or done, leave=False,
                   initial=first - 1, total=self.epochs)
        for epoch in ([] if done else bar):
            net.train()
            seconds, total = dict.fromkeys(STEPS, 0.0), 0.0
            order = rng.permutation(n_samples)
            if on_epoch is not None:
                on_epoch(epoch)
            for start in range(0, n_samples, self.batch_size):
                t0 = time.perf_counter()
                b = batch(order[start:start + self.batch_size], rng)
                t1 = time.perf_counter()
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                    value = loss(b).float()
                t2 = time.perf_counter()
                opt.zero_grad(set_to_none=True)
                value.backward()
                t3 = time.perf_counter()
                opt.step()
                t4 = time.perf_counter()
                total += float(value.detach()) * min(self.batch_size, n_samples - start)
                for step, (a, z) in zip(STEPS, ((t0, t1), (t1, t2), (t2, t3), (t3, t4))):
                    seconds[step] += z - a
            net.eval()
            t0 = time.perf_counter()
            with torch.no_grad():
                score = float(validate())
            seconds["validation"] = time.perf_counter() - t0
            if not np.isfinite(total):
                raise FloatingPointError(f"{self.desc}: the training loss became {total} in epoch {epoch}")
            self.history_.append(dict(epoch=epoch, loss=total / n_samples, valid=score,
                                     **{f"{k}_seconds": round(v, 3) for k, v in seconds.items()}))
            bar.set_postfix(loss=f"{total / n_samples:.4f}", valid=f"{score:.4f}", best=f"{max(best, score):.4f}")
            if score > best:
                best, best_state, stale, self.best_epoch_ = score, copy.deepcopy(net.state_dict()), 0, epoch
            else:
                stale += 1
                if stale >= self.patience:
                    self.stopped_by_ = "patience"
            done = self.stopped_by_ == "patience" or epoch == self.epochs
            if checkpoint is not None:
                _save(checkpoint, dict(fingerprint=fingerprint, epoch=epoch, done=done, net=net.state_dict(),
                                       opt=opt.state_dict(), best=best, best_state=best_state, stale=stale,
                                       history=self.history_, best_epoch=self.best_epoch_,
                                       stopped_by=self.stopped_by_, rng=rng.bit_generator.state,
                                       torch_random=_random_state(device), owner=_owner_state(owner)))
            if done:
                break
        bar.close()
        if self.best_epoch_ == 0:
            warnings.warn(f"{self.desc}: no epoch gave a finite validation score; keeping the initial state",
                          RuntimeWarning, stacklevel=2)
        net.load_state_dict(best_state)
        net.eval()
        return self

    def _fingerprint(self, net: nn.Module, n_samples: int) -> dict:
        """What a checkpoint must match to be resumed: the settings of this fit and the net's shapes."""
        settings = {k: getattr(self, k) for k in ("epochs", "patience", "lr", "batch_size", "weight_decay", "seed",
                                                  "desc", "precision")}
        return dict(settings, n_samples=n_samples, shapes={k: tuple(v.shape) for k, v in net.state_dict().items()})

    def summary(self) -> dict:
        """Epochs run, the best epoch, what stopped training, and the mean seconds per epoch of each step."""
        steps = {f"{s}_seconds": float(np.mean([h[f"{s}_seconds"] for h in self.history_])) for s in STEPS}
        return dict(epochs_run=len(self.history_), best_epoch=self.best_epoch_, stopped_by=self.stopped_by_,
                    max_epochs=self.epochs, patience=self.patience, **steps)


def check_precision(precision: str) -> str:
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    return precision


def check_training_params(**params) -> None:
    """Raise ValueError for a non-positive epoch count, patience, learning rate or batch size."""
    for name, value in params.items():
        kind = float if name == "lr" else int
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        if not ok or (kind is int and int(value) != value) or not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a positive {'number' if kind is float else 'integer'}, got {value!r}")


# ---------------------------------------------------------------------------------------- checkpoints
_checkpoints: list = []  # the open resumable() blocks: [folder, fits started so far]


@contextlib.contextmanager
def resumable(folder: str | Path):
    """Within this block, every :meth:`Trainer.fit` checkpoints each epoch to ``folder/fit<n>.pt`` and
    resumes from that file when it exists (see the module docstring). Blocks do not nest."""
    if _checkpoints:
        raise RuntimeError("resumable() blocks do not nest")
    _checkpoints.append([Path(folder), 0])
    try:
        yield Path(folder)
    finally:
        _checkpoints.pop()


def _next_checkpoint() -> Path | None:
    if not _checkpoints:
        return None
    block = _checkpoints[-1]
    block[1] += 1
    return block[0] / f"fit{block[1] - 1}.pt"


def _save(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _random_state(device: torch.device) -> dict:
    return dict(cpu=torch.get_rng_state(), cuda=torch.cuda.get_rng_state(device) if device.type == "cuda" else None)


def _set_random_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if state["cuda"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def _owner_state(owner) -> dict:
    """The owner's ``training_state`` attributes (torch generators as their byte state)."""
    state = {}
    for name in getattr(owner, "training_state", ()):
        value = getattr(owner, name)
        state[name] = ("torch.Generator", value.get_state()) if isinstance(value, torch.Generator) else copy.deepcopy(value)
    return state


def _set_owner_state(owner, state: dict) -> None:
    for name, value in state.items():
        if isinstance(value, tuple) and len(value) == 2 and value[0] == "torch.Generator":
            getattr(owner, name).set_state(value[1])
        else:
            setattr(owner, name, value)

"""Leak checks a reader can rerun on fitted state: no input from the future or from held-out data.

Kept apart from the code a run depends on (:func:`dqrec.experiment.run_code_files`), so that adding a
check never changes a run's key.
"""
from __future__ import annotations

import numpy as np

from .augment import SideAugmentation
from .data import Split


def augmentation(split: Split, aug: SideAugmentation) -> dict:
    """That no neighbour comes from the future or from held-out data: every stored state is a training
    sample (under the temporal split, strictly before the first validation time), every neighbour is a
    stored entity, and no sample links to its own entity."""
    held = aug.store[aug.store >= 0]
    checks = {"store holds training samples only": bool((split.samples.part.to_numpy()[held] == "train").all())}
    if split.kind == "temporal" and len(split.valid):
        checks["store before validation"] = bool((split.samples.timestamp.to_numpy()[held]
                                                  < split.valid.timestamp.min()).all())
    checks["neighbours from the store"] = bool(np.isin(aug.neighbours[aug.neighbours >= 0],
                                                       np.flatnonzero(aug.store >= 0)).all())
    checks["no self-links"] = not bool((aug.neighbours == split.samples[aug.side].to_numpy()[:, None]).any())
    return checks

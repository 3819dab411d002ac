"""Training windows cut at a position: for models that read a whole window, not one position of it.

SASRec's windows (:func:`dqrec.baselines.sequential.training_windows`) are read causally, each target at
the latest position before it, so nothing at or after a target (valid and test rows included) reaches
it. Two models read every position of a window: BERT4Rec's bidirectional cloze and CL4SRec's augmented
views of the window. They first cut each window with :func:`cut_windows`, keeping its rows up to a
position (BERT4Rec: its last train row; CL4SRec: the latest position a target is read at), laid out as
histories are: left-padded, the latest kept row in the last position.
"""
from __future__ import annotations

import numpy as np


def cut_windows(rows: np.ndarray, last: np.ndarray) -> np.ndarray:
    """rows (B, L) sample rows (-1 padding), last (B,) a position per window -> (B, L): the rows at
    positions <= last, shifted right so that position ``last`` lands on L - 1; -1 on the left."""
    b, length = rows.shape
    source = np.arange(length)[None] - (length - 1 - np.asarray(last))[:, None]
    return np.where(source >= 0, rows[np.arange(b)[:, None], np.clip(source, 0, None)], -1)


def last_true(mask: np.ndarray) -> np.ndarray:
    """(B, L) bool, every row with a True -> (B,) the position of each row's last True."""
    if not mask.any(1).all():
        raise ValueError("every window needs a position to cut at")
    return mask.shape[1] - 1 - np.argmax(mask[:, ::-1], 1)

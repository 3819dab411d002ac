"""Plots the book shows; each takes data from the core and returns the matplotlib Figure."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .data import Split


def activity(split: Split) -> plt.Figure:
    """Positives per user and per item (log-log rank plots), the long tails CF has to live with."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for ax, side in zip(axes, ("user", "item")):
        counts = np.sort(np.bincount(split.samples[side].to_numpy()))[::-1]
        ax.loglog(np.arange(1, len(counts) + 1), counts)
        ax.set(xlabel=f"{side} rank", ylabel="positives", title=f"{split.name}: positives per {side}")
    fig.tight_layout()
    return fig


def split_timeline(split: Split, bins: int = 60) -> plt.Figure:
    """Histogram of positives over time, coloured by train / valid / test."""
    df = split.samples.assign(date=pd.to_datetime(split.samples.timestamp, unit="s"))
    fig, ax = plt.subplots(figsize=(10, 3.2))
    sns.histplot(df, x="date", hue="part", hue_order=["train", "valid", "test"], bins=bins, multiple="stack", ax=ax)
    ax.set(title=f"{split.name}: {split.kind} split of the positives along time", ylabel="positives")
    fig.tight_layout()
    return fig


def history_at_sample(split: Split) -> plt.Figure:
    """How much history (non-padded S_u length) test samples have, against train samples."""
    lengths = (split.user_seq >= 0).sum(1)
    df = pd.DataFrame({"|S_u|": lengths, "part": split.samples.part.to_numpy()})
    fig, ax = plt.subplots(figsize=(6, 3.2))
    sns.histplot(df, x="|S_u|", hue="part", stat="probability", common_norm=False, discrete=True, element="step", ax=ax)
    ax.set(title=f"{split.name}: length of the recent user sequence per sample")
    fig.tight_layout()
    return fig

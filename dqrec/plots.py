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


def table1_bars(summary: pd.DataFrame, metric: str = "Recall", k: int = 10) -> plt.Figure:
    """Mean metric@k per model (error bars: sd over seeds), one panel per (dataset, protocol), hue = split."""
    df = summary[(summary.metric == metric) & (summary.k == k)]
    grid = sns.catplot(df, x="model", y="mean", hue="split", col="protocol", row="dataset", kind="bar",
                       height=3.2, aspect=1.6, sharey=False, errorbar=None)
    for (row, col), ax in grid.axes_dict.items():
        sub = df[(df.dataset == row) & (df.protocol == col)]
        for bars, (_, part) in zip(ax.containers, sub.groupby("split", sort=False)):
            part = part.set_index("model").reindex([t.get_text() for t in ax.get_xticklabels()])
            ax.errorbar([b.get_x() + b.get_width() / 2 for b in bars], part["mean"], yerr=part["std"], fmt="none",
                        c="k", lw=1)
        ax.tick_params(axis="x", rotation=30)
    grid.set_axis_labels("", f"{metric}@{k}")
    return grid.figure


def protocol_relation(ranks: dict, k: int = 10, max_k: int = 100) -> plt.Figure:
    """Full-ranking Recall@K' against K', with each model's in-batch Recall@k marked where it meets the curve."""
    from .evaluate import equivalent_full_k

    fig, ax = plt.subplots(figsize=(7, 4))
    ks = np.arange(1, max_k + 1)
    for (dataset, split, model), r in ranks.items():
        curve = [(r["full"] < kk).mean() for kk in ks]
        line, = ax.plot(ks, curve, label=f"{model} ({dataset}, {split})")
        kk = equivalent_full_k(r, k)
        ax.scatter([min(kk, max_k)], [(r["in_batch"] < k).mean()], color=line.get_color(), zorder=3)
    ax.set(xlabel="K' (full ranking)", ylabel="Recall", title=f"Dots: in-batch Recall@{k} placed on the full-ranking curve")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig

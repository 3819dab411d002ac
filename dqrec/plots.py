"""Plots the book shows; each takes data from the core and returns the matplotlib Figure."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .data import Split
from .experiment import ABLATIONS
from .experiment import ablation_changes as relative_changes

PALETTE = "colorblind"  # Okabe-Ito-like, safe for the common colour-vision deficiencies
sns.set_palette(PALETTE)
SYMBOLS = {"k": "K", "codebook_size": "J", "n_layers": "L"}  # the paper's symbols for the swept parameters


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


def table1_bars(summary: pd.DataFrame, dataset: str, metric: str = "Recall", k: int = 10,
                models=None) -> plt.Figure:
    """One data set's mean metric@k per model (error bars: sd over seeds), hue = split; one page-wide
    panel per protocol, the paper's first, stacked so that twenty model names fit under the bars; a
    colour-blind-safe palette and the legend below. ``models``: the bars' order (default: as they come)."""
    df = summary[(summary.dataset == dataset) & (summary.metric == metric) & (summary.k == k)]
    models = [m for m in (models or dict.fromkeys(df.model)) if m in set(df.model)]
    splits = list(dict.fromkeys(df.split))
    protocols = sorted(set(df.protocol), key=lambda p: p != "in_batch")  # the paper's protocol first
    colours = dict(zip(splits, sns.color_palette("colorblind", len(splits))))
    fig, axes = plt.subplots(len(protocols), 1, figsize=(8, 2.6 * len(protocols) + 0.6), squeeze=False)
    width = 0.8 / len(splits)
    for ax, protocol in zip(axes[:, 0], protocols):
        for j, split in enumerate(splits):
            part = df[(df.protocol == protocol) & (df.split == split)].set_index("model").reindex(models)
            x = np.arange(len(models)) + (j - (len(splits) - 1) / 2) * width
            ax.bar(x, part["mean"], width, yerr=part["std"], color=colours[split], label=f"{split} split",
                   error_kw=dict(lw=1))
        ax.set_xticks(np.arange(len(models)), models, rotation=45, ha="right", rotation_mode="anchor", fontsize=8)
        ax.set_xlim(-0.6, len(models) - 0.4)
        ax.set(ylabel=f"{metric}@{k}")
        ax.set_title(f"{protocol} protocol", fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.suptitle(f"{dataset}: {metric}@{k}, mean over seeds (bars: sd)", fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=len(splits), frameon=False)
    return fig


def run_coverage(coverage: pd.DataFrame, models=None, title: str = "Runs behind the table") -> plt.Figure:
    """Which runs a table stands on: models (rows) x (data set, split) (columns), each cell ``done/planned``
    seeds (:meth:`dqrec.sweep.Outcome.coverage`), coloured by the share done; a cell with no run is
    hatched, so an empty row of the table reads as missing runs, not as a model that scored nothing.
    ``models``: the rows' order (default: as they come)."""
    cells = coverage.assign(column=coverage.dataset + "\n" + coverage.split)
    models, columns = list(models or dict.fromkeys(cells.model)), list(dict.fromkeys(cells.column))
    share = cells.assign(share=cells.done / cells.planned).pivot(index="model", columns="column", values="share")
    share = share.reindex(index=models, columns=columns)
    text = cells.assign(text=cells.done.astype(str) + "/" + cells.planned.astype(str)) \
        .pivot(index="model", columns="column", values="text").reindex(index=models, columns=columns).fillna("")
    fig, ax = plt.subplots(figsize=(min(8, 1.6 + 1.05 * len(columns)), 0.8 + 0.26 * len(models)))
    sns.heatmap(share, vmin=0, vmax=1, cmap="Blues", annot=text, fmt="", annot_kws=dict(fontsize=7.5), cbar=False,
                linewidths=0.5, linecolor="white", ax=ax)
    for (i, j) in zip(*np.nonzero(share.to_numpy() == 0)):
        ax.add_patch(plt.Rectangle((j, i), 1, 1, fill=False, hatch="///", edgecolor="0.75", lw=0))
    ax.set(xlabel="", ylabel="", title=f"{title}: seeds with results / seeds planned")
    ax.tick_params(labelsize=8, length=0)
    ax.xaxis.tick_top()
    ax.title.set_fontsize(9)
    fig.tight_layout()
    return fig


VERDICT_COLOURS = {"reproduced": "#1a9850", "partly reproduced": "#fdae61", "not reproduced": "#d73027",
                   "not testable here": "#bdbdbd"}


def verdict_overview(claims: pd.DataFrame, labels: dict | None = None) -> plt.Figure:
    """The verdict page at a glance: per chapter holding the evidence (rows, named by ``labels``: stem ->
    name, default :func:`dqrec.report.chapter_title`), the number of the paper's claims with each verdict,
    as stacked horizontal bars in the colours of :data:`VERDICT_COLOURS`."""
    from .findings import VERDICTS
    from .report import chapter_title

    stem = claims.evidence.fillna("").str.split("#").str[0].replace("", "(no chapter)")
    counts = pd.crosstab(stem, claims.verdict).reindex(columns=VERDICTS, fill_value=0)
    counts = counts.loc[sorted(counts.index, reverse=True)]  # the first chapter on top
    counts.index = [labels.get(s, s) if labels is not None else chapter_title(s) for s in counts.index]
    fig, ax = plt.subplots(figsize=(7.5, 0.6 + 0.36 * len(counts)))
    left = np.zeros(len(counts))
    for verdict in VERDICTS:
        n = counts[verdict].to_numpy()
        ax.barh(counts.index, n, left=left, color=VERDICT_COLOURS[verdict], label=f"{verdict} ({n.sum()})",
                edgecolor="white")
        for y, (x, w) in enumerate(zip(left, n)):
            if w:
                ax.text(x + w / 2, y, str(w), ha="center", va="center", fontsize=8)
        left += n
    ax.set_xlabel("claims of the paper", fontsize=8)
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.tick_params(labelsize=8)
    sns.despine(ax=ax)
    ax.set_title(f"The paper's {len(claims)} claims tested, by verdict and chapter", fontsize=9)
    fig.legend(*ax.get_legend_handles_labels(), ncols=len(VERDICTS), fontsize=7.5, loc="lower center",
               bbox_to_anchor=(0.5, 0), frameon=False, handlelength=1, columnspacing=1)
    fig.tight_layout(rect=(0, 0.3 / fig.get_figheight(), 1, 1))
    return fig


def protocol_relation(ranks: dict, k: int = 10, max_k: int = 100) -> plt.Figure:
    """Full-ranking Recall@n against the cut-off n, a panel per (dataset, split) in a grid (rows:
    data sets, columns: splits); dots: in-batch Recall@k placed where it meets the model's own
    full-ranking curve. (n, not K': the paper's K' is the number of latent neighbours.)"""
    from .evaluate import equivalent_full_k

    datasets = list(dict.fromkeys(d for d, _, _ in ranks))
    splits = list(dict.fromkeys(s for _, s, _ in ranks))
    models = list(dict.fromkeys(m for _, _, m in ranks))
    colours = dict(zip(models, sns.color_palette("colorblind", len(models))))
    fig, axes = plt.subplots(len(datasets), len(splits), figsize=(8, 2.6 * len(datasets) + 0.8), squeeze=False,
                             sharey=True, sharex=True)
    ns = np.arange(1, max_k + 1)
    for (i, dataset), (j, split) in ((a, b) for a in enumerate(datasets) for b in enumerate(splits)):
        ax = axes[i, j]
        for model in models:
            r = ranks.get((dataset, split, model))
            if r is None:
                continue
            ax.plot(ns, [(r["full"] < n).mean() for n in ns], color=colours[model], label=model, lw=1.2)
            ax.scatter([min(equivalent_full_k(r, k), max_k)], [(r["in_batch"] < k).mean()], color=colours[model],
                       zorder=3, s=14)
        ax.set_title(f"{dataset}, {split} split", fontsize=9)
        if i == len(datasets) - 1:
            ax.set_xlabel("n (full-ranking cut-off)")
        if j == 0:
            ax.set_ylabel("Recall@n, full")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(models), 6), frameon=False, fontsize=8,
               bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(f"Dots: each model's in-batch Recall@{k} on its own full-ranking curve", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def svd_spectrum(variances: dict) -> plt.Figure:
    """Variance sigma_n^2 / N per SVD dimension (scree, log scale) and its cumulative share, one line per side."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for side, v in variances.items():
        v = np.asarray(v, dtype=float)
        n = np.arange(1, len(v) + 1)
        axes[0].semilogy(n, v, marker=".", label=side)
        axes[1].plot(n, np.cumsum(v) / v.sum(), marker=".", label=side)
    axes[0].set(xlabel="SVD dimension $n$", ylabel=r"variance $\sigma_n^2 / N$", title="Variance per decorrelated dimension")
    axes[1].set(xlabel="SVD dimension $n$", ylabel="cumulative share", title="Cumulative share of the total variance",
                ylim=(0, 1.02))
    for ax in axes:
        ax.legend()
    fig.tight_layout()
    return fig


def group_variance_shares(shares: pd.DataFrame) -> plt.Figure:
    """Bars of each layer's share of the variance (columns side, grouping, layer, share); dashed line at 1/L."""
    sides = list(dict.fromkeys(shares.side))
    fig, axes = plt.subplots(1, len(sides), figsize=(5 * len(sides), 3.2), sharey=True, squeeze=False)
    for ax, side in zip(axes[0], sides):
        sub = shares[shares.side == side]
        sns.barplot(sub, x="layer", y="share", hue="grouping", ax=ax)
        ax.axhline(1 / sub.layer.nunique(), color="k", ls="--", lw=1)
        ax.set(title=f"{side}s: variance share per layer (dashed: $1/L$)", ylabel="share of total variance")
    fig.tight_layout()
    return fig


def adam_loss_history(histories: dict, kmeans_losses: dict) -> plt.Figure:
    """Per-epoch mean L_R, L_C, L_T of the Adam path (one panel per side), the k-means fit's L_T and L_C as lines."""
    fig, axes = plt.subplots(1, len(histories), figsize=(5 * len(histories), 3.4), squeeze=False)
    for ax, (side, hist) in zip(axes[0], histories.items()):
        epochs = np.arange(1, len(hist) + 1)
        for col, (name, style) in enumerate(zip(("R", "C", "T"), ("-", ":", "-"))):
            ax.plot(epochs, hist[:, col], ls=style, lw=2 if name == "C" else 1.5, label=rf"Adam $\mathcal{{L}}_{name}$")
        km = kmeans_losses[side]
        ax.axhline(km["L_T"], color="k", ls="--", lw=1, label=r"k-means $\mathcal{L}_T$")
        ax.axhline(km["L_C"], color="grey", ls="--", lw=1, label=r"k-means $\mathcal{L}_R = \mathcal{L}_C$")
        ax.set(xlabel="epoch", ylabel="mean loss per entity", title=rf"{side}s: Adam on $\mathcal{{L}}_T$ against k-means")
    axes[0, 0].legend(*axes[0, 0].get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(1.1, -0.2), ncol=5,
                      fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def latent_distance_ratios(ratios: dict, max_ratio: float = 3.0) -> plt.Figure:
    """ECDF per layer of d(runner-up) / d(assigned codeword), one panel per side (ratios clipped at max_ratio)."""
    fig, axes = plt.subplots(1, len(ratios), figsize=(5 * len(ratios), 3.2), sharey=True, squeeze=False)
    for ax, (side, r) in zip(axes[0], ratios.items()):
        df = pd.DataFrame(np.clip(r, 1.0, max_ratio), columns=[f"layer {l + 1}" for l in range(r.shape[1])])
        sns.ecdfplot(df.melt(var_name="layer", value_name="ratio"), x="ratio", hue="layer", ax=ax)
        ax.set(xlim=(1.0, max_ratio), xlabel=f"d(runner-up) / d(assigned), clipped at {max_ratio:g}",
               ylabel="share of entities", title=f"{side}s: how close the latent code is")
    fig.tight_layout()
    return fig


def quantizer_comparison(table: pd.DataFrame, metrics=("rel_recon_error", "collision_rate")) -> plt.Figure:
    """Bars per quantizer and side (columns side, quantizer and the metrics), one panel per metric."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        sns.barplot(table, x="quantizer", y=metric, hue="side", ax=ax)
        ax.set(title=metric.replace("_", " "), xlabel="")
    fig.tight_layout()
    return fig


def layer_nmi_heatmaps(nmi: dict, chance: dict | None = None) -> plt.Figure:
    """Heatmaps of (L, L) layer NMI matrices keyed by (side, quantizer): rows = sides, columns = quantizers.

    chance: optional {(side, quantizer): NMI of independently shuffled layers}, shown in the titles."""
    sides = list(dict.fromkeys(k[0] for k in nmi))
    names = list(dict.fromkeys(k[1] for k in nmi))
    fig, axes = plt.subplots(len(sides), len(names), figsize=(3.8 * len(names), 3.2 * len(sides)), squeeze=False)
    for i, side in enumerate(sides):
        for j, name in enumerate(names):
            ax = axes[i, j]
            if (side, name) not in nmi:
                ax.set_axis_off()
                continue
            sns.heatmap(nmi[(side, name)], vmin=0, vmax=1, annot=True, fmt=".2f", cmap="viridis", square=True, ax=ax,
                        cbar=j == len(names) - 1)
            level = "" if chance is None or (side, name) not in chance else f" (chance {chance[(side, name)]:.2f})"
            ax.set(title=f"{side}s: {name}{level}", xlabel="layer", ylabel="layer")
    fig.tight_layout()
    return fig


def ablation_changes(diffs: pd.DataFrame, paper: pd.DataFrame, title: str = "") -> plt.Figure:
    """Table 3 as a picture: each variant's relative change against full DQRec, ours with its 95 % interval
    (the wider of the paired-bootstrap and the seed interval; hollow: inside the noise) beside the paper's
    (crosses). diffs: rows of :func:`dqrec.findings.ablation_differences` for one protocol and metric;
    paper: :func:`dqrec.experiment.ablation_changes` rows with source "paper" for that metric."""
    variants = [v for v in ABLATIONS if f"DQRec {v}" in set(diffs.a)]
    ours = diffs[diffs.b == "DQRec"].assign(variant=lambda d: d.a.str.removeprefix("DQRec "))
    runs = [(f"ours: {d} ({s}, {int(n)} seed{'s' if n > 1 else ''})", g) for (d, s, n), g in
            ours.groupby(["dataset", "split", "seeds_a"], sort=False)]
    runs += [(f"paper: {d}", g) for d, g in paper[paper.variant.isin(variants)].groupby("dataset", sort=False)]
    colours = sns.color_palette(PALETTE, len(runs))
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * len(variants) + 1.8))
    step = 0.7 / max(len(runs), 1)
    for j, (label, g) in enumerate(runs):
        g = g.set_index("variant").reindex(variants)
        y = np.arange(len(variants)) + (j - (len(runs) - 1) / 2) * step
        if label.startswith("paper"):
            ax.scatter(100 * g.change, y, marker="x", color=colours[j], label=label, zorder=3)
            continue
        lo = np.fmin(g.ci_lo, g.seed_ci_lo.fillna(np.inf)) / g.mean_b
        hi = np.fmax(g.ci_hi, g.seed_ci_hi.fillna(-np.inf)) / g.mean_b
        ax.errorbar(100 * g.relative, y, xerr=100 * np.vstack([g.relative - lo, hi - g.relative]), fmt="none",
                    ecolor=colours[j], lw=1)
        noise = g.inside_noise.astype(bool).to_numpy()
        ax.scatter(100 * g.relative[~noise], y[~noise], color=colours[j], label=label if (~noise).any() else None,
                   zorder=3)
        ax.scatter(100 * g.relative[noise], y[noise], facecolors="white", edgecolors=colours[j], zorder=3,
                   label=None if (~noise).any() else label)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(range(len(variants)), variants)
    ax.invert_yaxis()
    ax.set(xlabel="change against full DQRec (%)", title=title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.4, -0.12 - 0.6 / (len(variants) + 3)), ncol=2, fontsize=8,
              frameon=False)
    fig.text(0.99, 0.01, "bars: 95% interval; hollow: inside the noise", ha="right", fontsize=7, color="grey")
    fig.tight_layout()
    return fig


def ablation_change_figures(diffs: pd.DataFrame, results: pd.DataFrame, k: int = 5) -> list[plt.Figure]:
    """:func:`ablation_changes` of Recall@``k`` for each protocol (the paper's in-batch first, then full
    ranking), each beside the paper's changes (:func:`dqrec.experiment.ablation_changes` of ``results``)."""
    paper = relative_changes(results, "in_batch", "Recall", k).query("source == 'paper'")
    return [ablation_changes(diffs[(diffs.protocol == protocol) & (diffs.metric == f"Recall@{k}")], paper,
                             f"Recall@{k}, {name}")
            for protocol, name in (("in_batch", "in-batch protocol (the paper's)"), ("full", "full ranking"))]


def sensitivity(results: pd.DataFrame, metric: str = "Recall", k: int = 10, defaults: dict | None = None) -> plt.Figure:
    """Fig. 3: ``metric@k`` against each swept parameter (columns ``parameter``, ``value_of_parameter``),
    one panel per parameter (the paper's K, J, L), a line per protocol (mean and sd over seeds); dashed:
    ``defaults`` (the paper's setting). One legend under the panels."""
    df = results[(results.metric == metric) & (results.k == k)]
    df = df.assign(protocol=df.protocol.map({"in_batch": "in-batch protocol (the paper's)", "full": "full ranking"}))
    names = list(dict.fromkeys(df.parameter))
    fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), 3.0), squeeze=False)
    for ax, name in zip(axes[0], names):
        sns.lineplot(df[df.parameter == name], x="value_of_parameter", y="value", hue="protocol", errorbar="sd",
                     marker="o", ax=ax, legend=ax is axes[0, 0])
        ax.set_xscale("log", base=2)
        values = sorted(df[df.parameter == name].value_of_parameter.unique())
        ax.set_xticks(values, [str(v) for v in values])
        ax.minorticks_off()
        if defaults and name in defaults:
            ax.axvline(defaults[name], color="grey", ls="--", lw=0.8)
        sym = SYMBOLS.get(name, name)
        ax.set(xlabel=f"${sym}$", ylabel=f"{metric}@{k}" if ax is axes[0, 0] else "", title=f"{metric}@{k} against ${sym}$")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    axes[0, 0].get_legend().remove()
    fig.legend(handles + [plt.Line2D([], [], color="grey", ls="--", lw=0.8)], labels + ["the paper's setting"],
               loc="lower center", ncol=len(labels) + 1, frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def shared_codes_summary(summary: pd.DataFrame, min_pairs: int = 30) -> plt.Figure:
    """Fig. 4, quantified: history overlap and taste similarity of user pairs by shared codes (from
    :func:`dqrec.casestudy.pair_summary`). Error bars: ±1.96 sd / sqrt(n); n is written at every point,
    and a point resting on fewer than ``min_pairs`` pairs is hollow."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    x = summary.shared_codes.to_numpy()
    bars = axes[0].bar(x, summary.history_jaccard)
    axes[0].bar_label(bars, [f"n={n:,}" for n in summary.pairs], fontsize=7, padding=2)
    axes[0].set_ylim(0, summary.history_jaccard.max() * 1.2)
    axes[0].set(xlabel="codes shared by the two semantic IDs", ylabel="mean Jaccard of training items",
                title="history overlap", xticks=x)
    series = [("all pairs", "genre_cosine", "pairs", "o", -0.06),
              ("pairs with no common item", "genre_cosine_no_common_item", "pairs_no_common_item", "s", 0.06)]
    colours = sns.color_palette(PALETTE, len(series))
    for (label, col, n_col, marker, dx), colour in zip(series, colours):
        n = summary[n_col].to_numpy()
        mean, half = summary[col].to_numpy(), 1.96 * summary[f"{col}_sd"].to_numpy() / np.sqrt(np.maximum(n, 1))
        axes[1].plot(x + dx, mean, color=colour, lw=1, ls="-" if marker == "o" else "--")
        axes[1].errorbar(x + dx, mean, yerr=np.nan_to_num(half), fmt="none", ecolor=colour, lw=1)
        few = n < min_pairs
        axes[1].scatter(x[~few] + dx, mean[~few], marker=marker, color=colour, zorder=3, label=label)
        axes[1].scatter(x[few] + dx, mean[few], marker=marker, facecolors="white", edgecolors=colour, zorder=3)
        for xi, yi, ni in zip(x + dx, mean, n):
            if np.isfinite(yi):
                axes[1].annotate(f"n={ni:,}", (xi, yi), xytext=(4, -10 if marker == "s" else 5), textcoords="offset points",
                                 fontsize=6.5, color=colour)
    axes[1].axhline(0, color="grey", lw=0.8)
    axes[1].set(xlabel="codes shared by the two semantic IDs", ylabel="mean cosine of centred genre mixes",
                title=f"taste similarity (hollow: fewer than {min_pairs} pairs)", xticks=x)
    axes[1].set_xlim(x.min() - 0.4, x.max() + 0.7)
    axes[1].legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def pair_genres(profile: pd.DataFrame) -> plt.Figure:
    """Genre shares of two users side by side (from :func:`dqrec.casestudy.pair_profile`)."""
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(profile) + 1.2))
    profile.iloc[::-1].plot.barh(ax=ax)
    ax.set(xlabel="share of the genres of the user's training items", ylabel="")
    ax.legend(fontsize=8, loc="lower right", title="user (semantic ID)", title_fontsize=8)
    fig.tight_layout()
    return fig


def validation_curves(histories: pd.DataFrame, label: str = "patience", ncols: int = 5) -> plt.Figure:
    """Validation score per epoch (:meth:`dqrec.sweep.Outcome.histories`), one panel per model, a line per
    value of the ``label`` column (mean over seeds); a dot marks the epoch each variant kept (its best)."""
    models = list(dict.fromkeys(histories.model))
    nrows = -(-len(models) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.8 * ncols, 1.6 * nrows + 0.5), squeeze=False)
    values = list(dict.fromkeys(histories[label]))
    colours = dict(zip(values, sns.color_palette(PALETTE, len(values))))
    for ax, model in zip(axes.flat, models):
        for value in values[::-1]:  # the first variant (the profile's) drawn on top
            curve = histories[(histories.model == model) & (histories[label] == value)].groupby("epoch").valid.mean()
            if curve.empty:
                continue
            ax.plot(curve.index, curve.values, color=colours[value], lw=1.6 if value == values[0] else 1.0)
            ax.plot(curve.idxmax(), curve.max(), "o", color=colours[value], ms=4)
        ax.set_title(model, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(models):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("valid NDCG@10", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("epoch", fontsize=8)
    handles = [plt.Line2D([], [], color=colours[v]) for v in values] + [plt.Line2D([], [], marker="o", ls="", color="grey")]
    fig.legend(handles, [f"{label} {v}" for v in values] + ["epoch kept (best)"], loc="lower center",
               ncol=len(values) + 1, frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig

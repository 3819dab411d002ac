"""What the book shows of Table 1, the verdicts and the provenance, computed from results.

* Table 1 in the paper's layout: models as columns, metric@k rows (Recall@5, @10, @20, then NDCG),
  'mean ± sd' only where a model ran with several seeds, the best of each row in bold
  (:func:`table1_block`, :func:`paper_beside_ours`, :func:`render`);
* the differences between DQRec and every other model with their uncertainty (:func:`differences`,
  built on :mod:`dqrec.stats`) and the Table 1 claims of the paper with a verdict each
  (:func:`claims_table1`, :class:`dqrec.findings.Claim`);
* the verdict page's tables (:func:`collect_claims`, :func:`verdict_markdown`);
* provenance: the commits, seeds, epochs and data behind a table (:func:`run_provenance`) and the
  paper's hyper-parameters beside each profile's deviations (:func:`hyperparameter_deviations`).
"""
from __future__ import annotations

import html
import inspect
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .findings import VERDICTS, Claim

METRICS = [f"{m}@{k}" for m in ("Recall", "NDCG") for k in (5, 10, 20)]

# The paper's Table 1 columns, in its order, and our registry's name for each (None: not run here).
PAPER_MODELS = ("NCF", "NGCF", "Bert4Rec", "LGCN", "HCCF", "DuoRec", "CL4SRec", "ICLRec", "SimRec", "MAERec",
                "LLMRec", "VQRec", "DQRec")
REGISTRY_NAME = {"Bert4Rec": "BERT4Rec", "LGCN": "LightGCN", "LLMRec": None}
NOT_RUN_REASON = {"LLMRec": "not run: it needs an LLM (GPT-3.5 in its paper) to write user/item profiles and edges, "
                            "which this offline, CPU-only project cannot call"}


def model_notes(models) -> str:
    """Markdown, one bullet per model of ``models`` whose row needs a word on how it ran here: LLMRec's
    reason for having no number (:data:`NOT_RUN_REASON`), and the text encoder behind VQRec's item codes
    (its registry default, which the profiles' runs use: the run key holds it)."""
    from .baselines.itemtext import TFIDF_SVD
    from .registry import make_model

    notes = {m: why for m, why in NOT_RUN_REASON.items()}
    encoder = make_model("VQRec").text_encoder
    notes["VQRec"] = ("its item codes come from an offline text encoder, TF-IDF + truncated SVD of each item's "
                      f"title, genres and year (`text_encoder=\"{TFIDF_SVD}\"`), not from the pre-trained BERT of its "
                      "paper: no model hub is reachable from this project's machines" if encoder == TFIDF_SVD else
                      f"its item codes come from the sentence-transformers model `{encoder}` over each item's title, "
                      "genres and year")
    return "\n".join(f"- **{m}**: {notes[m]}." for m in dict.fromkeys(models) if m in notes)


def models_named(frame: pd.DataFrame) -> list[str]:
    """The models of the registry (and the paper's LLMRec) that any text cell of ``frame`` names."""
    import re

    from .registry import model_names

    text = " ".join(frame.astype(str).to_numpy().ravel())
    return [m for m in [*model_names(), *NOT_RUN_REASON] if re.search(rf"(?<![\w-]){re.escape(m)}(?![\w-])", text)]


# Two halves of the paper's columns, so that each table fits the page: graph / CF models, then
# sequence and semantic-ID models (DQRec last, as in the paper).
PAPER_GROUPS = {"collaborative-filtering and graph models": ("NCF", "NGCF", "LGCN", "HCCF", "SimRec", "MAERec", "LLMRec"),
                "sequence and semantic-ID models": ("Bert4Rec", "DuoRec", "CL4SRec", "ICLRec", "VQRec", "DQRec")}
# The paper's datasets and ours.
PAPER_DATASET = {"MovieLens": "ml-1m", "Books": "amazon-books-2023", "Netflix": "netflix"}

NOT_RUN = "not run yet"


def why_not_run(paper_dataset: str, profile_datasets) -> str:
    """Why the paper's data set ``paper_dataset`` ("Books", "Netflix", ...) has no runs here: '' when its
    counterpart (:data:`PAPER_DATASET`) loads and is among ``profile_datasets``, else the reason (not in
    the mirror or the download cache, the loader's error named; or not in this profile's data sets)."""
    from . import data

    ours = PAPER_DATASET[paper_dataset]
    try:
        data.load(ours, download=False)
    except Exception as err:  # not in the mirror or cache, or malformed: the loader's error says which
        return f"not in the data mirror or the download cache ({type(err).__name__}; chapter 01 says how to get it)"
    return "" if ours in profile_datasets else f"available but not among this profile's data sets {list(profile_datasets)}"


def registry_name(paper_model: str) -> str | None:
    return REGISTRY_NAME.get(paper_model, paper_model)


# ----------------------------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------------------------
def _cells(s: pd.DataFrame) -> pd.DataFrame:
    """summary rows -> columns metric ('Recall@5'...), model, mean, text ('mean ± sd' or 'mean')."""
    s = s.assign(metric=s.metric + "@" + s.k.astype(str))
    text = s["mean"].map("{:.4f}".format) + np.where(s["count"] > 1, " ± " + s["std"].map("{:.4f}".format), "")
    return s.assign(text=text)[["metric", "model", "mean", "text", "count"]]


def table1_block(summary: pd.DataFrame, dataset: str, split: str, protocol: str, models=None):
    """One block of our Table 1 in the paper's layout: (text, means), each metric@k x model.

    summary: :func:`dqrec.experiment.summarise` rows. text cells read 'mean ± sd' over seeds, or the
    value alone for a single run; means are the numbers behind them (for marking the best)."""
    s = _cells(summary[(summary.dataset == dataset) & (summary.split == split) & (summary.protocol == protocol)])
    text = s.pivot(index="metric", columns="model", values="text")
    means = s.pivot(index="metric", columns="model", values="mean")
    cols = [m for m in (models or text.columns) if m in text.columns]
    rows = [m for m in METRICS if m in text.index]
    text, means = text.reindex(index=rows, columns=cols), means.reindex(index=rows, columns=cols)
    for t in (text, means):
        t.index.name = t.columns.name = None
    return text, means


def paper_beside_ours(summary: pd.DataFrame, paper: pd.DataFrame, paper_dataset: str, dataset: str, split: str,
                      protocol: str = "in_batch", models=PAPER_MODELS):
    """The paper's Table 1 block for ``paper_dataset`` with ours beside it: (text, means), rows
    (metric@k, 'paper' / 'ours'), columns the paper's models (their paper names). Ours reads
    'not run yet' where the run cache has no such model, or the reason it is not run."""
    p = paper[(paper.dataset == paper_dataset) & paper.model.isin(models)]
    ours_text, ours_mean = table1_block(summary, dataset, split, protocol)
    index = pd.MultiIndex.from_product([[m for m in METRICS if m in set(p.metric)], ["paper", "ours"]])
    text = pd.DataFrame("", index=index, columns=list(models))
    means = pd.DataFrame(np.nan, index=index, columns=list(models))
    for _, r in p.iterrows():
        text.loc[(r.metric, "paper"), r.model] = f"{r.value:.4f}"
        means.loc[(r.metric, "paper"), r.model] = r.value
    for model in models:
        ours = registry_name(model)
        for metric in index.get_level_values(0).unique():
            if ours in ours_text.columns and metric in ours_text.index:
                text.loc[(metric, "ours"), model] = ours_text.loc[metric, ours]
                means.loc[(metric, "ours"), model] = ours_mean.loc[metric, ours]
            else:
                text.loc[(metric, "ours"), model] = "not run" if model in NOT_RUN_REASON else NOT_RUN
    return text, means


def row_best(means: pd.DataFrame, best: str = "max") -> pd.DataFrame:
    """Boolean frame: True at the best number of each row (``max`` or ``min``; NaN never wins)."""
    if best not in ("max", "min"):
        raise ValueError("best: 'max' or 'min'")
    m = means.astype(float)
    top = m.max(axis=1) if best == "max" else m.min(axis=1)
    return m.eq(top, axis=0) & m.notna()


def render(text: pd.DataFrame, means: pd.DataFrame | None = None, caption: str = "",
           mark: pd.DataFrame | None = None) -> str:
    """HTML of ``text`` with the best number of each row in bold (``mark``, or :func:`row_best` of
    ``means``), no index or column names, no wrapping inside a cell; the book's CSS scrolls a wide
    table inside its box."""
    mark = row_best(means) if mark is None else mark.reindex(index=text.index, columns=text.columns).fillna(False)
    shown = text.where(~mark.astype(bool), "<b>" + text + "</b>")
    table = (shown.style.set_table_attributes('class="dqrec-table"')
             .set_table_styles(TABLE_CSS).to_html())
    return (f'<p class="dqrec-caption"><b>{html.escape(caption)}</b></p>\n' if caption else "") + table


TABLE_CELL_CSS = "white-space: normal; padding: 2px 4px; font-size: 0.85em;"
# cells and headers wrap at their spaces where a table would be wider than the page's text column
# (scripts/check_book.py fails on a table that scrolls sideways); the ``wrap`` columns of :func:`plain`
# (long names, lists of commits) may break inside a word too
TABLE_CSS = [{"selector": "td", "props": TABLE_CELL_CSS},
             {"selector": "th", "props": TABLE_CELL_CSS + " vertical-align: bottom;"}]
WRAP_CSS = "overflow-wrap: anywhere;"
MAX_COLUMNS = 6  # model columns per table: what fits the book's text column at 1280 px


def column_chunks(columns, size: int = MAX_COLUMNS) -> list[list]:
    """``columns`` cut into consecutive groups of at most ``size`` (a wide block becomes several tables)."""
    columns = list(columns)
    return [columns[i:i + size] for i in range(0, len(columns), size)] or [[]]


def table1_html(summary: pd.DataFrame, dataset: str, splits, models=None) -> list[str]:
    """Our Table 1 on ``dataset``: one :func:`render` per split and protocol (cut into tables of at most
    :data:`MAX_COLUMNS` models), the best number of each whole row in bold."""
    out = []
    for kind in splits:
        for protocol in ("in_batch", "full"):
            text, means = table1_block(summary, dataset, kind, protocol, models)
            mark = row_best(means)  # the best of the whole row, also when the block is cut in two
            out += [render(text[cols], mark=mark[cols], caption=f"{dataset}, {kind} split, {protocol} protocol")
                    for cols in column_chunks(text.columns)]
    return out


def paper_beside_ours_html(summary: pd.DataFrame, paper: pd.DataFrame, dataset: str, split: str) -> list[str]:
    """The paper's MovieLens block with ours on ``dataset`` beside it (:func:`paper_beside_ours`, in-batch),
    one :func:`render` per group of :data:`PAPER_GROUPS`; bold: the paper's best among its models, ours among ours."""
    text, means = paper_beside_ours(summary, paper, "MovieLens", dataset, split)
    mark = row_best(means)
    return [render(text[list(cols)], mark=mark[list(cols)],
                   caption=f"{group}: paper (MovieLens) and ours ({dataset}, {split} split, in-batch)")
            for group, cols in PAPER_GROUPS.items()]


def plain(df: pd.DataFrame, caption: str = "", index: str | None = None, wrap=()) -> str:
    """HTML of a results frame for the book: no row numbers (``index``: keep the index as a first column
    of that name), words for column names, integers with thousands separators (also integral floats,
    e.g. from a transpose), other floats to 4 significant digits, cells that wrap at their spaces where
    the table would be wider than the page, those of the columns ``wrap`` (long names, lists of
    commits) also inside a word, a caption above."""
    if index is not None:
        df = df.reset_index(names=index)
    df = df.rename(columns=lambda c: c.replace("_", " ") if isinstance(c, str) else c)
    floats = [c for c in df.columns if pd.api.types.is_float_dtype(df[c])]
    whole = [c for c in floats if np.isfinite(df[c].dropna()).all() and (df[c].dropna() % 1 == 0).all()
             and df[c].dropna().abs().max() >= 10]
    ints = [c for c in df.columns if pd.api.types.is_integer_dtype(df[c]) and c not in ("user", "item", "seed", "layer")]
    formats = {**{c: "{:.4g}" for c in floats if c not in whole}, **{c: "{:,.0f}" for c in whole + ints}}
    style = (df.style.hide(axis="index").format(formats, na_rep="").set_table_attributes('class="dqrec-table"')
             .set_table_styles(TABLE_CSS))
    if wrap:  # "#table td.colN" outranks the table's "#table td"
        style = style.set_table_styles({c.replace("_", " "): [{"selector": "td", "props": WRAP_CSS}] for c in wrap},
                                       overwrite=False)
    table = style.to_html()
    return (f'<p class="dqrec-caption"><b>{html.escape(caption)}</b></p>\n' if caption else "") + table


def training_ended_table(ended: pd.DataFrame, models=None) -> pd.DataFrame:
    """How training ended, one row per model (``models``' order) and a column per "dataset split": for a
    trained model "epochs mean (min–max), best b" over the cell's runs, with "k of n at the cap" where the
    epoch cap, not validation, stopped k of its n runs; for a model tuned on validation without epochs
    (EASE, ItemKNN) the grid point chosen. ``ended``: :func:`dqrec.experiment.training_summary` rows.
    Models with neither (MostPopular) are left out."""
    def number(x):
        return x.round(1).map("{:g}".format)

    trained = ended.epochs_max > 0
    span = np.where(ended.epochs_min < ended.epochs_max, " (" + number(ended.epochs_min) + "–" + number(ended.epochs_max)
                    + ")", "")
    capped = ended.runs - ended.stopped_by_validation
    epochs = (number(ended.epochs_mean) + span + ", best " + number(ended.best_epoch_mean)
              + np.where(capped > 0, "; " + capped.astype(str) + " of " + ended.runs.astype(str) + " at the cap", ""))
    text = np.where(trained, epochs, "tuned: " + ended.tuned.fillna("").astype(str))
    shown = ended.assign(cell=ended.dataset + " " + ended.split, text=text)[trained | (ended.tuned.fillna("") != "")]
    table = shown.pivot(index="model", columns="cell", values="text").fillna("")
    order = [m for m in (models or dict.fromkeys(shown.model)) if m in table.index]
    return table.reindex(index=order, columns=list(dict.fromkeys(shown.cell)))


def computed_on_summary(ended: pd.DataFrame, here: str = "cpu (2 cpus)") -> str:
    """A sentence on where the runs were computed: all on this project's machine ``here`` except the
    (model, cell)s listed under each other machine. ``ended``: columns dataset, split, model and
    computed_on (:func:`dqrec.experiment.run_machines`, machines joined by "; "). Run files from before
    machines were recorded ("not recorded") ran here."""
    def words(machine):
        found = re.fullmatch(r"(.*) \((\d+) cpus\)", machine)
        if not found:
            return machine
        device, cpus = found.groups()
        return f"a {cpus}-core CPU" if device == "cpu" else f"an {device} with {cpus} CPU cores"

    elsewhere = {}
    for r in ended.itertuples():
        for machine in str(r.computed_on).split("; "):
            if machine not in (here, "not recorded", "nan"):
                elsewhere.setdefault(words(machine), []).append(f"{r.model} ({r.dataset} {r.split})")
    text = f"Every run was computed on this project's machine, {words(here)}"
    if not elsewhere:
        return text + "."
    return (text + ", except some or all seeds of these: " + "; ".join(f"on {m}, {', '.join(cells)}"
                                                                  for m, cells in elsewhere.items()) + ".")


# ----------------------------------------------------------------------------------------------
# Differences with their uncertainty
# ----------------------------------------------------------------------------------------------
def differences(cache, split, params: dict, a: str, others, seeds, protocol: str = "in_batch",
                metrics=METRICS, n_boot: int = 2000) -> pd.DataFrame:
    """``a`` minus each of ``others`` on ``split`` from the runs' per-sample ranks in the run cache
    (:func:`dqrec.stats.cached_ranks`); see :func:`differences_from_ranks`."""
    from .stats import cached_ranks

    runs = {m: cached_ranks(cache, split, m, seeds, params) for m in dict.fromkeys([a, *others])}
    return differences_from_ranks(runs, a, list(others), protocol, metrics, n_boot).assign(
        dataset=split.name, split=split.kind)


def differences_by_split(cache, dataset: str, splits, params: dict, a: str, others, seeds) -> pd.DataFrame:
    """:func:`differences` of ``a`` against ``others`` on each split kind of ``dataset`` (split seed 0)."""
    from .data import load, prepare

    ds = load(dataset)
    return pd.concat([differences(cache, prepare(ds, split=kind, seq_len=params["seq_len"], seed=0), params, a,
                                  others, seeds) for kind in splits], ignore_index=True)


def differences_from_ranks(runs: dict, a: str, others, protocol: str = "in_batch", metrics=METRICS,
                           n_boot: int = 2000) -> pd.DataFrame:
    """One row per (other model, metric@k): :meth:`dqrec.stats.Difference.as_dict` of ``a`` minus it,
    plus protocol and ``text``. runs: {model: {seed: {protocol: (n,) ranks}}}; models without runs
    are left out."""
    from .stats import difference

    rows = []
    for b in others:
        if b == a or not runs.get(a) or not runs.get(b):
            continue
        for label in metrics:
            metric, k = label.split("@")
            d = difference({s: r[protocol] for s, r in runs[a].items()}, {s: r[protocol] for s, r in runs[b].items()},
                           metric, int(k), a=a, b=b, n_boot=n_boot)
            rows.append(dict(protocol=protocol, **d.as_dict(), text=d.text()))
    return pd.DataFrame(rows)


def differences_table(diffs: pd.DataFrame) -> pd.DataFrame:
    """Readable form of :func:`differences`: one row per (split, other model, metric@k) with the 95%
    intervals over test samples and over seeds; the verdict reads 'inside the noise' or names the
    model ahead."""
    if diffs.empty:
        return diffs
    seeds = np.where(diffs.seed_ci_lo.notna(), "[" + diffs.seed_ci_lo.map("{:+.4f}".format) + ", "
                     + diffs.seed_ci_hi.map("{:+.4f}".format) + "]", "one seed")
    a = diffs.a.iloc[0]
    verdict = np.where(diffs.inside_noise, "inside the noise", np.where(diffs["diff"] > 0, a, diffs.b) + " ahead")
    out = pd.DataFrame({"split": diffs.split, "versus": diffs.b, "metric": diffs.metric,
                        "difference": diffs["diff"].map("{:+.4f}".format),
                        "rel.": (100 * diffs.relative).map("{:+.1f}%".format),
                        "CI, samples": "[" + diffs.ci_lo.map("{:+.4f}".format) + ", "
                        + diffs.ci_hi.map("{:+.4f}".format) + "]",
                        "CI, seeds": seeds, "verdict": verdict})
    return out.reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# Our baselines against a reference implementation (RecBole 1.2.1, run in its own venv)
# ----------------------------------------------------------------------------------------------
def reference_comparison(results_dir: Path) -> pd.DataFrame:
    """Our baselines beside RecBole 1.2.1's on our exact split, full-ranking Recall@10 / NDCG@10: the
    graph and CF models from ``recbole_comparison.csv`` (scripts/recbole_compare.py; means over seeds, all
    test samples and the test users with a training history), the sequential ones from
    ``bench/recbole_sequential.json`` (:func:`sequential_pairs`; the test samples with a history; means over the
    seeds of each model, training schemes and patience). Empty where neither file exists."""
    rows = []
    graph_csv = Path(results_dir) / "recbole_comparison.csv"
    if graph_csv.exists():
        cmp = pd.read_csv(graph_csv)
        g = cmp.groupby(["model", "side"]).agg(r=("Recall@10_full", "mean"), n=("NDCG@10_full", "mean"),
                                               warm=("Recall@10_full_warm_users", "mean"), seeds=("seed", "size"),
                                               epochs=("epochs_run", "mean"))
        for model in dict.fromkeys(cmp.model):
            reference = next(side for side in cmp[cmp.model == model].side if side != "dqrec")
            ours, ref = g.loc[(model, "dqrec")], g.loc[(model, reference)]
            rows += [dict(model=model, samples="all", seeds=f"{int(ours.seeds)} / {int(ref.seeds)}",
                          **{"Recall@10 ours": ours.r, "Recall@10 RecBole": ref.r, "NDCG@10 ours": ours.n,
                             "NDCG@10 RecBole": ref.n, "epochs": f"{ours.epochs:.0f} / {ref.epochs:.0f}"}),
                     dict(model=model, samples="warm users", seeds=f"{int(ours.seeds)} / {int(ref.seeds)}",
                          **{"Recall@10 ours": ours.warm, "Recall@10 RecBole": ref.warm})]
    seq = sequential_pairs(results_dir)
    for (model, n, scheme, patience, capped), g in seq.groupby(["model", "n_samples", "trained on", "patience", "capped"],
                                                               sort=False):
        rows.append(dict(model=model, samples=f"with history ({n:,})", seeds=f"{len(g)} / {len(g)}",
                         **{"trained on": scheme, "patience": patience},
                         **{f"{m} {side}": g[f"{m} {side}"].mean() for m in ("Recall@10", "NDCG@10")
                            for side in ("ours", "RecBole")},
                         epochs=f"{g['epochs ours'].mean():.0f} / {g['epochs RecBole'].mean():.0f}"
                         + (" (capped)" if capped else "")))
    out = pd.DataFrame(rows)
    if graph_csv.exists():  # the share of test samples whose user has no training history
        out.attrs["cold_user_share"] = float(pd.read_csv(graph_csv).cold_user_share.iloc[0])
    if len(out):
        out.insert(out.columns.get_loc("NDCG@10 ours") if "NDCG@10 ours" in out else len(out.columns), "ratio",
                   out["Recall@10 ours"] / out["Recall@10 RecBole"])
    return out


def _enumerate(words) -> str:
    """"a", "a and b", "a, b and c"."""
    words = list(words)
    return " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)


def sequential_pairs(results_dir: Path) -> pd.DataFrame:
    """The entries of ``bench/recbole_sequential.json`` (scripts/recbole_sequential.py), one row per entry:
    model, dataset, split, seed, n_samples (the test samples with a history, on which both are scored), "trained on" (ours'
    ``train_on`` / RecBole's prefixes), "patience" (ours / RecBole's, 5 where an entry predates the field, as
    both were then), capped (a smoke check of fewer than 5 epochs), full-ranking Recall@10 / NDCG@10 and
    epochs run of each side. Empty where no entry exists."""
    path = Path(results_dir) / "bench" / "recbole_sequential.json"
    rows = []
    for v in json.loads(path.read_text()).values() if path.exists() else []:
        o, r = v["ours"]["test_with_history"], v["recbole"]["test_with_history"]
        rows.append({"model": v["model"], "dataset": v.get("dataset"), "split": v.get("split"),
                     "seed": v.get("seed", 0), "n_samples": o["n_samples"],
                     "trained on": f"{v['ours'].get('train_on', 'prefixes')} / prefixes",  # RecBole: a prefix per target
                     "patience": f"{v['ours'].get('patience', 5)} / {v['recbole'].get('patience', 5)}",
                     "capped": v.get("max_epochs", 200) < 5,
                     **{f"{m} {side}": part[m] for m in ("Recall@10", "NDCG@10") for side, part in (("ours", o), ("RecBole", r))},
                     "epochs ours": v["ours"]["epochs_run"], "epochs RecBole": v["recbole"]["epochs_run"]})
    columns = ["model", "dataset", "split", "seed", "n_samples", "trained on", "patience", "capped",
               *(f"{m} {side}" for m in ("Recall@10", "NDCG@10") for side in ("ours", "RecBole")), "epochs ours",
               "epochs RecBole"]
    return pd.DataFrame(rows, columns=columns).astype({"capped": bool})


def reference_seed_noise(results_dir: Path) -> str:
    """Sentences on the sequential pairs of :func:`sequential_pairs` run with more than one seed: each side's
    Recall@10 per seed and its spread (max - min), and whether the gap between the two sides' means is larger
    than both spreads (outside the seed noise these seeds show) or not. With two or three seeds this is a
    first look at the noise, not a test."""
    seq = sequential_pairs(results_dir)
    lines = []
    for (model, n, scheme, patience), g in seq[~seq.capped].groupby(["model", "n_samples", "trained on", "patience"],
                                                                   sort=False):
        if g.seed.nunique() < 2:
            continue
        g = g.sort_values("seed")
        seeds = _enumerate(map(str, g.seed))
        ours, theirs = g["Recall@10 ours"], g["Recall@10 RecBole"]
        spread = max(np.ptp(ours), np.ptp(theirs))
        gap = ours.mean() - theirs.mean()
        lines.append(f"{model} (with history ({n:,}), trained on {scheme}, patience {patience}), seeds {seeds}: ours' "
                     f"Recall@10 {', '.join(f'{x:.4f}' for x in ours)} (spread {np.ptp(ours):.4f}), RecBole's "
                     f"{', '.join(f'{x:.4f}' for x in theirs)} (spread {np.ptp(theirs):.4f}); the gap "
                     f"between the means, {gap:+.4f}, is "
                     + (f"{abs(gap) / spread:.1f} times the larger spread: outside the seed noise these seeds show."
                        if abs(gap) > spread else "no larger than the seeds' spread: inside the seed noise."))
    return " ".join(lines)


def reference_gaps(reference: pd.DataFrame, tolerance: float = 0.1) -> str:
    """One sentence on :func:`reference_comparison`: the rows where ours is within ``tolerance`` (relative)
    of RecBole's Recall@10 and those further apart, each named by model, samples, training schemes and
    the ratio ours / RecBole (and the patience of each, where they differ); a capped row (a smoke check) is
    named so."""
    if reference.empty:
        return ""

    def name(r):
        scheme = r.get("trained on")
        patience = r.get("patience")
        extra = [str(r["samples"])] + ([f"trained on {scheme}"] if isinstance(scheme, str) else []) + (
            [f"patience {patience}"] if isinstance(patience, str) and len(set(patience.split(" / "))) > 1 else [])
        capped = " (capped)" if "capped" in str(r.get("epochs", "")) else ""
        return f"{r['model']} ({', '.join(extra)}){capped}: {r['ratio']:.2f}x"

    near = (reference.ratio - 1).abs() <= tolerance
    parts = []
    if near.any():
        parts.append(f"Ours is within {tolerance:.0%} of RecBole's Recall@10 for "
                     + "; ".join(name(r) for _, r in reference[near].iterrows()))
    if (~near).any():
        parts.append(f"more than {tolerance:.0%} apart for " + "; ".join(name(r) for _, r in reference[~near].iterrows()))
    text = ", and ".join(parts) + " (ratio ours / RecBole)."
    return text[0].upper() + text[1:]


def reference_patience(results_dir: Path) -> str:
    """Sentences on the sequential pairs of :func:`sequential_pairs` run with the same seed but another patience
    (ours / RecBole's): per such pair, RecBole's Recall@10, the epochs each side ran and the ratio ours / RecBole
    under each, and whether the longer patience moved RecBole's number (so whether its early stop explains the
    gap). Seed by seed, so a mean over seeds is never set against one seed's run."""
    seq = sequential_pairs(results_dir)
    lines = []
    for (model, n, scheme, seed), g in seq[~seq.capped].groupby(["model", "n_samples", "trained on", "seed"],
                                                               sort=False):
        if g.patience.nunique() < 2:
            continue
        a, b = g.iloc[0], g.iloc[-1]
        epochs, ratio = (lambda r: f"{r['epochs ours']} / {r['epochs RecBole']}"), (
            lambda r: r["Recall@10 ours"] / r["Recall@10 RecBole"])
        moved = not np.isclose(a["Recall@10 RecBole"], b["Recall@10 RecBole"])
        lines.append(f"{model} (with history ({n:,}), trained on {scheme}, seed {seed}): with patience (ours / RecBole) "
                     f"{b.patience} instead of {a.patience}, RecBole's Recall@10 is {b['Recall@10 RecBole']:.4f} against "
                     f"{a['Recall@10 RecBole']:.4f} (epochs run, ours / RecBole: {epochs(b)} against {epochs(a)}), "
                     f"ours / RecBole {ratio(b):.2f}x against {ratio(a):.2f}x: "
                     + ("the longer patience moves RecBole's number." if moved else
                        "RecBole's number does not move, so its early stop is not what separates the two."))
    return " ".join(lines)


SASREC_SWITCHES = {  # scripts/sasrec_variants.py's switch: (its short name, what a sentence calls it)
    "post_ln": ("post-LN", "post-LN"), "bpr": ("BPR", "BPR loss"),
    "start_positions": ("positions", "positions from the oldest item"),
    "select_full": ("selection", "full-ranking selection"), "one_ffn_dropout": ("FFN dropout", "one feed-forward dropout"),
    "recbole_layer_norm": ("LayerNorm", "LayerNorm details"),  # eps, input order
    "recbole_negatives": ("negatives", "negative sampling")}  # any item but the target
CHOICES = "RecBole's choices switched on"


def sasrec_variants(results_dir: Path) -> pd.DataFrame:
    """Our SASRec on prefixes with RecBole's choices switched on (``sasrec_variants.json``,
    scripts/sasrec_variants.py), between ours (no switch) and RecBole 1.2.1's SASRec on the same data, split
    and seed (``bench/recbole_sequential.json``, ours' prefixes entry). One row per run: data (data set and
    split), seed, run, the choices switched on (short names, comma-separated), full-ranking Recall@10 / NDCG@10
    on the test samples with a history, epochs run (best). Empty where no variant was run."""
    path = Path(results_dir) / "sasrec_variants.json"
    if not path.exists():
        return pd.DataFrame()
    reference = Path(results_dir) / "bench" / "recbole_sequential.json"
    pairs = json.loads(reference.read_text()) if reference.exists() else {}
    groups = {}  # (data, seed) -> [ours, variants..., RecBole]
    for v in json.loads(path.read_text()).values():
        data, seed = f"{v['dataset']} {v['split']}", v["seed"]
        if (data, seed) not in groups:
            pair = pairs.get(f"{v['dataset']}/{v['split']}/SASRec/s{seed}/ours-prefixes", {})
            groups[data, seed] = [dict(data=data, seed=seed, run=run, **{CHOICES: ""},
                                 **{m: pair[side]["test_with_history"][m] for m in ("Recall@10", "NDCG@10")},
                                 epochs=f"{pair[side]['epochs_run']}" + (f" ({pair[side]['best_epoch']})"
                                                                         if "best_epoch" in pair[side] else ""))
                            for side, run in (("ours", "ours (SASRec's choices)"), ("recbole", "RecBole 1.2.1"))
                            if side in pair]
        on = [short for k, (short, _) in SASREC_SWITCHES.items() if v["switches"].get(k)]  # a later switch: off
        row = dict(data=data, seed=seed, run=f"ours + {len(on)} choices" if len(on) > 1 else f"ours + {on[0]}",
                   **{CHOICES: ", ".join(on)},
                   **{m: v["test_with_history"][m] for m in ("Recall@10", "NDCG@10")},
                   epochs=f"{v['epochs_run']} ({v['best_epoch']})")
        group = groups[data, seed]
        group.insert(len(group) - 1 if group and group[-1]["run"] == "RecBole 1.2.1" else len(group), row)
    table = pd.DataFrame([row for group in groups.values() for row in group])
    seq = sequential_pairs(results_dir)
    same = seq[(seq.model == "SASRec") & (seq["trained on"] == "prefixes / prefixes") & (seq.patience == "5 / 5")
               & ~seq.capped]
    table.attrs["seed_spread"] = {
        f"{d} {s}": dict(seeds=sorted(g.seed), ours=np.ptp(g["Recall@10 ours"]), RecBole=np.ptp(g["Recall@10 RecBole"]))
        for (d, s), g in same.groupby(["dataset", "split"]) if g.seed.nunique() > 1}
    return table


def sasrec_variants_summary(table: pd.DataFrame) -> str:
    """Sentences on :func:`sasrec_variants`: per data set and seed, each variant's Recall@10 and the share of the
    gap between ours and RecBole's it closes (100%: the switched choices are the whole gap; 0%: none of it); then,
    per data set, what the variant with the most choices leaves of the gap, over the seeds it was run with,
    against the seed-to-seed spread of ours, RecBole's and (with two seeds or more) that variant."""
    phrase = dict(SASREC_SWITCHES.values())
    lines, most = [], {}  # most: data set -> [(seed, ours, RecBole, the most-switched variant, its choices)]
    for (data, seed), g in table.groupby(["data", "seed"], sort=False):
        ours, theirs = g[g.run.str.startswith("ours (")], g[g.run == "RecBole 1.2.1"]
        variants = g[g.run.str.startswith("ours +")]
        if ours.empty or theirs.empty or variants.empty:
            continue
        top, bottom = ours["Recall@10"].iloc[0], theirs["Recall@10"].iloc[0]
        parts = []
        for _, r in variants.iterrows():
            names = [phrase[label] for label in r[CHOICES].split(", ")]
            parts.append(f"{_enumerate(names)} {'together give' if len(names) > 1 else 'gives'} {r['Recall@10']:.4f} "
                         f"({(top - r['Recall@10']) / (top - bottom):.0%} of the gap closed)")
        full = variants.loc[variants[CHOICES].str.count(",").idxmax()]
        left = full["Recall@10"] - bottom
        lines.append(f"On {data} s{seed}, our SASRec on prefixes reaches Recall@10 {top:.4f} and RecBole's {bottom:.4f}. "
                     "Switched on in ours, RecBole's " + "; ".join(parts) + ". "
                     f"With the most choices switched on, {left / (top - bottom):.0%} of the gap remains "
                     f"({left:.4f} of Recall@10).")
        most.setdefault(data, []).append((seed, top, bottom, full["Recall@10"], full[CHOICES]))
    for dataset, runs in most.items():
        choices = max(runs, key=lambda r: r[4].count(","))[4]
        runs = [r for r in runs if r[4] == choices]  # the seeds of the most-switched variant
        seeds, tops, bottoms, fulls, _ = zip(*runs)
        spread = table.attrs.get("seed_spread", {}).get(dataset)
        left = np.mean(fulls) - np.mean(bottoms)
        if len(runs) > 1:
            spreads = dict(ours=np.ptp(tops), RecBole=np.ptp(bottoms), variant=np.ptp(fulls))
            lines.append(f"Over seeds {_enumerate(map(str, seeds))} on {dataset}, ours averages {np.mean(tops):.4f}, "
                         f"RecBole's {np.mean(bottoms):.4f} and ours with the most choices switched on "
                         f"{np.mean(fulls):.4f}: {left / (np.mean(tops) - np.mean(bottoms)):.0%} of the mean gap "
                         f"remains ({left:.4f} of Recall@10). Seed to seed, Recall@10 spreads by {spreads['ours']:.4f} "
                         f"(ours), {spreads['RecBole']:.4f} (RecBole's) and {spreads['variant']:.4f} (that variant), so "
                         "what remains is " + ("inside the seed noise." if left <= max(spreads.values()) else
                                               f"{left / max(spreads.values()):.1f} times the largest spread: not in "
                                               "these choices, nor explained yet."))
        elif spread is None:
            lines.append("What remains is not in these choices (nor explained yet), or seed noise, as each side has "
                         "one seed.")
        else:
            lines.append(f"Over seeds {_enumerate(map(str, spread['seeds']))} ours' Recall@10 spreads by "
                         f"{spread['ours']:.4f} and RecBole's by {spread['RecBole']:.4f}, so what remains is "
                         + ("larger than the seed noise: not in these choices, nor explained yet."
                            if left > max(spread["ours"], spread["RecBole"]) else "inside the seed noise."))
    return " ".join(lines)


def reference_speed(results_dir: Path) -> pd.DataFrame:
    """Seconds per training epoch of ours and of RecBole 1.2.1's same model, each pair timed in one run on
    one machine (``ratios_vs_recbole`` of ``bench/baselines.json``: scripts/recbole_compare.py for the graph
    and CF models, scripts/recbole_sequential.py ``--speed-epochs`` for the sequential ones, ours on each
    training scheme); ratio = ours / RecBole (below 1: ours is faster). Empty where nothing was timed."""
    path = Path(results_dir) / "bench" / "baselines.json"
    rows = json.loads(path.read_text()).get("ratios_vs_recbole", []) if path.exists() else []
    return pd.DataFrame([{"model": r["model"], "reference": r["reference"], "data": f"{r['dataset']} {r['split']}",
                          "trained on": f"{r['ours_train_on']} / {r['reference_train_on']}" if r.get("ours_train_on") else "",
                          "s/epoch ours": r["ours_seconds"], "s/epoch RecBole": r["reference_seconds"],
                          "ratio": r["ratio"], "load (1 min)": r["machine"].get("load_average_1min"),
                          "torch threads": r["machine"].get("torch_threads"), "commit": str(r["git_sha"])[:7]}
                         for r in rows])


def bench_epoch_seconds(results_dir: Path) -> pd.DataFrame:
    """Seconds per training epoch (validation apart) of each baseline per data set, as the benchmarks
    recorded them in ``bench/``: ``sequential_epoch.json`` (scripts/bench_sequential.py; a ``NAME:SCHEME``
    entry becomes the model "NAME (SCHEME)") over the ``epochs`` of ``baselines.json``
    (scripts/bench_baselines.py), RecBole's own rows left to :func:`reference_speed`. Columns model,
    dataset, seconds, estimated (timed steps x steps per epoch rather than epochs run)."""
    bench = Path(results_dir) / "bench"
    cells = {}
    path = bench / "baselines.json"
    for r in json.loads(path.read_text()).get("epochs", []) if path.exists() else []:
        if not r["model"].startswith("RecBole"):
            cells[(r["model"], r["dataset"])] = (r["train_seconds"], False)
    path = bench / "sequential_epoch.json"
    for r in json.loads(path.read_text()).values() if path.exists() else []:
        name, _, scheme = r["model"].partition(":")
        cells[(f"{name} ({scheme})" if scheme else name, r["dataset"])] = (
            r["seconds_per_epoch"], r.get("note", "").startswith("estimated"))
    return pd.DataFrame([dict(model=m, dataset=d, seconds=sec, estimated=est) for (m, d), (sec, est) in cells.items()],
                        columns=["model", "dataset", "seconds", "estimated"])


def baseline_epoch_seconds(results_dir: Path, models=None) -> pd.DataFrame:
    """:func:`bench_epoch_seconds` for reading: rows in ``models``' order (then the rest), a column per data
    set, each cell text: the seconds, "(estimated)" where estimated; empty where nothing was timed."""
    bench = bench_epoch_seconds(results_dir)
    if bench.empty:
        return pd.DataFrame()
    text = bench.seconds.map(lambda x: f"{x:,.{2 if x < 10 else 1}f}") + np.where(bench.estimated, " (estimated)", "")
    table = text.set_axis(pd.MultiIndex.from_frame(bench[["model", "dataset"]])).unstack().fillna("")
    rank = {m: i for i, m in enumerate(models or [])}
    order = sorted(table.index, key=lambda row: rank.get(row.split(" (")[0], len(rank)))
    return table.loc[order].rename_axis("model").rename_axis(None, axis=1).reset_index()


def missing_run_hours(coverage: pd.DataFrame, results: pd.DataFrame, results_dir: Path) -> pd.DataFrame:
    """What the runs not computed yet would cost on the machine that computed the others, per (model,
    dataset) with a missing run: ``missing`` runs, ``hours_each`` and ``hours`` in all, and ``from``, how the
    hours were estimated: the mean fit + evaluation time of the model's runs on that data set where it has
    some, else the benchmark's seconds per epoch (:func:`bench_epoch_seconds`) x the mean epochs of its runs
    on any data set; NaN hours where neither exists. ``coverage``: :meth:`dqrec.sweep.Outcome.coverage`;
    ``results``: the runs' rows (fit_seconds, eval_seconds, epochs_run per seed)."""
    from .experiment import run_minutes

    hours_run = run_minutes(results, by=("dataset",)).stack().dropna() / 60  # pandas 3 keeps NaN in stack()
    epochs = results.drop_duplicates(["dataset", "split", "model", "seed"]).groupby("model").epochs_run.mean()
    bench = bench_epoch_seconds(results_dir).set_index(["model", "dataset"])
    short = coverage.assign(missing=coverage.planned - coverage.done).query("missing > 0")
    rows = []
    for (model, dataset), missing in short.groupby(["model", "dataset"], sort=False).missing.sum().items():
        if (model, dataset) in hours_run.index:
            each, source = hours_run[(model, dataset)], "its runs on this data set"
        elif (model, dataset) in bench.index and model in epochs.index:
            b = bench.loc[(model, dataset)]
            each = b.seconds * epochs[model] / 3600
            source = (f"{'estimated' if b.estimated else 'timed'} epoch x {epochs[model]:.0f} epochs "
                      "(its runs' mean)")
        else:
            each, source = np.nan, "no timing"
        rows.append(dict(model=model, dataset=dataset, missing=int(missing), hours_each=each,
                         hours=missing * each, **{"from": source}))
    return pd.DataFrame(rows, columns=["model", "dataset", "missing", "hours_each", "hours", "from"])


def missing_run_summary(cost: pd.DataFrame) -> str:
    """One sentence on :func:`missing_run_hours`: the missing runs, the hours they would take, the
    largest share, and the runs with no estimate."""
    if cost.empty:
        return "Every planned run has been computed."
    known = cost.dropna(subset=["hours"]).sort_values("hours", ascending=False)
    text = (f"The {cost.missing.sum()} runs not computed yet would take about **{known.hours.sum():,.0f} hours** "
            f"of one core on this project's machine, as the table estimates")
    if len(known):
        top = known.iloc[0]
        text += (f"; the largest share, {top.hours:,.0f} h, is {top.model} on {top.dataset} "
                 f"({top.missing} runs of about {top.hours_each:,.1f} h)")
    unknown = cost[cost.hours.isna()]
    if len(unknown):
        text += ("; no estimate (never timed) for " + ", ".join(f"{r.model} on {r.dataset}" for r in unknown.itertuples()))
    return text + "."


def epoch_speed(results_dir: Path) -> pd.DataFrame:
    """One ML-1M DQRec training epoch per precision (``epoch`` of ``bench/dqrec.json``, written by
    scripts/bench_dqrec.py): the median of three epochs and its steps, the dense floor timed in the same
    run (the towers' dense layers alone), that floor plus the epoch's own optimizer and validation
    seconds, the matrix-product estimate, and the 5 s target. Empty where nothing was timed."""
    path = Path(results_dir) / "bench" / "dqrec.json"
    epochs = json.loads(path.read_text()).get("epoch", {}) if path.exists() else {}
    rows = []
    for precision, e in epochs.items():
        floor, steps = e["dense_floor"], e["median_steps"]
        rows.append({"precision": precision, "epoch s": e["median_total_seconds"],
                     **{f"{k.removesuffix('_seconds')} s": v for k, v in steps.items()},
                     "dense floor s": floor["epoch_seconds"],
                     "floor + optimizer + validation s": floor.get("floor_plus_optimizer_and_validation_seconds"),
                     "products alone s (estimate)": floor["gemm_bound"]["epoch_seconds"],
                     "target s": e["target_seconds"], "torch threads": e["torch_threads"],
                     "load (1 min)": e.get("load_average_1min"), "commit": str(e["git_sha"])[:7]})
    return pd.DataFrame(rows)


def epoch_speed_by_step(speed: pd.DataFrame) -> pd.DataFrame:
    """:func:`epoch_speed` turned for reading: one row per quantity (epoch, each step, the floors, the
    target, the machine), one column per precision, every value as text (numbers and commits mix)."""
    return speed.set_index("precision").T.astype(str).rename_axis("seconds").reset_index()


def epoch_speed_summary(speed: pd.DataFrame) -> str:
    """A sentence per precision of :func:`epoch_speed`: the epoch against the target and what bounds it."""
    out = []
    for row in speed.to_dict("records"):
        e, floor_rest, target = row["epoch s"], row["floor + optimizer + validation s"], row["target s"]
        verdict = "meets" if e <= target else "misses"
        bound = ("so even a free data step and free pooling would leave the epoch over the target in this precision"
                 if floor_rest > target else
                 "so the target is not ruled out by the floor: the gap is in our step")
        out.append(f"In {row['precision']}, one ML-1M epoch takes {e:.2f} s and {verdict} the {target:g} s target; "
                   f"the towers' dense layers alone take {row['dense floor s']:.2f} s, and with the epoch's own "
                   f"optimizer and validation {floor_rest:.2f} s, {bound}.")
    return " ".join(out)


# ----------------------------------------------------------------------------------------------
# The paper's Table 1 claims
# ----------------------------------------------------------------------------------------------
def _best_others(means: pd.DataFrame, model: str = "DQRec") -> pd.Series:
    """Per metric, the best model other than ``model``."""
    return means.drop(columns=[model]).idxmax(axis=1)


def claims_table1(summary: pd.DataFrame, diffs: pd.DataFrame, paper: pd.DataFrame, dataset: str,
                  splits, available: dict[str, str], evidence: str = "04_table1") -> list[Claim]:
    """The paper's Section 6.2 claims, each with our result and a verdict, on ``dataset`` under the
    paper's in-batch protocol; a claim tested under several ``splits`` is one claim whose result
    names each split and whose verdict combines theirs (:func:`merge_claims`). A claim about one
    baseline's rank (:data:`RANK_CLAIMS`) whose model has no run on ``dataset`` is tested instead on
    every other (data set, split) of ``summary`` where it ran, and says so.

    diffs: :func:`differences` of DQRec against every other model run there (all six metric@k).
    available: paper dataset name (Books, Netflix) -> '' where we ran it, else why not.
    """
    splits = [splits] if isinstance(splits, str) else list(splits)
    claims = [c for split in splits for c in _claims_table1(summary, diffs, paper, dataset, split, available, evidence)]
    s, elsewhere = summary[summary.protocol == "in_batch"], []
    for name, text in RANK_CLAIMS.items():
        if any(c.claim == text for c in claims):
            continue
        blocks = [(d, sp) for (d, sp), g in s.groupby(["dataset", "split"], sort=False)
                  if d != dataset and name in set(g.model)]
        if not blocks:
            elsewhere.append(Claim("Table 1", text, f"{name}: {NOT_RUN}.", "not testable here",
                                   f"{name} has no run in the run cache yet.", evidence))
            continue
        for d, sp in blocks:
            c = _rank_claim(name, table1_block(summary, d, sp, "in_batch")[1], f"{d}, {sp} split", evidence)
            elsewhere.append(Claim(c.section, c.claim, c.ours, c.verdict,
                                   f"{name} has no {dataset} run yet (the paper's MovieLens), so this is tested on "
                                   f"the other data sets where it ran. {c.why}", c.evidence))
    at = next((i for i, c in enumerate(claims) if c.claim.startswith("DQRec reaches")), len(claims))
    best = claim_best_elsewhere(summary, dataset, evidence)
    return merge_claims(claims[:1] + ([best] if best else []) + claims[1:at] + elsewhere + claims[at:])  # Section 6.2's order


def claim_best_elsewhere(summary: pd.DataFrame, dataset: str, evidence: str = "04_table1") -> Claim | None:
    """Table 1's main claim (DQRec ahead of every baseline on every metric) on the data sets other than
    ``dataset`` where at least one of the paper's baselines ran: per (data set, split), DQRec's in-batch
    mean against the best other model's, metric by metric (means over seeds, no interval). None if
    there is no such block."""
    blocks = []
    for (d, sp), g in summary[(summary.protocol == "in_batch") & (summary.dataset != dataset)].groupby(
            ["dataset", "split"], sort=False):
        means = table1_block(summary, d, sp, "in_batch")[1]
        paper_run = [p for p in PAPER_MODELS[:-1] if registry_name(p) in means.columns]
        if "DQRec" not in means.columns or not paper_run:
            continue
        best = _best_others(means)
        ahead = [m for m in means.index if means.loc[m, "DQRec"] > means.loc[m, best[m]]]
        r10 = "Recall@10"
        blocks.append((len(ahead), len(means.index),
                       f"{d}, {sp} split ({means.shape[1] - 1} other models, {len(paper_run)} of them the paper's "
                       f"baselines): ahead on {len(ahead)} of {len(means.index)} metrics; Recall@10 DQRec "
                       f"{means.loc[r10, 'DQRec']:.4f} vs {best[r10]} {means.loc[r10, best[r10]]:.4f}"))
    if not blocks:
        return None
    names = ", ".join(dict.fromkeys(t.split(",")[0] for _, _, t in blocks))
    won, total = sum(a for a, _, _ in blocks), sum(n for _, n, _ in blocks)
    return Claim("Table 1", f"DQRec outperforms every baseline on every metric, also on the smaller MovieLens sets "
                 f"where the paper's baselines ran ({names}).", "In-batch means over seeds: " +
                 "; ".join(t for _, _, t in blocks) + ".",
                 "reproduced" if won == total else "not reproduced" if not won else "partly reproduced",
                 f"The paper's MovieLens is ML-1M ({dataset} here), where few of its baselines have run yet; these "
                 "data sets test the same claim against more of them. Means over seeds, no interval.", evidence)


RANK_CLAIMS = {"NCF": "NCF, using embeddings only, performs relatively poorly.",
               "VQRec": "Semantic-ID modelling (VQRec) is ahead of the other baselines."}


def _rank_claim(name: str, means: pd.DataFrame, where: str, evidence: str) -> Claim:
    """Claim ``RANK_CLAIMS[name]`` on one block's means (metric@k x model, ``name`` among them)."""
    if name == "NCF":  # counted as 'relatively poor' in the lower half of the models we ran
        rank = means.rank(axis=1, ascending=False)["NCF"]
        n = means.shape[1]
        bottom = int((rank > n / 2).sum())
        return Claim("Table 1", RANK_CLAIMS[name], f"NCF ranks {', '.join(f'{m} {int(r)}/{n}' for m, r in rank.items())} "
                     f"on {where}.", "reproduced" if bottom == len(rank) else "partly reproduced" if bottom
                     else "not reproduced",
                     "Counted as 'relatively poor' where NCF is in the lower half of the models we ran.", evidence)
    others = means.drop(columns=[c for c in ("DQRec", "VQRec") if c in means.columns])
    ahead = [m for m in means.index if means.loc[m, "VQRec"] > others.loc[m].max()]
    return Claim("Table 1", RANK_CLAIMS[name], f"VQRec is ahead of every other baseline we ran on {len(ahead)} of "
                 f"{len(means.index)} metrics on {where}.",
                 "reproduced" if len(ahead) == len(means.index) else "partly reproduced" if ahead else "not reproduced",
                 "Means over seeds; no interval on this comparison.", evidence)


# The paper's Table 1 families on MovieLens (its sequential baselines all above its graph ones); SASRec
# is not in the paper's table but is the encoder its sequential baselines build on.
FAMILY = {**dict.fromkeys(("SASRec", "BERT4Rec", "CL4SRec", "DuoRec", "ICLRec", "MAERec"), "sequential"),
          **dict.fromkeys(("NGCF", "LightGCN", "HCCF"), "graph")}


def claim_family_order(summary: pd.DataFrame, paper: pd.DataFrame, evidence: str = "04_table1",
                       metric: str = "Recall", k: int = 10) -> Claim:
    """Table 1's ordering on MovieLens: the best sequential baseline far above the best graph one, tested
    on every (data set, split) of ``summary`` where both families ran (in-batch ``metric@k``, means over
    seeds), with DQRec's place beside them."""
    label = f"{metric}@{k}"
    p = paper[(paper.dataset == "MovieLens") & (paper.metric == label)].set_index("model").value
    fam_p = {f: p[[m for m in p.index if FAMILY.get(REGISTRY_NAME.get(m, m)) == f]] for f in ("sequential", "graph")}
    claim = (f"On MovieLens the sequential baselines are far ahead of the graph ones (Table 1: best sequential "
             f"{fam_p['sequential'].idxmax()} {fam_p['sequential'].max():.4f} vs best graph {fam_p['graph'].idxmax()} "
             f"{fam_p['graph'].max():.4f} {label}, x{fam_p['sequential'].max() / fam_p['graph'].max():.2f}).")
    s = summary[(summary.protocol == "in_batch") & (summary.metric == metric) & (summary.k == k)]
    blocks = []
    for (dataset, split), g in s.groupby(["dataset", "split"], sort=False):
        g = g.set_index("model")
        fams = {f: g[[FAMILY.get(m) == f for m in g.index]] for f in ("sequential", "graph")}
        if fams["sequential"].empty or fams["graph"].empty:
            continue
        seq, graph = (fams[f]["mean"].idxmax() for f in ("sequential", "graph"))
        n = {m: int(g.loc[m, "count"]) for m in (seq, graph)}
        text = (f"{dataset}, {split} split: {seq} {g.loc[seq, 'mean']:.4f} ({n[seq]} seed{'s' * (n[seq] > 1)}) vs "
                f"{graph} {g.loc[graph, 'mean']:.4f} ({n[graph]} seed{'s' * (n[graph] > 1)}), "
                f"x{g.loc[seq, 'mean'] / g.loc[graph, 'mean']:.2f}")
        if "DQRec" in g.index:
            text += f"; DQRec {g.loc['DQRec', 'mean']:.4f}"
        blocks.append((g.loc[seq, "mean"] > g.loc[graph, "mean"], text))
    if not blocks:
        return Claim("Table 1", claim, "No data set has a sequential and a graph model run yet.", "not testable here",
                     "Needs at least one model of each family on the same data and split.", evidence)
    held = sum(ok for ok, _ in blocks)
    verdict = "reproduced" if held == len(blocks) else "partly reproduced" if held else "not reproduced"
    return Claim("Table 1", claim, f"In-batch {label}, best of each family we ran: " + "; ".join(t for _, t in blocks) + ".",
                 verdict, f"The best sequential model is ahead in {held} of {len(blocks)} (data set, split) blocks where "
                 "both families ran (means over seeds, no interval; of the paper's data only ML-1M is MovieLens, and "
                 "not every block has every model of either family).", evidence)


GRAPH_ORDER_MODELS = ("NCF", "NGCF", "LGCN", "SimRec", "HCCF")  # the paper's CF and graph baselines (its names)


def claim_baseline_order(summary: pd.DataFrame, paper: pd.DataFrame, models=GRAPH_ORDER_MODELS,
                         evidence: str = "04_table1", metric: str = "Recall", k: int = 10) -> Claim:
    """Table 1's order of ``models`` on MovieLens (read from ``paper``, in-batch ``metric@k``), tested on
    every (data set, split) of ``summary`` where at least two of them ran: of each block's pairs, how many
    we order as the paper does (means over seeds). Reproduced when every pair of every block agrees,
    partly when more than half of all pairs do, not reproduced otherwise."""
    label = f"{metric}@{k}"
    p = paper[(paper.dataset == "MovieLens") & (paper.metric == label)].set_index("model").value
    order = sorted((m for m in models if m in p.index), key=lambda m: p[m])  # worst first
    ours_name = {m: registry_name(m) for m in order}
    claim = ("The paper's CF and graph baselines rank on MovieLens as " + " < ".join(
        f"{ours_name[m]} {p[m]:.4f}" for m in order) + f" ({label}).")
    s = summary[(summary.protocol == "in_batch") & (summary.metric == metric) & (summary.k == k)]
    blocks, agree, pairs = [], 0, 0
    for (dataset, split), g in s.groupby(["dataset", "split"], sort=False):
        means = g.set_index("model")["mean"]
        ran = [ours_name[m] for m in order if ours_name[m] in means.index]
        if len(ran) < 2:
            continue
        together = [(a, b) for i, a in enumerate(ran) for b in ran[i + 1:]]  # a below b in the paper
        held = sum(means[a] < means[b] for a, b in together)
        agree, pairs = agree + held, pairs + len(together)
        blocks.append(f"{dataset}, {split} split: " + " < ".join(f"{m} {means[m]:.4f}" for m in
                                                                 sorted(ran, key=lambda m: means[m]))
                      + f" ({held} of {len(together)} pair{'s' * (len(together) > 1)} as in the paper)")
    if not blocks:
        return Claim("Table 1", claim, "No data set has two of these models run yet.", "not testable here",
                     "Needs at least two of them on the same data and split.", evidence)
    verdict = "reproduced" if agree == pairs else "partly reproduced" if agree > pairs / 2 else "not reproduced"
    return Claim("Table 1", claim, f"In-batch {label}, ours from worst to best: " + "; ".join(blocks) + ".", verdict,
                 f"{agree} of {pairs} pairs, over the {len(blocks)} (data set, split) blocks where at least two of "
                 "them ran, are ordered as in the paper (means over seeds, no interval).", evidence)


def merge_claims(claims: list[Claim]) -> list[Claim]:
    """One claim per (section, claim text), in first-seen order: the results joined, the verdict the
    common one, or 'partly reproduced' where the parts disagree and any part holds at least partly,
    'not reproduced' where none does."""
    groups: dict[tuple, list[Claim]] = {}
    for c in claims:
        groups.setdefault((c.section, c.claim), []).append(c)
    out = []
    for (section, claim), cs in groups.items():
        verdicts = {c.verdict for c in cs}
        verdict = (verdicts.pop() if len(verdicts) == 1 else "partly reproduced"
                   if verdicts & {"reproduced", "partly reproduced"} else "not reproduced")
        ours = " ".join(dict.fromkeys(c.ours for c in cs))
        why = " ".join(dict.fromkeys(sentence for c in cs for sentence in re.split(r"(?<=\.) ", c.why)))
        out.append(Claim(section, claim, ours, verdict, why, cs[0].evidence))
    return out


def _claims_table1(summary, diffs, paper, dataset, split, available, evidence) -> list[Claim]:
    claims = []
    _, means = table1_block(summary, dataset, split, "in_batch")
    d = diffs[(diffs.split == split) & (diffs.protocol == "in_batch")] if not diffs.empty else diffs
    run = [m for m in means.columns if m != "DQRec"]
    paper_run = [p for p in PAPER_MODELS[:-1] if registry_name(p) in means.columns]
    where = f"{dataset}, {split} split"
    models_said = (f"{len(run)} other models ({', '.join(run)}; of the paper's {len(PAPER_MODELS) - 1} baselines "
                   f"{len(paper_run)} ran{': ' + ', '.join(paper_run) if paper_run else ''})")

    # 1. DQRec is best on every metric.
    if "DQRec" in means.columns and run and not d.empty:
        best_other = _best_others(means)
        rows = [d[(d.b == best_other[m]) & (d.metric == m)].iloc[0] for m in means.index]
        ahead = [r.metric for r in rows if r["diff"] > 0 and not r.inside_noise]
        tie = [r.metric for r in rows if r.inside_noise]
        behind = [f"{r.metric} ({r.b} {r.mean_b:.4f} vs {r.mean_a:.4f})" for r in rows if r["diff"] < 0 and not r.inside_noise]
        verdict = ("reproduced" if len(ahead) == len(rows) else "not reproduced" if not ahead else "partly reproduced")
        ours = (f"On the {split} split, against {models_said}: DQRec ahead of the best other model beyond the noise on "
                f"{len(ahead)} of {len(rows)} metrics" + (f"; inside the noise on {', '.join(tie)}" if tie else "")
                + (f"; behind on {', '.join(behind)}" if behind else "") + ".")
        n_paper = len(PAPER_MODELS) - 1
        why = ("Differences judged by 95% intervals from a paired bootstrap over test samples and, with several "
               "seeds, across seeds. " + (f"On the {split} split {n_paper - len(paper_run)} of the paper's {n_paper} "
                                          f"baselines have not run on {dataset} yet: DQRec is tested against "
                                          + ("the one that has" if len(paper_run) == 1 else f"the {len(paper_run)} that have")
                                          + " and ours." if len(paper_run) < n_paper else ""))
        claims.append(Claim("Table 1", "DQRec outperforms every baseline on every metric (Recall and NDCG @5, @10, "
                            "@20) on MovieLens.", ours, verdict, why.strip(), evidence))

    # 2. The gain is larger in Recall than in NDCG.
    if "DQRec" in means.columns and run:
        best_other = means.drop(columns=["DQRec"]).max(axis=1)
        gain = 100 * (means["DQRec"] / best_other - 1)
        # counted only where DQRec gains at all: a smaller loss in Recall than in NDCG is no larger gain
        larger = [k for k in (5, 10, 20) if gain[f"Recall@{k}"] > max(gain[f"NDCG@{k}"], 0)]
        paper_m = paper[paper.dataset == "MovieLens"].pivot(index="metric", columns="model", values="value")
        paper_gain = 100 * (paper_m["DQRec"] / paper_m.drop(columns=["DQRec"]).max(axis=1) - 1)
        verdict = "reproduced" if len(larger) == 3 else "not reproduced" if not larger else "partly reproduced"
        ours = (f"{split.capitalize()} split: DQRec's gain over the best other model, Recall vs NDCG: "
                + ", ".join(f"@{k} {gain[f'Recall@{k}']:+.1f}% vs {gain[f'NDCG@{k}']:+.1f}%" for k in (5, 10, 20))
                + " (paper: " + ", ".join(f"@{k} {paper_gain[f'Recall@{k}']:+.1f}% vs {paper_gain[f'NDCG@{k}']:+.1f}%"
                                           for k in (5, 10, 20)) + ").")
        claims.append(Claim("Table 1", "DQRec's improvement is larger in Recall than in NDCG.", ours, verdict,
                            f"On the {split} split DQRec gains in Recall, and more than in NDCG, at {len(larger)} of 3 "
                            "cut-offs; gains are relative to the best other model we ran, not the paper's baselines.",
                            evidence))

    # 3. The augmentation helps: DQRec above its own base (implied by Section 6.2).
    if not d.empty and "DualTower" in set(d.b):
        base = d[d.b == "DualTower"]
        up = base[(base["diff"] > 0) & ~base.inside_noise]
        down = base[(base["diff"] < 0) & ~base.inside_noise]
        r5 = base[base.metric == "Recall@5"].iloc[0]
        verdict = ("reproduced" if len(up) == len(base) else "not reproduced" if not len(up) else "partly reproduced")
        claims.append(Claim("Table 1", "The augmentation (semantic-ID features and linkages) improves on the same "
                            "model without it.",
                            f"{split.capitalize()} split: DQRec vs its base DualTower ahead beyond the noise on "
                            f"{len(up)} of {len(base)} metrics, behind on {len(down)}, inside the noise on "
                            f"{len(base) - len(up) - len(down)}; Recall@5 {r5.text}.", verdict,
                            "DualTower is DQRec with every augmentation switched off (same trainer, data and seeds); "
                            "DQRec's semantic IDs also carry user and item attributes DualTower never sees.", evidence))

    # 4-5. NCF among the weakest, VQRec ahead of the other baselines (elsewhere: :func:`claims_table1`).
    claims += [_rank_claim(name, means, where, evidence) for name in RANK_CLAIMS if name in means.columns]

    # 6. The magnitudes.
    paper_dq = paper[(paper.dataset == "MovieLens") & (paper.model == "DQRec")].set_index("metric").value
    if "DQRec" in means.columns:
        ratio = paper_dq.reindex(means.index) / means["DQRec"]
        best_ours = means.max(axis=1)
        claims.append(Claim("Table 1", f"DQRec reaches Recall@5 {paper_dq['Recall@5']:.4f} and NDCG@5 "
                            f"{paper_dq['NDCG@5']:.4f} on MovieLens (in-batch).",
                            f"{split.capitalize()} split: our DQRec Recall@5 {means.loc['Recall@5', 'DQRec']:.4f}, NDCG@5 "
                            f"{means.loc['NDCG@5', 'DQRec']:.4f}; the paper's numbers are "
                            f"{ratio.min():.1f}-{ratio.max():.1f}x ours, and {(paper_dq.reindex(means.index) / best_ours).min():.1f}x "
                            "or more above the best model we ran on every metric.",
                            "reproduced" if (ratio.between(0.8, 1.25)).all() else "not reproduced",
                            "Same metric and protocol as the paper describes them; the paper does not say how it "
                            "split the data or how many negatives a batch held, see the chapter.", evidence))

    # 7. Books and Netflix.
    for name in ("Books", "Netflix"):
        if available.get(name, "not checked"):
            claims.append(Claim("Table 1", f"DQRec outperforms every baseline on {name}.", f"{name}: not run here.",
                                "not testable here", f"{PAPER_DATASET[name]}: {available.get(name, 'not checked')}",
                                evidence))
    return claims


# ----------------------------------------------------------------------------------------------
# The verdict page
# ----------------------------------------------------------------------------------------------
def collect_claims(results_dir: Path, extra: list[Claim] = ()) -> list[Claim]:
    """Every claim: ``extra`` (computed by the caller) and those of each ``claims_<chapter>`` function of
    :mod:`dqrec.findings` (called with ``results_dir`` where it takes an argument). A function that
    raises is reported as a claim 'not testable here' naming the error, so the page still builds."""
    from . import findings

    claims = list(extra)
    for name, fn in sorted(inspect.getmembers(findings, inspect.isfunction)):
        if not name.startswith("claims_") or fn.__module__ != findings.__name__:
            continue
        try:
            claims += list(fn(results_dir) if inspect.signature(fn).parameters else fn())
        except Exception as err:  # a missing results file: say so on the page instead of hiding it
            claims.append(Claim(name.removeprefix("claims_"), f"(claims of {name})", "could not be computed",
                                "not testable here", f"{type(err).__name__}: {err}", ""))
    return claims


def claims_frame(claims: list[Claim]) -> pd.DataFrame:
    return pd.DataFrame([c.__dict__ for c in claims], columns=["section", "claim", "ours", "verdict", "why",
                                                               "evidence"])


def chapter_title(stem: str) -> str:
    """The title (first '# ' heading) of notebooks/<stem>.py, or the stem if there is none."""
    from .experiment import ROOT

    path = ROOT / "notebooks" / f"{stem}.py"
    if path.exists():
        for line in path.read_text().splitlines():
            if line.startswith("# # "):
                return line[4:].strip()
    return stem.split("_", 1)[-1].replace("_", " ")


def evidence_link(evidence: str, prefix: str = "", chapters=None) -> str:
    """Markdown link to a chapter by its title: '05_ablations' or '05_ablations#anchor' ->
    '[Ablations (Table 3)](05_ablations.ipynb)'; the title alone where ``chapters`` (the stems in the
    book) is given and lacks it."""
    if not evidence:
        return ""
    stem = evidence.split("#")[0]
    if chapters is not None and stem not in chapters:
        return f"{_md(chapter_title(stem))} (not in this build)"
    return f"[{_md(chapter_title(stem))}]({prefix}{stem}.ipynb)"


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def verdict_counts(claims: pd.DataFrame) -> str:
    """'3 reproduced, 2 partly reproduced, ...' in the order of :data:`VERDICTS`."""
    counts = claims.verdict.value_counts()
    return ", ".join(f"{int(counts[v])} {v}" for v in VERDICTS if v in counts)


def verdict_summary(claims: pd.DataFrame, prefix: str = "", chapters=None, note: str = "") -> str:
    """Markdown: the counts, ``note`` (e.g. :func:`coverage_summary`), then one table row per claim
    (section, claim, verdict, evidence link), then :func:`model_notes` on the models the claims name."""
    lines = [f"Of the paper's {len(claims)} claims tested: **{verdict_counts(claims)}**." + (f" {note}" if note else ""),
             "", "| Section | Claim | Verdict | Evidence |", "| --- | --- | --- | --- |"]
    lines += [f"| {_md(c.section)} | {_md(c.claim)} | **{c.verdict}** | {evidence_link(c.evidence, prefix, chapters)} |"
              for c in claims.itertuples()]
    notes = model_notes(models_named(claims))
    return "\n".join(lines) + (f"\n\nHow some of the models named above ran here:\n\n{notes}" if notes else "")


def coverage_summary(coverage: pd.DataFrame, table: str = "Table 1") -> str:
    """One Markdown paragraph on what ``table``'s verdicts stand on, from a coverage frame
    (:meth:`dqrec.sweep.Outcome.coverage`: model, dataset, split, done, planned): runs done of planned,
    the models with no run at all, and those that ran on only some (data set, split) cells."""
    done, planned = int(coverage.done.sum()), int(coverage.planned.sum())
    by_model = coverage.groupby("model", sort=False).agg(done=("done", "sum"), cells=("done", "size"),
                                                         filled=("done", lambda d: int((d > 0).sum())))
    none = list(by_model.index[by_model.done == 0])
    some = [f"{m} ({r.filled} of {r.cells})" for m, r in by_model.iterrows() if 0 < r.filled < r.cells]
    text = f"{table}'s verdicts stand on **{done} of the {planned} runs planned** ({done / planned:.0%})."
    if none:
        text += f" No run yet: {', '.join(none)}."
    if some:
        text += f" Run on some (data set, split) cells only: {', '.join(some)}."
    return text + (" A missing run is compute not spent yet, not a model that failed: the table's chapter lists "
                   "each." if done < planned else "")


def coverage_note(results_root: Path, params: dict | None = None) -> str:
    """The verdict page's note on what Table 1 stands on: :func:`coverage_summary` of
    ``table1_coverage.csv``, where chapter 04 wrote it, :func:`missing_run_summary` of
    ``table1_missing_hours.csv`` and, given the profile's ``params``, the patience check of
    ``patience_check.csv`` (:func:`dqrec.experiment.variant_summary`; all under ``results_root``); empty
    where none exists."""
    from .experiment import variant_comparison, variant_summary

    root = Path(results_root)
    coverage, cost, patience = (root / f"{name}.csv" for name in ("table1_coverage", "table1_missing_hours",
                                                                  "patience_check"))
    parts = [coverage_summary(pd.read_csv(coverage))] if coverage.exists() else []
    if cost.exists() and parts:
        parts.append(missing_run_summary(pd.read_csv(cost)))
    if params and patience.exists():
        check = variant_summary(variant_comparison(pd.read_csv(patience), "patience"), "patience",
                                params["patience"], params["patience_check"])
        if check:
            parts.append(f"Table 1's runs stop after {params['patience']} epochs without a better validation score. "
                         + check.rstrip(".") + " (chapter 04, the patience check).")
    return " ".join(parts)


def verdict_details(claims: pd.DataFrame, prefix: str = "", chapters=None) -> str:
    """Markdown: per section a heading, then each claim with ours, verdict, why and the evidence link."""
    out = []
    for section, g in claims.groupby("section", sort=False):
        out.append(f"### {section}\n")
        for c in g.itertuples():
            link = evidence_link(c.evidence, prefix, chapters)
            out.append(f"**{c.claim}** *{c.verdict}*.\n\n- Ours: {c.ours}\n- Why: {c.why}"
                       + (f"\n- Evidence: {link}" if link else "") + "\n")
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------
# Provenance
# ----------------------------------------------------------------------------------------------
def run_provenance(results: pd.DataFrame, cache=None) -> pd.DataFrame:
    """Per (dataset, split, model[, parameter, value_of_parameter]) of run rows: the seeds, the epochs
    run per seed ('not recorded' in tables from before epochs were kept), the commits that computed
    the runs (short) and, from the run files in ``cache``, the fingerprints of the splits the runs saw
    (of the files of the same model and seeds on that data set and split; the protocol forensics' runs,
    which see other splits, are not Table 1's)."""
    keys = [c for c in ("dataset", "split", "model", "parameter", "value_of_parameter") if c in results.columns]
    runs = results.drop_duplicates(keys + ["seed"])
    fingerprints = {}
    if cache is not None:
        for path in Path(cache).glob("*.json"):
            spec = json.loads(path.read_text())
            if "forensics" not in spec:
                at = (spec.get("dataset"), spec.get("split"), spec.get("model"), spec.get("seed"))
                fingerprints.setdefault(at, set()).add(spec.get("data"))
    rows = []
    for key, g in runs.groupby(keys, sort=False):
        g = g.sort_values("seed")
        row = dict(zip(keys, key))
        epochs = (", ".join(str(int(e)) for e in g.epochs_run) if "epochs_run" in g.columns else "not recorded")
        rows.append(dict(row, seeds=", ".join(map(str, g.seed)), epochs=epochs,
                         commits=", ".join(sorted({str(s)[:8] for s in g.git_sha})),
                         data=", ".join(sorted({x for seed in g.seed for x in fingerprints.get(
                             (row["dataset"], row["split"], row["model"], int(seed)), ()) if x}))))
    return pd.DataFrame(rows)


def runs_behind_tables(results_root: Path, tables) -> dict[str, pd.DataFrame]:
    """:func:`run_provenance` of each of ``tables`` (names of ``<results_root>/<name>.csv``) that holds
    model runs (columns seed, git_sha and model), against the run cache ``<results_root>/runs``."""
    root = Path(results_root)
    out = {}
    for name in tables:
        if {"seed", "git_sha", "model"} <= set(pd.read_csv(root / f"{name}.csv", nrows=0).columns):
            out[name] = run_provenance(pd.read_csv(root / f"{name}.csv"), root / "runs")
    return out


def rekey_log(results_root: Path) -> pd.DataFrame:
    """The checks behind the cached runs carried over a change of their code (``<results_root>/rekey.json``,
    written by ``scripts/rekey_runs.py --verify``): per change, its date and commit, the models whose runs
    it carried, the run recomputed to check it, the seconds that took, whether it agreed and how many runs
    were re-keyed. Empty when no run was ever re-keyed."""
    path = Path(results_root) / "rekey.json"
    log = json.loads(path.read_text()) if path.exists() else []
    models = {}  # (from, to) -> the models of the runs carried over that change (by any check of it)
    for e in log:
        for name in e["renamed"]:
            run = Path(results_root) / "runs" / f"{name}.json"
            if run.exists():
                models.setdefault((e["from"], e["to"]), set()).add(json.loads(run.read_text())["model"])
    rows = []
    for e in log:
        rows.append({"date": e["date"], "commit": str(e["git_sha"])[:8], "code change": f"{e['from']} -> {e['to']}",
                     "models": ", ".join(sorted(models.get((e["from"], e["to"]), ()))),
                     "run recomputed": e["recomputed"].removesuffix(".json"),
                     "seconds": e["seconds"], "agrees": "yes" if e["agrees"] else f"no: {e['difference']}",
                     "runs re-keyed": len(e["renamed"])})
    return pd.DataFrame(rows, columns=["models", "agrees", "runs re-keyed", "seconds", "run recomputed", "date",
                                       "commit", "code change"])


def table_provenance(name: str, results_root: Path) -> dict:
    """From ``<results_root>/<name>.json``: commit, date, profile, data checksums, wall time."""
    meta = json.loads((Path(results_root) / f"{name}.json").read_text())
    return dict(table=name, commit=str(meta.get("git_sha", ""))[:8], created=meta.get("created", ""),
                profile=meta.get("params", {}).get("profile", ""),
                checksums="; ".join(f"{k}: {str(v)[:12]}" for k, v in (meta.get("checksums") or {}).items()),
                wall_minutes=None if meta.get("wall_seconds") is None else round(meta["wall_seconds"] / 60, 1))


# The paper's hyper-parameter names (results/paper/hyperparameters.csv) -> the profile key and the
# model default that set them here.
HPARAM_KEYS = {"L": "n_layers", "J": "codebook_size", "K": "k", "K_prime": "k_latent", "beta": "beta"}
MODEL_DEFAULTS = {"optimizer": "Adam", "learning_rate": "lr", "batch_size": "batch_size", "embedding_dim": "dim"}


PAPER_COLUMN = "in the paper (6.1.4)"


def hyperparameter_deviations(profiles: dict, paper_hparams: pd.DataFrame, model_params: dict) -> pd.DataFrame:
    """The paper's hyper-parameters (column :data:`PAPER_COLUMN`) beside each profile's value: one row per
    paper setting, a column per profile; cells equal to the paper read 'as paper'.

    model_params: DQRec's constructor defaults (``make_model('DQRec').get_params()``)."""
    rows = []
    for _, p in paper_hparams.iterrows():
        row = {"setting": p["name"], PAPER_COLUMN: str(p.value)}
        for prof, params in profiles.items():
            if p["name"] in HPARAM_KEYS:
                ours = params.get(HPARAM_KEYS[p["name"]])
            elif p["name"] == "optimizer":
                ours = "Adam (dqrec.train.Trainer)"
            elif p["name"] in MODEL_DEFAULTS:
                ours = model_params.get(MODEL_DEFAULTS[p["name"]])
            elif p["name"] == "split":
                ours = "8:1:1 random, and global temporal (leak-free)"
            elif p["name"] == "positive_threshold":
                from .data import POSITIVE_THRESHOLD

                ours = f"rating>{POSITIVE_THRESHOLD:g}"
            else:
                ours = "?"
            same = _same(ours, p.value)
            row[prof] = "as paper" if same else str(ours)
        rows.append(row)
    return pd.DataFrame(rows)


def _same(ours, paper) -> bool:
    try:
        return float(ours) == float(paper)
    except (TypeError, ValueError):
        return str(ours).split(" ")[0].lower() == str(paper).split(" ")[0].lower()


# What the paper states about the scope of each experiment (Sections 6.1-6.4), against which the
# profiles' choices are compared; None: the paper does not say.
PAPER_SCOPE = {
    "Table 1 data sets": ["MovieLens", "Books", "Netflix"],
    "Table 3 data sets": ["MovieLens", "Books", "Netflix"],
    "Fig. 3 data set": "MovieLens",
    "seeds per result": None,
    "epochs / early stopping": None,
    "user/item sequence length": None,
    "representation pre-training epochs": None,
    "split": "8:1:1 (how, not said)",
}


def profile_deviations(profiles: dict) -> pd.DataFrame:
    """Where each profile departs from the paper's stated scope (:data:`PAPER_SCOPE`) or fills in
    what it leaves unsaid: one row per (profile, item) with the paper's statement, ours and whether
    it is a deviation or a choice where the paper is silent."""
    paper_name = {v: k for k, v in PAPER_DATASET.items()}
    rows = []

    def add(profile, item, ours):
        paper = PAPER_SCOPE[item]
        if paper is None:
            kind = "paper silent: our choice"
        else:
            same = (sorted(paper_name.get(d, d) for d in ours) == sorted(paper) if isinstance(paper, list)
                    else str(ours) == str(paper))
            kind = "as paper" if same else "deviation"
        shown = ", ".join(ours) if isinstance(ours, list) else str(ours)
        rows.append(dict(profile=profile, item=item, paper="not stated" if paper is None else
                         (", ".join(paper) if isinstance(paper, list) else str(paper)), ours=shown, kind=kind))

    for prof, p in profiles.items():
        add(prof, "Table 1 data sets", [paper_name.get(d, d) for d in p["datasets"]])
        add(prof, "Table 3 data sets", [paper_name.get(d, d) for d in p["ablation_seeds"]])
        add(prof, "Fig. 3 data set", paper_name.get(p["sensitivity_dataset"], p["sensitivity_dataset"]))
        add(prof, "seeds per result", f"Table 1: {len(p['seeds'])}; Table 3: "
            + "; ".join(f"{d} {len(s)}" for d, s in p["ablation_seeds"].items())
            + f"; Fig. 3: {len(p['sensitivity_seeds'])}")
        add(prof, "epochs / early stopping", f"at most {p['epochs']} epochs, stop after {p['patience']} without a "
            "better validation NDCG@10")
        add(prof, "user/item sequence length", str(p["seq_len"]))
        add(prof, "representation pre-training epochs", str(p["representation_epochs"]))
        add(prof, "split", "8:1:1 random and global temporal, both reported")
    return pd.DataFrame(rows)


DEPARTURE_KINDS = {"deviation": "departs from the paper", "paper silent: our choice": "chooses where the paper is silent"}


def profile_departures(deviations: pd.DataFrame, profile: str) -> str:
    """HTML of two tables of :func:`profile_deviations` rows for ``profile``: where it departs from
    the paper, then where it chooses what the paper leaves unsaid (item, paper, ours)."""
    ours = deviations[deviations.profile == profile]
    return "".join(plain(ours[ours.kind == kind][["item", "paper", "ours"]], f"Where the {profile} profile {caption}",
                         wrap=["ours"]) for kind, caption in DEPARTURE_KINDS.items())


def profile_scope(profiles: dict) -> pd.DataFrame:
    """What each profile runs where the paper is silent or that deviates from it: datasets, seeds,
    training budget, Table 3 and Fig. 3 scope, representation pre-training."""
    rows = []
    for prof, p in profiles.items():
        rows.append({
            "profile": prof,
            "datasets (Table 1)": ", ".join(p["datasets"]),
            "seeds (Table 1)": ", ".join(map(str, p["seeds"])),
            "epochs cap / patience": f"{p['epochs']} / {p['patience']}",
            "sequence length": p["seq_len"],
            "Table 3 seeds": "; ".join(f"{d}: {', '.join(map(str, s))}" for d, s in p["ablation_seeds"].items()),
            "Fig. 3 data / seeds": f"{p['sensitivity_dataset']} / {', '.join(map(str, p['sensitivity_seeds']))}",
            "Fig. 3 grid": "; ".join(f"{k}: {v}" for k, v in p["sensitivity_grid"].items()),
            "representation epochs": p["representation_epochs"],
        })
    return pd.DataFrame(rows).set_index("profile").T

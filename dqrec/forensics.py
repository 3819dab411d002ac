"""Protocol forensics: which evaluation and data-preparation choices move the numbers, and by how much.

The paper's MovieLens Recall@10 for DQRec is 0.83 under its in-batch protocol; ours is far lower. This
module measures, with real fitted models, how far each choice the paper leaves open moves every model,
each varied alone from our default (global temporal 8:1:1 split, leak-free sequences, in-batch and full
ranking with all known positives removed and random tie-breaking):

* data side (one fit per cell, model and seed): the split (:data:`dqrec.data.SPLITS`), how S_u and S_i
  are built (:data:`dqrec.data.SEQUENCE_RULES`), and fitting on train + valid + test;
* evaluation side (every cell on the default fit): the candidate pool (in-batch of 1024 distinct items,
  with duplicates, batches of 256 and 100, 100 sampled negatives, all items), what is removed from the
  candidates (all known positives, training positives only, nothing), the tie rule, and, on the random
  split, the item states of DQRec-style models (last training state, ours, against the state at the
  latest interaction strictly before the test sample).

Every factor is an option of the one data and evaluation code path (:func:`dqrec.data.prepare`,
:func:`dqrec.evaluate.evaluate`); only the item-state scorer is built here, from DQRec's fitted pieces.
Each (data cell, evaluation cell, model, seed, evaluation seed) is one run-cache file keyed by
:func:`dqrec.experiment.run_key` with the cell's settings, holding Recall/NDCG@5/10/20, the mean number
of candidates per sample and the chance level (:func:`dqrec.evaluate.expected_random_metrics` with the
same options).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .data import Split, prepare
from .evaluate import candidate_counts, evaluate, expected_random_metrics
from .experiment import (RUN_COLUMNS, _atomic_write, _tuned_point, check_writable, fit_model, git_sha, machine,
                         paper_table, read_cached_run, run_key, run_spec, timer)

MODELS = ("MostPopular", "EASE", "DualTower", "DQRec")  # LightGCN, SASRec: add their registry names
DETERMINISTIC = ("MostPopular", "EASE", "ItemKNN")  # fitted once, whatever the seed
STATEFUL = ("DQRec", "DualTower")  # models whose candidates carry an item state (S_i, Q_i, semantic ID)
PAPER_ORDER = {"sequential": ("Bert4Rec", "DuoRec", "CL4SRec", "ICLRec", "MAERec"), "graph": ("NGCF", "LGCN", "HCCF"),
               "NCF": ("NCF",)}  # the paper's MovieLens families, and ours that belong to them
FAMILIES = {"SASRec": "sequential", "LightGCN": "graph", "NCF": "NCF"}


@dataclass(frozen=True)
class DataCell:
    """A data-preparation setting: one fit per (cell, model, seed)."""

    factor: str
    level: str
    split: str = "temporal"
    user_seq_rule: str = "before"
    item_seq_rule: str = "before"
    train_parts: tuple = ("train",)


@dataclass(frozen=True)
class EvalCell:
    """An evaluation setting, applied to a fitted model: one protocol with its options."""

    factor: str
    level: str
    protocol: str = "in_batch"
    batch_size: int = 1024
    duplicates: bool = False
    exclusion: str = "all"  # all | train | none: which known positives are removed from the candidates
    ties: str = "random"
    item_states: str = "last_train"  # | before_sample (DQRec-style models on the random split)

    @property
    def seeded(self) -> bool:
        """Whether the evaluation seed changes the candidates (batch order, sampled negatives)."""
        return self.protocol != "full"


DEFAULT = "ours"
DATA_CELLS = (
    DataCell("default", DEFAULT),
    DataCell("split", "per-user chronological", split="user_temporal"),
    DataCell("split", "random", split="random"),
    DataCell("split", "leave-one-out", split="leave_one_out"),
    DataCell("sequence", "S_u at or before t", user_seq_rule="at_or_before"),
    DataCell("sequence", "S_u with the target", user_seq_rule="with_target"),
    DataCell("sequence", "S_u static last N", user_seq_rule="static"),
    DataCell("sequence", "S_i with the target user", item_seq_rule="with_target"),
    DataCell("fit on", "train+valid+test", train_parts=("train", "valid", "test")),
)
BASE_EVAL = (EvalCell("default", DEFAULT, "in_batch"), EvalCell("default", DEFAULT, "full"))
FACTOR_EVAL = (
    EvalCell("candidates", "1024 with duplicates", duplicates=True),
    EvalCell("candidates", "batch of 256", batch_size=256),
    EvalCell("candidates", "batch of 100", batch_size=100),
    EvalCell("candidates", "100 sampled negatives", protocol="negatives"),
    *(EvalCell("exclusion", level, protocol, exclusion=how) for protocol in ("in_batch", "full")
      for how, level in (("train", "training positives only"), ("none", "nothing removed"))),
    *(EvalCell("ties", rule, protocol, ties=rule) for protocol in ("in_batch", "full")
      for rule in ("optimistic", "pessimistic")),
)
ITEM_STATE_EVAL = tuple(EvalCell("item states", "before the test sample", p, item_states="before_sample")
                        for p in ("in_batch", "full"))


def eval_cells(data_cell: DataCell, model: str) -> tuple[EvalCell, ...]:
    """The evaluation cells run on a fit of ``data_cell``: every cell on our default data, the defaults
    elsewhere, plus the item-state cells for DQRec-style models on the random split."""
    if data_cell.factor == "default":
        return BASE_EVAL + FACTOR_EVAL
    if data_cell.split == "random" and model in STATEFUL:
        return BASE_EVAL + ITEM_STATE_EVAL
    return BASE_EVAL


def make_split(dataset, cell: DataCell, seq_len: int, seed: int = 0) -> Split:
    """The split of ``cell`` (a copy fitting on more parts for the "fit on" cell)."""
    split = prepare(dataset, split=cell.split, seq_len=seq_len, seed=seed, user_seq_rule=cell.user_seq_rule,
                    item_seq_rule=cell.item_seq_rule)
    if tuple(cell.train_parts) != ("train",):
        params = {k: v for k, v in split.params.items() if k != "fingerprint"}
        split = dataclasses.replace(split, train_parts=tuple(cell.train_parts), params=params)
    return split


def exclusion_matrix(split: Split, exclusion: str) -> sp.csr_matrix:
    """The ``known`` matrix of :func:`dqrec.evaluate.evaluate` for an exclusion setting."""
    if exclusion == "all":
        return split.known()
    if exclusion == "train":
        return split.matrix(("train",))
    if exclusion == "none":
        return sp.csr_matrix((split.n_users, split.n_items), dtype=np.float32)
    raise ValueError(f"exclusion must be 'all', 'train' or 'none', got {exclusion!r}")


class BeforeSampleScorer:
    """DQRec-style scorer whose candidate items take their state at their latest interaction strictly
    before each test sample's time (any part), instead of their last training state.

    Every sample row is an item state; z_i of all of them (and of each item's cold state) is computed
    once, then each (sample, candidate) pair gathers its own. Built from the fitted model's network and
    inputs (``net_``, ``_inputs``, ``split_``); the model itself is not changed.
    """

    def __init__(self, model, chunk: int = 8192, sample_chunk: int = 256):
        import torch

        from .model import ItemStateLookup

        split = model.split_
        rows = np.arange(len(split.samples))
        items = np.concatenate([split.samples.item.to_numpy(np.int64), np.arange(split.n_items)])
        states = np.concatenate([rows, np.full(split.n_items, -1)])  # sample rows, then each item's cold state
        with torch.no_grad():
            self.z_ = torch.cat([model.net_(model._inputs(None, [(items[s:s + chunk], states[s:s + chunk])]))[1][0]
                                 for s in range(0, len(items), chunk)])
        self.lookup_, self.n_rows_, self.model, self.sample_chunk = ItemStateLookup(split.samples), len(rows), model, \
            sample_chunk

    def state_rows(self, times: np.ndarray, items: np.ndarray) -> np.ndarray:
        """(B, M) row of ``z_`` for each (sample time, candidate): its latest sample before, else its cold row."""
        b, m = len(times), len(items)
        found = self.lookup_.latest_before(np.tile(items, b), np.repeat(times, m)).reshape(b, m)
        return np.where(found >= 0, found, self.n_rows_ + np.asarray(items)[None, :])

    def score(self, batch: pd.DataFrame, items: np.ndarray) -> np.ndarray:
        import torch

        m = self.model
        with torch.no_grad():
            z_u, _ = m.net_(m._inputs(batch.index.to_numpy(), [(np.zeros(0, np.int64), np.zeros(0, np.int64))]))
            out = np.empty((len(batch), len(items)), np.float32)
            times = batch.timestamp.to_numpy(np.int64)
            for s in range(0, len(batch), self.sample_chunk):
                sl = slice(s, s + self.sample_chunk)
                z_i = self.z_[torch.from_numpy(self.state_rows(times[sl], items)).to(m.device_)]  # (b, M, d)
                out[sl] = torch.einsum("bd,bmd->bm", z_u[sl], z_i).cpu().numpy()
        return out


def cell_scorer(model, cell: EvalCell):
    if cell.item_states == "before_sample":
        return BeforeSampleScorer(model)
    return model.scorer("test")


def cell_settings(data_cell: DataCell, cell: EvalCell, eval_seed: int) -> dict:
    """What the run key adds for a forensic cell."""
    return dict(data=dataclasses.asdict(data_cell), eval=dataclasses.asdict(cell), eval_seed=eval_seed)


COLUMNS = RUN_COLUMNS + ["data_factor", "data_level", "eval_factor", "eval_level", "eval_seed", "candidates",
                         "chance"]
CELL_ROWS = 6  # metrics (Recall, NDCG) x k in (5, 10, 20) of one protocol


def _evaluate_cell(model, split: Split, cell: EvalCell, eval_seed: int, chance_cache: dict):
    known = exclusion_matrix(split, cell.exclusion)
    kw = dict(batch_size=cell.batch_size, seed=eval_seed, duplicates=cell.duplicates)
    res, ranks = evaluate(cell_scorer(model, cell), split.test, known, split.n_items, protocols=(cell.protocol,),
                          progress=False, return_ranks=True, ties=cell.ties, **kw)
    key = (cell.protocol, cell.exclusion, eval_seed, cell.batch_size, cell.duplicates)
    if key not in chance_cache:  # model-independent
        chance = expected_random_metrics(split.test, known, split.n_items, protocols=(cell.protocol,), **kw)
        counts = candidate_counts(split.test, known, split.n_items, cell.protocol, **kw)
        chance_cache[key] = (chance.value.to_numpy(), float(counts.mean()))
    chance, mean_candidates = chance_cache[key]
    return res.assign(chance=chance, candidates=mean_candidates), ranks


def eval_seeds_of(params: dict, dataset: str) -> list[int]:
    """A profile's evaluation seeds for ``dataset`` (``forensics_eval_seeds``: a list, or one per dataset)."""
    seeds = params["forensics_eval_seeds"]
    return list(seeds[dataset] if isinstance(seeds, dict) else seeds)


def run_grid(dataset, params: dict, models=MODELS, seeds=(0,), eval_seeds=(0,), cache: Path | None = None,
             data_cells=DATA_CELLS, log=print) -> pd.DataFrame:
    """Fit each model once per data cell and seed, evaluate its evaluation cells (:func:`eval_cells`), for
    each evaluation seed where the seed changes the candidates; cached cells are read back, and a fit is
    skipped when all its cells are cached. ``params``: a profile's (:func:`dqrec.experiment.profile_params`).

    Returns one row per (data cell, eval cell, model, seed, eval seed, metric, k): :data:`COLUMNS`.
    """
    if cache is not None:
        check_writable(Path(cache))
    frames = []
    for data_cell in data_cells:
        split = make_split(dataset, data_cell, params["seq_len"])
        chance_cache: dict = {}
        for name in models:
            for seed in (seeds[:1] if name in DETERMINISTIC else seeds):
                todo = [(cell, s) for cell in eval_cells(data_cell, name) for s in (eval_seeds if cell.seeded
                                                                                    else eval_seeds[:1])]
                paths = {(cell, s): None if cache is None else
                         Path(cache) / run_key(split, name, seed, params, cell_settings(data_cell, cell, s))
                         for cell, s in todo}
                done = {job: read_cached_run(p, len(split.test), CELL_ROWS, COLUMNS) if p is not None else None
                        for job, p in paths.items()}
                missing = [job for job in todo if done[job] is None]
                if missing:
                    with timer() as fit_time:
                        model = fit_model(name, split, seed, params)
                    trained = model.trainer_.summary() if hasattr(model, "trainer_") else {}
                    log(f"{split.name} [{data_cell.factor}: {data_cell.level}] {name} s{seed}: fitted in "
                        f"{fit_time():.0f} s, evaluating {len(missing)} cells")
                for job in missing:
                    cell, s = job
                    with timer() as eval_time:
                        res, ranks = _evaluate_cell(model, split, cell, s, chance_cache)
                    res = res.assign(dataset=split.name, split=split.kind, model=name, seed=seed,
                                     fit_seconds=round(fit_time(), 2), eval_seconds=round(eval_time(), 2),
                                     epochs_run=trained.get("epochs_run", 0), best_epoch=trained.get("best_epoch", 0),
                                     stopped_by=trained.get("stopped_by", "closed form"), tuned=_tuned_point(model),
                                     git_sha=git_sha(), data_factor=data_cell.factor, data_level=data_cell.level,
                                     eval_factor=cell.factor, eval_level=cell.level, eval_seed=s)[COLUMNS]
                    if paths[job] is not None:
                        _store(paths[job], res, ranks, dict(run_spec(split, name, seed, params,
                                                                    cell_settings(data_cell, cell, s)),
                                                           history=getattr(model, "history_", None),
                                                           machine=machine(model)))
                    done[job] = (res, ranks)
                frames += [done[job][0] for job in todo]
    out = pd.concat(frames, ignore_index=True)[COLUMNS]
    return out.assign(tuned=out.tuned.fillna("").astype(str))  # read back, '' is NaN


def _store(path: Path, res: pd.DataFrame, ranks: dict, spec: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path.with_suffix(".json"), lambda p: p.write_text(json.dumps(spec, indent=1, default=str) + "\n"))
    _atomic_write(path.with_suffix(".npz"), lambda p: np.savez_compressed(open(p, "wb"), **ranks))
    _atomic_write(path.with_suffix(".csv"), lambda p: res.to_csv(p, index=False))


# --------------------------------------------------------------------------------------------
# Reading the grid
# --------------------------------------------------------------------------------------------
CELL_KEYS = ["dataset", "model", "data_factor", "data_level", "eval_factor", "eval_level", "protocol"]


def cell_means(results: pd.DataFrame, metric: str = "Recall", k: int = 10) -> pd.DataFrame:
    """Mean (over fit and evaluation seeds) of ``metric@k`` per cell, with its chance level, mean
    candidates per sample, the sd over evaluation seeds and the number of runs."""
    sel = results[(results.metric == metric) & (results.k == k)]
    g = sel.groupby(CELL_KEYS, sort=False)
    return g.agg(value=("value", "mean"), sd=("value", "std"), runs=("value", "size"), chance=("chance", "mean"),
                 candidates=("candidates", "mean")).reset_index().fillna({"sd": 0.0})


def effects(results: pd.DataFrame, metric: str = "Recall", k: int = 10) -> pd.DataFrame:
    """Each factor's cells against their base, per (dataset, model, protocol): value, base and ratio.

    Base: our default cell of the same protocol (in-batch for candidate pools other than all items),
    and for item states the random-split cell with last training states. Our default itself and the
    "all items" level of the candidate pool (the full protocol) are listed with their own ratio.
    """
    m = cell_means(results, metric, k)
    default = m[(m.data_factor == "default") & (m.eval_factor == "default")].set_index(["dataset", "model", "protocol"])
    random = m[(m.data_level == "random") & (m.eval_factor == "default")].set_index(["dataset", "model", "protocol"])
    rows = []
    for r in m.itertuples(index=False):
        if r.data_factor != "default" and r.eval_factor == "default":
            factor, level, base = r.data_factor, r.data_level, default
        elif r.eval_factor == "item states":
            factor, level, base = r.eval_factor, r.eval_level, random
        elif r.eval_factor != "default":
            factor, level, base = r.eval_factor, r.eval_level, default
        else:
            factor, level, base = "default", DEFAULT, default
        base_protocol = "in_batch" if factor == "candidates" else r.protocol
        key = (r.dataset, r.model, base_protocol)
        b = base.value.get(key, np.nan)
        rows.append(dict(dataset=r.dataset, model=r.model, factor=factor, level=level, protocol=r.protocol,
                         value=r.value, sd=r.sd, chance=r.chance, candidates=r.candidates, base=b,
                         ratio=r.value / b if b else np.nan))
    out = pd.DataFrame(rows)
    full = out[(out.factor == "default") & (out.protocol == "full")].assign(
        factor="candidates", level="all items", base=np.nan)
    base_ib = out[(out.factor == "default") & (out.protocol == "in_batch")].set_index(["dataset", "model"]).value
    full = full.assign(base=[base_ib.get((d, mo), np.nan) for d, mo in zip(full.dataset, full.model)])
    full = full.assign(ratio=full.value / full.base)
    return pd.concat([out, full], ignore_index=True)


FACTOR_ORDER = ["default", "split", "candidates", "exclusion", "ties", "sequence", "item states", "fit on"]
LEVEL_ORDER = list(dict.fromkeys([DEFAULT] + [c.level for c in DATA_CELLS + FACTOR_EVAL + ITEM_STATE_EVAL] + ["all items"]))


def _view(eff: pd.DataFrame, protocol: str) -> pd.DataFrame:
    """Rows of ``protocol``; for in-batch also every candidate-pool level (each compared with the in-batch
    default: other batch sizes, duplicates, sampled negatives, all items)."""
    return eff[(eff.protocol == protocol) | ((eff.factor == "candidates") & (protocol == "in_batch"))]


def _ordered(table: pd.DataFrame) -> pd.DataFrame:
    """Rows indexed by (factor, level) in the grid's order."""
    return table.reindex(sorted(table.index, key=lambda i: (FACTOR_ORDER.index(i[0]), LEVEL_ORDER.index(i[1]))))


def ratio_table(eff: pd.DataFrame, protocol: str = "in_batch", models=None, dataset: str | None = None) -> pd.DataFrame:
    """(factor, level) x model table of ratios to the base, for one protocol: columns (dataset, model), or
    the models of one ``dataset`` alone (narrow enough for a page)."""
    e = _view(eff if dataset is None else eff[eff.dataset == dataset], protocol)
    e = e[e.factor != "default"]
    table = _ordered(e.pivot_table(index=["factor", "level"], columns=["dataset", "model"], values="ratio",
                                   aggfunc="first"))
    if models is not None:
        cols = [c for c in table.columns if c[1] in models]
        table = table[sorted(cols, key=lambda c: (c[0], list(models).index(c[1])))]
    return table if dataset is None else table.droplevel("dataset", axis=1)


def chance_table(eff: pd.DataFrame) -> pd.DataFrame:
    """Per (factor, level, protocol), in the grid's order: the mean number of candidates per sample and the
    chance-level value (a random ranking under the same candidates) of every dataset, one column each."""
    cells = eff.drop_duplicates(["dataset", "factor", "level", "protocol"])
    table = cells.pivot_table(index=["factor", "level", "protocol"], columns="dataset",
                              values=["candidates", "chance"], aggfunc="first")
    table = table.reindex(sorted(table.index, key=lambda i: (FACTOR_ORDER.index(i[0]), LEVEL_ORDER.index(i[1]), i[2])))
    table.columns = [f"{what}, {name}" for what, name in table.columns]
    return table.reset_index()


def largest_effects(eff: pd.DataFrame, n: int = 3, protocol: str = "in_batch") -> pd.DataFrame:
    """The ``n`` factors whose strongest level moves the models most: per (factor, level) the geometric
    mean over models and datasets of the ratio, ranked by |log ratio|, one level per factor."""
    e = _view(eff, protocol)
    e = e[(e.factor != "default") & (e.ratio > 0) & np.isfinite(e.ratio)]
    g = e.groupby(["factor", "level"]).ratio.agg(lambda r: float(np.exp(np.log(r).mean()))).rename("geo_ratio")
    g = g.reset_index().assign(strength=lambda d: np.abs(np.log(d.geo_ratio)))
    best = g.sort_values("strength", ascending=False).drop_duplicates("factor").head(n)
    per_model = e.pivot_table(index=["factor", "level"], columns=["dataset", "model"], values="ratio", aggfunc="first")
    return best.merge(per_model.reset_index().pipe(lambda d: d.set_axis(
        ["factor", "level"] + [f"{a} {b}" for a, b in per_model.columns], axis=1)), on=["factor", "level"])


def largest_effects_table(eff: pd.DataFrame, n: int = 3, protocol: str = "in_batch") -> pd.DataFrame:
    """:func:`largest_effects` for the page: one row per (factor, level, model), one ratio column per dataset,
    and the level's geometric mean over models and datasets."""
    best = largest_effects(eff, n, protocol)
    cols = [c for c in best.columns if c not in ("factor", "level", "geo_ratio", "strength")]
    long = best.melt(id_vars=["factor", "level", "geo_ratio"], value_vars=cols, var_name="column", value_name="ratio")
    long[["dataset", "model"]] = long.column.str.split(" ", n=1, expand=True)
    table = long.pivot_table(index=["factor", "level", "geo_ratio", "model"], columns="dataset", values="ratio",
                             aggfunc="first", sort=False).reset_index()
    table.columns.name = None
    return table.rename(columns={"geo_ratio": "geometric mean"})


def configurations(eff: pd.DataFrame, dataset: str, protocol: str = "in_batch") -> pd.DataFrame:
    """Per configuration (factor, level) on ``dataset``: each model's Recall@10, and whether DQRec is
    first and above its base DualTower (the paper's ordering claims we can check)."""
    e = _view(eff[eff.dataset == dataset], protocol)
    table = _ordered(e.pivot_table(index=["factor", "level"], columns="model", values="value", aggfunc="first"))
    table = table.reindex(columns=[m for m in list(MODELS) + sorted(table.columns) if m in table.columns]).loc[
        :, lambda t: ~t.columns.duplicated()]
    out = table.copy()
    if "DQRec" in table:  # NA where DQRec (or its base) has no cell yet
        out["DQRec first"] = (table.idxmax(axis=1) == "DQRec").astype(object).where(table.DQRec.notna(), pd.NA)
    if {"DQRec", "DualTower"} <= set(table):
        out["DQRec > DualTower"] = (table.DQRec > table.DualTower).astype(object).where(
            table.DQRec.notna() & table.DualTower.notna(), pd.NA)
    return out


def paper_value(metric: str = "Recall@10", model: str = "DQRec", dataset: str = "MovieLens") -> float:
    t = paper_table("table1_overall")
    return float(t[(t.dataset == dataset) & (t.metric == metric) & (t.model == model)].value.iloc[0])


def beside_paper(results: pd.DataFrame, dataset: str, model: str = "DQRec", protocol: str = "in_batch") -> pd.DataFrame:
    """``model``'s Recall@5/10/20 and NDCG@10 in each configuration of ``dataset`` (4 decimals), beside
    the paper's MovieLens values, with the ratio ours / paper (3 decimals: the table fits a page)."""
    rows = []
    for metric, k in (("Recall", 5), ("Recall", 10), ("Recall", 20), ("NDCG", 10)):
        e = effects(results, metric, k)
        e = _view(e[(e.dataset == dataset) & (e.model == model)], protocol)
        paper = paper_value(f"{metric}@{k}", model)
        rows += [dict(factor=r.factor, level=r.level, metric=f"{metric}@{k}", ours=r.value, paper=paper,
                      ratio=r.value / paper) for r in e.itertuples()]
    df = pd.DataFrame(rows)
    df = df.assign(ours=df.ours.round(4), ratio=df.ratio.round(3))
    table = df.pivot_table(index=["factor", "level"], columns="metric", values=["ours", "ratio"], aggfunc="first")
    table = _ordered(table.reindex(columns=["Recall@5", "Recall@10", "Recall@20", "NDCG@10"], level=1))
    # a header may break before its "@K" (a zero-width space) where eight metric columns are wider than the page
    return table.rename(columns=lambda c: c.replace("@", "\u200b@"), level=1)


def missing_models(models) -> list[str]:
    """The families of the paper's MovieLens ordering (sequential >> graph >> NCF) with no model here."""
    have = {FAMILIES[m] for m in models if m in FAMILIES}
    return [f for f in PAPER_ORDER if f not in have]


HONEST = ("split", "candidates", "exclusion", "ties")  # common-practice choices, each used in published work
LEAKS = ("sequence", "fit on")  # choices that let test information into the inputs or the fit


def verdict(results: pd.DataFrame, dataset: str, models, tolerance: float = 0.1,
            table1: pd.DataFrame | None = None) -> str:
    """A paragraph computed from the grid on ``dataset``: how close each kind of choice brings DQRec's
    in-batch Recall@10 to the paper's MovieLens value, which configurations keep DQRec first, how strong
    the evidence is and what would settle it. ``tolerance``: within this relative distance of the
    paper's value a magnitude counts as reproduced."""
    eff = effects(results)
    d = _view(eff[(eff.dataset == dataset) & (eff.model == "DQRec")], "in_batch")
    base = d[d.factor == "default"].value
    if base.empty:
        return _verdict_without_dqrec(eff, dataset, table1, tolerance)
    base, paper = float(base.iloc[0]), paper_value()
    cells = d[d.factor != "default"]
    close = cells[np.abs(cells.value / paper - 1) <= tolerance]

    def best(factors, what):
        e = cells[cells.factor.isin(factors)]
        if e.empty:
            return f"no {what} cell is measured yet"
        r = e.loc[e.value.idxmax()]
        return (f"the strongest {what}, {r.level} ({r.factor}), gives {r.value:.3f} (×{r.ratio:.2f} ours, "
                f"{r.value / paper:.0%} of the paper's)")

    conf = configurations(eff, dataset)
    n_models = len([c for c in conf.columns if c not in ("DQRec first", "DQRec > DualTower")])
    conf = conf[conf.DQRec.notna()]
    first = conf.index[conf["DQRec first"].eq(True)]
    above = conf.get("DQRec > DualTower", pd.Series(dtype=object)).dropna()
    text = (f"On {dataset}, our default in-batch Recall@10 for DQRec is {base:.3f}, {base / paper:.0%} of the paper's "
            f"MovieLens {paper:.4f}. Among the common-practice protocol choices (split, candidate pool, exclusion, "
            f"tie rule), {best(HONEST, 'choice')}; among the leaks (sequences that see the target or the future, "
            f"fitting on the test data), {best(LEAKS, 'leak')}. ")
    text += ("Within ±" + f"{tolerance:.0%} of the paper's magnitude: " + ", ".join(
        f"{r.level} ({r.factor}, {r.value:.3f})" for r in close.itertuples()) + ". " if len(close) else
             f"No single factor brings it within ±{tolerance:.0%} of the paper's magnitude. ")
    text += (f"DQRec is the best of our {n_models} models in {len(first)} of the {len(conf)} configurations measured"
             + (f" ({'; '.join(f'{lv} ({fa})' for fa, lv in first)})" if len(first) else "") + ", and above its base "
             f"DualTower in {int(above.astype(bool).sum())} of {len(above)}. ")
    missing = missing_models(models)
    if missing:
        text += (f"The paper's family ordering (sequential ≫ graph ≫ NCF) cannot be checked here: no "
                 f"{', '.join(missing)} model is in the grid. ")
    sel = results[(results.dataset == dataset) & (results.model == "DQRec") & (results.metric == "Recall")
                  & (results.k == 10)]
    seeds = sorted(sel.seed.unique())
    strength = largest_effects(eff[eff.dataset == dataset])
    text += (f"How strong this is: each cell is {len(seeds)} fit{'s' if len(seeds) > 1 else ''} per model (fit seed"
             f"{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}), so the spread between fits is not "
             f"measured here; {evaluation_spread(sel)}, against "
             f"effects of " + ", ".join(f"×{r.geo_ratio:.2f} ({r.level})" for r in strength.itertuples())
             + " (geometric mean over models); factors are varied one at a time, so combinations are not measured. "
               "What would settle it is the authors' evaluation code (their split, candidate construction and "
               "sequence builder), which is not public.")
    return text


def evaluation_spread(sel: pd.DataFrame) -> str:
    """What the evaluation seeds (batch order, sampled negatives) of the seeded cells in ``sel`` (one model's
    Recall@10 rows) say about noise: the largest sd over them, or that one seed cannot measure it."""
    n = int(sel[sel.protocol != "full"].eval_seed.nunique()) if len(sel) else 0
    if n < 2:
        return (f"the in-batch and sampled cells ran with {n} evaluation seed{'' if n == 1 else 's'} "
                "(batch order, negatives), so that spread is not measured either")
    return f"the largest sd over {n} evaluation seeds of a DQRec cell is {cell_means(sel).sd.max():.4f}"


def _verdict_without_dqrec(eff: pd.DataFrame, dataset: str, table1: pd.DataFrame | None, tolerance: float) -> str:
    """The verdict while DQRec's forensic cells are missing: DQRec's own Table 1 numbers, and the largest
    factor effects measured on the other models, applied to them as an explicitly labelled bound."""
    paper = paper_value()
    text = f"DQRec's forensic cells on {dataset} are not computed yet, so this verdict is provisional. "
    t = None if table1 is None else table1[(table1.dataset == dataset) & (table1.model == "DQRec")
                                           & (table1.protocol == "in_batch")]
    if t is None or t.empty:
        return text + "No DQRec run of Table 1 is cached either: no verdict."
    r = t.iloc[0]
    best_dqrec = max(r.temporal, r.random)
    text += (f"From Table 1's runs ({r.seeds} seeds), DQRec's in-batch Recall@10 is {r.temporal:.3f} on the global "
             f"temporal split and {r.random:.3f} on the random one ({best_dqrec / paper:.0%} of the paper's {paper:.4f}). ")
    e = _view(eff[eff.dataset == dataset], "in_batch")
    e = e[e.factor.isin(HONEST + LEAKS) & (e.ratio > 0) & (e.factor != "split")]
    if e.empty:
        return text
    g = e.groupby(["factor", "level"]).ratio.max().sort_values(ascending=False)
    (factor, level), top = g.index[0], float(g.iloc[0])
    needed = paper / best_dqrec
    text += (f"On the models measured here ({', '.join(sorted(e.model.unique()))}), the largest single factor besides "
             f"the split, {level} ({factor}), multiplies in-batch Recall@10 by up to ×{top:.2f}; reaching the paper "
             f"from DQRec's best Table 1 number needs ×{needed:.2f}. "
             + ("Even if one factor moved DQRec as much as its largest effect on another model, no single factor "
                f"would close the gap to within ±{tolerance:.0%}. " if best_dqrec * top < paper * (1 - tolerance) else
                "If DQRec moved as much, that factor alone could reach the paper's magnitude: DQRec's own cell "
                "decides. ")
             + "This transfers effects between models, which the grid shows is unsafe (the same factor moves "
               "MostPopular and EASE by very different ratios); the DQRec cells, and above all the authors' "
               "evaluation code (split, candidate construction, sequence builder; not public), would settle it.")
    return text


def scale_comparison(eff: pd.DataFrame, small: str = "ml-100k", large: str = "ml-1m", protocol: str = "in_batch",
                     threshold: float = 1.25) -> pd.DataFrame:
    """Ratios of each factor level on the small and the large dataset per model, and whether they differ
    by more than ``threshold`` (as a factor either way)."""
    t = ratio_table(eff, protocol)
    rows = []
    for (factor, level), r in t.iterrows():
        for model in dict.fromkeys(m for _, m in t.columns):
            a, b = r.get((small, model), np.nan), r.get((large, model), np.nan)
            if np.isfinite(a) and np.isfinite(b):
                rows.append(dict(factor=factor, level=level, model=model, **{small: a, large: b},
                                 differs=bool(max(a / b, b / a) > threshold)))
    return pd.DataFrame(rows, columns=["factor", "level", "model", small, large, "differs"])


def findings(results: pd.DataFrame, models, datasets) -> str:
    """Markdown bullets computed from the grid: the three largest effects per dataset (with each model's
    ratio), the chance levels they come with, same-dataset ordering, and scale differences."""
    eff = effects(results)
    lines = []
    for dataset in datasets:
        e = eff[eff.dataset == dataset]
        if e.empty:
            lines.append(f"- **{dataset}**: no cells computed yet.")
            continue
        top = largest_effects(e)
        parts = []
        for _, r in top.iterrows():
            per = ", ".join(f"{c.split(' ', 1)[1]} ×{r[c]:.2f}" for c in top.columns if c.startswith(dataset + " ")
                            and np.isfinite(r[c]))
            parts.append(f"{r.level} ({r.factor}; {per})")
        lines.append(f"- **{dataset}, the three largest effects** on in-batch Recall@10: " + "; ".join(parts) + ".")
        ch = _view(e, "in_batch").drop_duplicates(["factor", "level", "protocol"])
        lo, hi = ch.loc[ch.chance.idxmin()], ch.loc[ch.chance.idxmax()]
        lines.append(f"- **{dataset}, chance level** of Recall@10 moves with the candidates: from {lo.chance:.3f} "
                     f"({lo.level}, {lo.candidates:.0f} candidates per sample) to {hi.chance:.3f} ({hi.level}, "
                     f"{hi.candidates:.0f} candidates).")
    if len(datasets) > 1:
        sc = scale_comparison(eff, datasets[0], datasets[1])
        if len(sc):
            diff = sc[sc.differs]
            lines.append(f"- **{datasets[0]} → {datasets[1]}**: {len(sc) - len(diff)} of {len(sc)} (factor level, "
                         f"model) ratios agree within ×1.25 between the two sizes" + (
                             "; they differ for " + "; ".join(f"{r.level} × {r.model} (×{r[datasets[0]]:.2f} → "
                                                                f"×{r[datasets[1]]:.2f})" for _, r in diff.iterrows())
                             if len(diff)
                             else "") + ".")
    return "\n".join(lines)


def cold_test_share(split: Split) -> float:
    """Share of test samples whose user has no training positive: a model without sequences scores every
    candidate alike for them, so the tie rule alone decides their rank."""
    return float((~split.test.user.isin(split.train.user)).mean())


def item_state_share(split: Split) -> float:
    """Share of test pairs (u, i) whose item i, in its last training state, already has u in its S_i."""
    rows = split.last_train_sample("item")[split.test.item.to_numpy()]
    seq = np.where(rows[:, None] >= 0, split.item_seq[rows.clip(min=0)], -1)
    return float((seq == split.test.user.to_numpy()[:, None]).any(1).mean())


def table1_item_state_sentence(split: Split, eff: pd.DataFrame | None = None) -> str:
    """The sentence Table 1's chapter needs: which item states its random-split numbers use, how often
    they contain the test user, and (given the grid's effects) what the alternative changes."""
    if split.kind != "random":
        raise ValueError("the sentence is about the random split")
    text = (f"On the random split, Table 1 scores every candidate item of DQRec and DualTower in its **last "
            f"training state** (`dqrec.model.PartScorer`: a random split has no 'before the test period'), whose "
            f"S_i already contains the test user for {item_state_share(split):.0%} of the {split.name} test pairs")
    if eff is not None:
        e = eff[(eff.dataset == split.name) & (eff.factor == "item states") & (eff.protocol == "in_batch")]
        if len(e):
            text += ("; scoring each candidate in its state just before the test sample instead changes in-batch "
                     "Recall@10 by " + ", ".join(f"×{r.ratio:.2f} ({r.model})" for r in e.itertuples())
                     + " (protocol forensics chapter)")
    return text + "."


def grid_status(results: pd.DataFrame, dataset: str, models, seeds=(0,)) -> list[str]:
    """(data cell, model) pairs of the full grid with no result yet on ``dataset``."""
    have = set(zip(results.data_level, results.model)) if len(results) else set()
    return [f"{c.level} ({c.factor}) × {m}" for c in DATA_CELLS for m in models if (c.level, m) not in have]


def read_grid(dataset, params: dict, models=MODELS, seeds=(0,), eval_seeds=(0,), cache: Path | None = None):
    """The cached cells of the grid only (nothing is fitted): (results, list of missing data cell × model)."""
    frames, stored = [], _stored_data_cells(Path(cache), dataset.name)
    for data_cell in DATA_CELLS:
        if json.dumps(dataclasses.asdict(data_cell), sort_keys=True) not in stored:
            continue  # no run of this cell at all: nothing to prepare the split for
        split = make_split(dataset, data_cell, params["seq_len"])
        for name in models:
            for seed in (seeds[:1] if name in DETERMINISTIC else seeds):
                for cell in eval_cells(data_cell, name):
                    for s in (eval_seeds if cell.seeded else eval_seeds[:1]):
                        got = read_cached_run(Path(cache) / run_key(split, name, seed, params,
                                                                    cell_settings(data_cell, cell, s)),
                                              len(split.test), CELL_ROWS, COLUMNS)
                        if got is not None:
                            frames.append(got[0])
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    return results, grid_status(results, dataset.name, models, seeds)


def collect(datasets, params: dict, models, compute: bool, cache: Path) -> tuple[pd.DataFrame, dict, dict]:
    """The grid of every data set in ``datasets`` (names), fitted where missing (``compute``) or read from
    the run cache only: (results, {name: missing data cell × model pairs}, {name: loaded Dataset})."""
    from .data import load

    frames, missing, loaded = [], {}, {}
    for name in datasets:
        loaded[name] = load(name)
        kw = dict(models=models, seeds=params["forensics_seeds"], eval_seeds=eval_seeds_of(params, name), cache=cache)
        if compute:
            frames.append(run_grid(loaded[name], params, log=lambda *_: None, **kw))
            missing[name] = []
        else:
            got, missing[name] = read_grid(loaded[name], params, **kw)
            frames.append(got)
    return pd.concat(frames, ignore_index=True), missing, loaded


def grid_notes(missing: dict, loaded: dict, seq_len: int) -> str:
    """Markdown bullets per data set: the grid's missing (data cell × model) pairs, the share of positives
    sharing their timestamp with another of the same user (what 'S_u at or before t' lets in), and the
    share of test samples from users without a training positive (:func:`cold_test_share`)."""
    from .data import same_second_share

    splits = {d: prepare(ds, seq_len=seq_len) for d, ds in loaded.items()}  # our default split, once each
    lines = [f"- **{d}**: " + ("complete" if not m else f"{len(m)} (data cell × model) missing: " + "; ".join(m))
             for d, m in missing.items()]
    lines += [f"- **{d}**: {100 * same_second_share(s):.1f} % of the positives share their timestamp with another "
              "positive of the same user (what 'S_u at or before t' lets in)" for d, s in splits.items()]
    lines += [f"- **{d}**: {100 * cold_test_share(s):.1f} % of the test samples of our default split belong to users "
              "without any training positive (a model that scores them all alike is ranked by the tie rule alone)"
              for d, s in splits.items()]
    return "\n".join(lines)


def ratio_styles(eff: pd.DataFrame, protocol: str, models, datasets, shade: bool) -> list:
    """One styled :func:`ratio_table` per data set with cells: ratios to our default per factor level and
    model, two decimals, shaded (red above 1, blue below) where ``shade``."""
    out = []
    for name in datasets:
        if not (eff.dataset == name).any():
            continue
        style = ratio_table(eff, protocol, models, dataset=name).style.format("{:.2f}", na_rep="–")
        if shade:
            style = style.background_gradient(cmap="RdBu_r", vmin=0, vmax=2, axis=None).highlight_null(
                props="background-color: white; color: black")
        out.append(style.set_caption(f"{name}, {protocol.replace('_', '-')} Recall@10 / our default"))
    return out


def table1_split_effect(dataset, params: dict, models, seeds, cache: Path) -> pd.DataFrame:
    """The split factor (random / global temporal) from Table 1's own cached runs (:func:`run_models` keys,
    every seed found): a second, independent measurement of it, with several fit seeds, including the
    models whose forensic cells are not computed. Columns: dataset, model, protocol, seeds, temporal,
    random, ratio (Recall@10, means over seeds)."""
    means = {}
    for kind in ("temporal", "random"):
        split = prepare(dataset, split=kind, seq_len=params["seq_len"], seed=0)
        for name in models:
            for seed in (seeds[:1] if name in DETERMINISTIC else seeds):
                got = read_cached_run(Path(cache) / run_key(split, name, seed, params), len(split.test))
                if got is None:
                    continue
                r = got[0][(got[0].metric == "Recall") & (got[0].k == 10)]
                for protocol, value in zip(r.protocol, r.value):
                    means.setdefault((name, protocol, kind), []).append(value)
    rows = [dict(dataset=dataset.name, model=name, protocol=protocol, seeds=len(means[(name, protocol, "random")]),
                 temporal=np.mean(means[(name, protocol, "temporal")]), random=np.mean(means[(name, protocol, "random")]))
            for name in models for protocol in ("in_batch", "full")
            if (name, protocol, "temporal") in means and (name, protocol, "random") in means]
    out = pd.DataFrame(rows, columns=["dataset", "model", "protocol", "seeds", "temporal", "random"])
    return out.assign(ratio=out.random / out.temporal)


def _stored_data_cells(cache: Path, dataset: str) -> set[str]:
    """The data cells (as sorted JSON) of every forensic run file of ``dataset`` in ``cache``."""
    out = set()
    for path in cache.glob(f"{dataset}_*.json"):
        cell = json.loads(path.read_text()).get("forensics")
        if cell:
            data = dict(cell["data"], train_parts=tuple(cell["data"]["train_parts"]))
            out.add(json.dumps(dataclasses.asdict(DataCell(**data)), sort_keys=True))
    return out


def plot_effects(eff: pd.DataFrame, protocol: str = "in_batch", models=None):
    """Ratio to our default of every factor level, one panel per dataset, one marker per model (log x)."""
    import matplotlib.pyplot as plt

    table = ratio_table(eff, protocol, models)
    datasets = list(dict.fromkeys(c[0] for c in table.columns))
    labels = [f"{f}: {lv}" for f, lv in table.index]
    fig, axes = plt.subplots(1, len(datasets), figsize=(2.9 * len(datasets) + 2.6, 0.27 * len(labels) + 1.6),
                             sharey=True, squeeze=False)  # about the page's width: labels left, legend below
    markers = "osD^vP*X"
    for ax, dataset in zip(axes[0], datasets):
        cols = [c for c in table.columns if c[0] == dataset]
        for j, col in enumerate(cols):
            ax.scatter(table[col], np.arange(len(labels)), marker=markers[j % len(markers)], label=col[1], alpha=0.8)
        ax.axvline(1.0, c="k", lw=0.8)
        ax.set_xscale("log")
        ax.set(title=f"{dataset} ({protocol.replace('_', '-')})", xlabel="Recall@10 / our default")
        ax.set_yticks(np.arange(len(labels)), labels)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    handles, names = axes[0][-1].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize=9, frameon=False)
    return fig

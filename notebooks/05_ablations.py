# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Ablations (Table 3)
#
# Each row of the paper's Table 3 is DQRec with one part of its input (Eq. 20) removed:
#
# | variant | what is switched off (`DQRec` flag) |
# |---|---|
# | w/o Feat.Aug. User / Item / All | the semantic-ID embeddings e^s of users / items / both (Eq. 14; `user_feature_aug`, `item_feature_aug`) |
# | w/o Lat. | the latent neighbours Q^{lat,l}: Q^all = Q (Eqs. 16-19; `latent_exploration`) |
# | w/o Relat.Aug. User / Item / All | the pooled neighbour IDs of users / items / both (Eqs. 15-19; `user_linkage_aug`, `item_linkage_aug`) |
#
# Every variant is trained and tested exactly like DQRec in Table 1 (same data, split, seed,
# epochs, early stopping and evaluator), so the full-DQRec runs are shared with Table 1. The paper
# reports R@5 and N@5 under its in-batch protocol; we show those and full ranking, as the change
# of each variant against full DQRec of the same seed.

# %%
import os

# %% tags=["parameters"]
profile = os.environ.get("DQREC_PROFILE", "quick")
datasets = None  # None: the profile's ablation datasets, each with its seeds
seeds = None  # None: the profile's ablation seeds of each dataset
splits = None  # None: the profile's ablation_splits
k = 5  # the paper's Table 3 reports @5
workers = 0  # 0: compute missing runs here, one after another; N: on N local Ray workers
missing = "compute"  # "skip": show the cached runs only and list the missing ones

# %%
import warnings

import pandas as pd

from dqrec import data, plots, sweep
from dqrec.experiment import ablation_changes, ablation_table, profile_params, results_dir, write_table

warnings.filterwarnings("ignore", message=".*have no timestamp.*")
params = profile_params(profile, progress=False)
runs_of = {name: seeds or params["seeds"] for name in datasets} if datasets else params["ablation_seeds"]
splits = splits or params["ablation_splits"]
params.update(ablation_seeds=runs_of, splits=splits)

# %%
# NBVAL_CHECK_OUTPUT
print({key: params[key] for key in ("profile", "ablation_seeds", "splits", "epochs", "patience")})

# %% [markdown]
# ## Runs
#
# One run per (dataset, split, variant, seed), cached in `results[/<profile>]/runs/` like Table 1's.

# %%
table3 = sweep.execute(sweep.table3(params, splits=splits), params, results_dir(profile) / "runs", workers=workers,
                       missing=missing, progress=False)
results = table3.results
runs = results.drop_duplicates(["dataset", "split", "model", "seed"])
compute_minutes = (runs.fit_seconds + runs.eval_seconds).sum() / 60
write_table(results, "table3", params, table3.wall_seconds, checksums={n: data.load(n).checksum for n in runs_of},
            compute_minutes=round(compute_minutes, 1), missing_runs=[str(r) for r in table3.missing])
print(f"{len(runs)} runs; their fit + evaluation time: {compute_minutes:.0f} min (this execution: "
      f"{table3.wall_seconds / 60:.1f} min, cached runs are read back)")

# %% [markdown]
# ## Table 3 beside the paper's
#
# Each cell: our mean ± sd over seeds (the paper's single number) and, in brackets, the mean change
# against full DQRec of the same seed. The paper's MovieLens is ML-1M; we have no Books or Netflix
# here (see the datasets chapter), so those columns are the paper's only.

# %%
changes = {(protocol, metric): ablation_changes(results, protocol, metric, k)
           for protocol in ("in_batch", "full") for metric in ("Recall", "NDCG")}
for (protocol, metric), ch in changes.items():
    display(ablation_table(ch).style.set_caption(f"{metric}@{k}, {protocol} protocol"))

# %%
plots.ablation_changes(changes[("in_batch", "Recall")], f"Recall@{k}, in-batch protocol (the paper's)");

# %%
plots.ablation_changes(changes[("full", "Recall")], f"Recall@{k}, full ranking");

# %% [markdown]
# ## What the ablations say
#
# In the paper every variant is worse than full DQRec. The table below counts, for our runs, in how
# many (dataset, split) cells each variant's mean change is below zero, and how large the seed-to-seed
# spread of full DQRec itself is: a change smaller than that spread is not evidence either way.

# %%
ours = changes[("in_batch", "Recall")].query("source == 'ours'")
noise = ours[ours.variant == "DQRec"].groupby(["dataset", "split"]).value.agg(lambda v: v.std() / v.mean())
verdict = ours[ours.variant != "DQRec"].groupby(["variant", "dataset", "split"], sort=False).change.mean().unstack(
    ["dataset", "split"])
display((100 * verdict).style.format("{:+.1f}").set_caption(f"mean change of Recall@{k} (in-batch) against full DQRec, %"))
display(pd.DataFrame({"cells where it is worse": (verdict < 0).sum(axis=1), "cells": verdict.notna().sum(axis=1)}))
print("seed spread of full DQRec, sd / mean of its Recall@5 (cells with several seeds):",
      {f"{d} {s}": f"{100 * v:.1f}%" for (d, s), v in noise.dropna().items()})

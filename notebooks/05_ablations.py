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
# DQRec's user tower reads the concatenation of four embeddings (Eq. 20),
#
# $$e_u = \left[ e_u^{ID},\; e_u^s,\; \mathrm{AGG}\left(\{e_{im}^{ID}\}_{im \in S_u}\right),\;
# \mathrm{AGG}\left(\{e_{un}^{ID}\}_{un \in Q_u^{all}}\right) \right],$$
#
# with $e_u^s = [F^s_{U_1}(c_{1u}), \dots, F^s_{U_L}(c_{Lu})]$ the semantic-ID embeddings (Eq. 14) and
# $Q_u^{all} = Q_u \cup \bigcup_{l=1}^{L} Q_u^{lat,l}$ the explicit and latent neighbours (Eqs. 15-19);
# the item tower is built the same way. Each row of the paper's Table 3 removes one part:
#
# | variant | what is switched off (`DQRec` flag) |
# |---|---|
# | w/o Feat.Aug. User / Item / All | $e_u^s$ / $e_i^s$ / both (Eq. 14; `user_feature_aug`, `item_feature_aug`) |
# | w/o Lat. | the latent neighbours: $Q^{all} = Q$ (Eqs. 16-19; `latent_exploration`) |
# | w/o Relat.Aug. User / Item / All | the pooled neighbour IDs $\mathrm{AGG}(\{e^{ID}\}_{Q^{all}})$ of users / items / both (`user_linkage_aug`, `item_linkage_aug`) |
#
# Every variant is trained and tested exactly like DQRec in Table 1 (same data, split, seed,
# epochs, early stopping and evaluator), so the full-DQRec runs are shared with Table 1. The paper
# reports R@5 and N@5 under its in-batch protocol; we show those and full ranking. Each of our
# changes against full DQRec comes with a 95 % interval from a paired bootstrap over test samples
# and, where there are several seeds, a t-interval over seeds (`dqrec.stats`); a change is counted
# only when it is **beyond the noise**, i.e. when neither interval contains 0.

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


from IPython.display import Markdown

from dqrec import data, plots, sweep
from dqrec.experiment import profile_params, results_dir, timer, write_table
from dqrec.findings import (ablation_differences, ablation_tables, ablation_discussion, claims_ablations,
                            to_markdown)

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
# ## How sure is each change?
#
# Each variant against full DQRec of the same seeds, from the per-sample ranks stored with every cached
# run: the paired bootstrap resamples test samples (2,000 resamples), the seed interval uses the
# seed-by-seed differences. Written to `results[/<profile>]/table3_differences.csv`.

# %%
with timer() as t_diff:
    diffs = ablation_differences(
        {(name, kind): data.prepare(data.load(name), split=kind, seq_len=params["seq_len"], seed=0)
         for name in runs_of for kind in splits}, params, results_dir(profile) / "runs", runs_of)
write_table(diffs, "table3_differences", params, t_diff())
print(f"{len(diffs)} differences ({t_diff():.0f} s)")

# %% [markdown]
# ## Table 3 beside the paper's
#
# The paper's layout, one table per metric and protocol: each cell is the value and, in brackets, the
# change against full DQRec (ours: mean ± sd over seeds where there are several). The paper's
# MovieLens is ML-1M, next to it are our runs on it; we have no Books or Netflix here (see the
# datasets chapter), so those columns are the paper's only. Grey: inside the noise.

# %%
display(*ablation_tables(results, diffs, k))

# %%
plots.ablation_change_figures(diffs, results, k);

# %% [markdown]
# ## What we found
#
# In the paper every variant is worse than full DQRec on every data set. Each row of Table 3,
# judged on our runs by the rule above (Recall@5, in-batch protocol; `dqrec.findings.claims_ablations`):

# %%
Markdown(to_markdown(claims_ablations(results_dir(profile))) + "\n\n" + ablation_discussion(results_dir(profile)))

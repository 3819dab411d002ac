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
# # Sensitivity to K, J and L (Fig. 3)
#
# The paper's Fig. 3 varies, one at a time on MovieLens, three hyper-parameters: the number of
# neighbours $K$ of the explicit top-$K$ search (Eq. 15),
#
# $$Q_u = \mathrm{topK}\left(\{-\|\hat z_u - \hat z_n\|_2^2\}_{n=1}^{N}\right),$$
#
# the codebook size $J$ of each layer, $C_l = \{r_l^j\}_{j=1}^{J}$, and the number of layers $L$ of
# DQ-VAE, i.e. the length of the semantic ID $s = (c_1, \dots, c_L)$. It reports that too small and too
# large values of $K$ and $J$ both hurt, and that few layers hurt most. The figure's values are not in
# the text we have, so we show our curves on their own and judge the shapes the paper describes.
# Every point is a full DQRec run (representation, DQ-VAE, neighbours, training with early stopping,
# test under both protocols), cached like Table 1's; the point at the paper's setting
# ($K=30$, $J=128$, $L=4$) is Table 1's DQRec run. Which data set and how many seeds the profile
# sweeps, and what the runs cost, is printed under the runs.

# %%
import os

# %% tags=["parameters"]
profile = os.environ.get("DQREC_PROFILE", "quick")
dataset = None  # None: the profile's sensitivity dataset
seeds = None  # None: the profile's sensitivity seeds
split_kind = "temporal"
grid = None  # None: the profile's {parameter: values}
workers = 0  # 0: compute missing runs here, one after another; N: on N local Ray workers
missing = "compute"  # "skip": show the cached runs only and list the missing ones

# %%
import warnings

from IPython.display import HTML, Markdown

from dqrec import data, plots, sweep
from dqrec.experiment import profile_params, results_dir, timer, write_table
from dqrec.findings import (SYMBOLS, claims_sensitivity, sensitivity_differences, sensitivity_differences_table,
                            sensitivity_discussion, to_markdown)
from dqrec.report import plain

warnings.filterwarnings("ignore", message=".*have no timestamp.*")
params = profile_params(profile, progress=False)
dataset = dataset or params["sensitivity_dataset"]
seeds = seeds or params["sensitivity_seeds"]
grid = grid or params["sensitivity_grid"]
params.update(sensitivity_grid=grid, sensitivity_dataset=dataset, sensitivity_seeds=seeds, split=split_kind)

# %%
# NBVAL_CHECK_OUTPUT
print({key: params[key] for key in ("profile", "sensitivity_dataset", "sensitivity_seeds", "split", "sensitivity_grid",
                                   "epochs")})

# %% [markdown]
# ## Runs

# %%
fig3 = sweep.execute(sweep.fig3(params, datasets=[dataset], splits=[split_kind], seeds=seeds, grid=grid), params,
                     results_dir(profile) / "runs", workers=workers, missing=missing, progress=False)
results = fig3.results
runs = results.drop_duplicates(["parameter", "value_of_parameter", "seed"])
compute_minutes = (runs.fit_seconds + runs.eval_seconds).sum() / 60
write_table(results, "sensitivity", params, fig3.wall_seconds, checksum=data.load(dataset).checksum,
            compute_minutes=round(compute_minutes, 1), missing_runs=[str(r) for r in fig3.missing])
print(f"{len(runs)} runs; their fit + evaluation time: {compute_minutes:.0f} min (this execution: "
      f"{fig3.wall_seconds / 60:.1f} min)")

# %%
Markdown(f"The sweep: {len(runs)} runs on {dataset} ({split_kind} split), {len(seeds)} seed(s) per point, "
         f"{sum(len(v) for v in grid.values())} points ("
         + "; ".join(f"${SYMBOLS[n]}$ in {{{', '.join(map(str, v))}}}" for n, v in grid.items())
         + f"); their fit and evaluation took {compute_minutes:.0f} min of compute.")

# %% [markdown]
# ## Fig. 3, ours
#
# Recall@10 and NDCG@10 under both protocols, mean and sd over seeds, against each parameter (log
# scale). The dashed line marks the paper's setting.

# %%
plots.sensitivity(results, metric="Recall", k=10, defaults={n: params[n] for n in grid});

# %%
plots.sensitivity(results, metric="NDCG", k=10, defaults={n: params[n] for n in grid});

# %% [markdown]
# ## The numbers
#
# Mean over seeds of each metric at @10.

# %%
summary = results.groupby(["parameter", "value_of_parameter", "protocol", "metric", "k"]).value.agg(["mean", "std"])
table = summary.query("k == 10")["mean"].unstack(["protocol", "metric"]).round(4).droplevel("k")
table.index = [f"{SYMBOLS[n]} = {v}" for n, v in table.index]
table.columns = [f"{m}@10, {p.replace('_', '-')}" for p, m in table.columns]
HTML(plain(table, "Mean over seeds at @10", index="setting"))

# %% [markdown]
# ## How sure is each difference?
#
# Each value of a parameter against the best value of that parameter (highest mean Recall@10 under
# the in-batch protocol), paired over test samples (bootstrap) and seeds (`dqrec.stats`); written to
# `results[/<profile>]/sensitivity_differences.csv`.

# %%
with timer() as t_diff:
    diffs = sensitivity_differences(data.prepare(data.load(dataset), split=split_kind, seq_len=params["seq_len"], seed=0),
                                    params, results_dir(profile) / "runs", seeds, grid)
write_table(diffs, "sensitivity_differences", params, t_diff())
HTML(plain(sensitivity_differences_table(diffs), caption="Each value against the best value of its parameter "
           "(Recall@10, in-batch protocol); beyond the noise only when both intervals exclude 0"))

# %% [markdown]
# ## What we found
#
# The shapes the paper describes, judged on our curves (Recall@10, in-batch protocol; a value counts as
# worse than the best only beyond the noise; `dqrec.findings.claims_sensitivity`):

# %%
Markdown(to_markdown(claims_sensitivity(results_dir(profile))) + "\n\n" + sensitivity_discussion(results_dir(profile)))

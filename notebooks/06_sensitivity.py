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
# The paper's Fig. 3 varies, one at a time on MovieLens, the number of neighbours K (Eq. 15), the
# codebook size J and the number of layers L of DQ-VAE, and reports that too small and too large
# values of K and J both hurt, and that few layers hurt most. The figure's values are not in the
# text we have, so we show our curves on their own. Every point is a full DQRec run (representation,
# DQ-VAE, neighbours, training with early stopping, test under both protocols), cached like Table 1's;
# the point at the paper's setting (K=30, J=128, L=4) is Table 1's DQRec run. The paper profile
# sweeps ML-100K with three seeds for now (33 runs, about 10 minutes); ML-1M, the paper's
# MovieLens, needs about 40 minutes per seed on our 2-core machine and is still to be run.

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

from dqrec import data, plots, sweep
from dqrec.experiment import profile_params, results_dir, write_table

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

# %%
summary = results.groupby(["parameter", "value_of_parameter", "protocol", "metric", "k"]).value.agg(["mean", "std"])
summary.query("k == 10")["mean"].unstack(["protocol", "metric"]).round(4)

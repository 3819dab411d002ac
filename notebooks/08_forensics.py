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
# # Protocol forensics: what would it take to reach the paper's numbers?
#
# The paper reports a MovieLens Recall@10 of 0.83 for DQRec under its in-batch protocol; Table 1 of this
# book measures far less. The paper states its split ratio (8:1:1) and the in-batch protocol, and
# nothing else about how test samples, candidates and sequences were built. This chapter measures, with
# real fitted models, how far each of those unstated choices moves every model: each factor is varied
# **alone** from our default, every cell is one run of the run cache, and every sentence below is
# generated from those runs.
#
# Our default: the global temporal 8:1:1 split; S_u and S_i hold interactions strictly before the sample;
# candidates are the distinct items of a shuffled batch of 1,024 test samples (in-batch) or all items
# (full), minus the user's other known positives; ties are broken at random. The factors:
#
# | factor | levels (ours first) |
# |---|---|
# | split | global temporal 8:1:1; per-user chronological 8:1:1; random 8:1:1; leave-one-out (last positive per user) |
# | candidates | distinct items of a batch of 1,024; all 1,024 with duplicates; batches of 256 and 100; 100 sampled negatives; all items |
# | exclusion | all known positives of the user; training positives only; nothing |
# | ties | random; optimistic (only strictly higher scores count); pessimistic (every tie counts) |
# | sequence | S_u strictly before t; at or before t (same-second interactions); with the target itself; static last N of the user over all data; S_i with the target user |
# | item states (random split) | last training state (what Table 1 uses); the state just before the test sample |
# | fit on | train; train + valid + test |
#
# Data-side factors (split, sequence, fit on) need a fit per cell; evaluation-side factors are evaluated
# on the fit of our default cell. In-batch and sampled cells are evaluated with several evaluation seeds
# (batch order, negatives); ratios use their mean.

# %%
import os

# %% tags=["parameters"]
profile = os.environ.get("DQREC_PROFILE", "quick")
datasets = None  # None: the profile's forensics_datasets (paper: ML-100K and ML-1M)
models = None  # None: the profile's forensics_models; LightGCN / SASRec once registered
compute = None  # None: the profile's forensics_compute (paper: read the cached grid, fit nothing)

# %%
import warnings

import pandas as pd
from IPython.display import HTML, Markdown

from dqrec import data, forensics
from dqrec.experiment import profile_params, results_dir, timer, write_table
from dqrec.report import plain

warnings.filterwarnings("ignore", message=".*have no timestamp.*")
params = profile_params(profile, progress=False)
datasets = [datasets] if isinstance(datasets, str) else datasets or params["forensics_datasets"]
models = [models] if isinstance(models, str) else models or params["forensics_models"]
compute = params["forensics_compute"] if compute is None else compute
cache = results_dir(profile) / "runs"
with timer() as elapsed:
    results, missing, loaded = forensics.collect(datasets, params, models, compute, cache)
eff = forensics.effects(results)
write_table(eff, "forensics_effects", params, elapsed(), datasets=datasets, models=models)
print(f"{len(results) // forensics.CELL_ROWS} cell runs of {', '.join(datasets)} "
      f"({'computed or read back' if compute else 'read from the run cache'}, {elapsed():.0f} s); models: {models}")

# %% [markdown]
# ## Verdict
#
# Computed from the grid on the largest dataset measured (the paper's MovieLens is ML-1M).

# %%
main = next((d for d in reversed(datasets) if (eff.dataset == d).any() and ((eff.dataset == d) & (eff.model == "DQRec")).any()),
            datasets[-1])  # else the largest: the paper's MovieLens is ML-1M
table1_runs = pd.concat([forensics.table1_split_effect(loaded[d], params, models, params["seeds"], cache)
                         for d in datasets], ignore_index=True)
Markdown(forensics.verdict(results, main, models, table1=table1_runs))

# %% [markdown]
# ## What is measured
#
# Cells still missing from the grid (not yet computed) are listed here; every table below shows what is there.

# %%
Markdown(forensics.grid_notes(missing, loaded, params["seq_len"]))

# %% [markdown]
# ## The effect of each factor (ratio to our default)
#
# In-batch Recall@10 of each cell divided by the same model's default cell (for "item states", by the
# random-split cell with last training states; for candidate pools, by the in-batch default). Above 1:
# the choice inflates the number.
# One table per data set with computed cells; a data set without any has no table (its missing cells
# are listed above).

# %%
display(*forensics.ratio_styles(eff, "in_batch", models, datasets, shade=True))

# %%
forensics.plot_effects(eff, "in_batch", models);

# %% [markdown]
# The same ratios under full ranking (every item a candidate), where the candidate pool does not apply:

# %%
display(*forensics.ratio_styles(eff, "full", models, datasets, shade=False))

# %% [markdown]
# The three factors with the largest effect, ranked by the geometric mean over models and datasets of
# their strongest level's ratio, with each model's ratio:

# %%
HTML(plain(forensics.largest_effects_table(eff), "The three largest effects (ratio to our default)"))

# %% [markdown]
# The split factor can also be read from Table 1's own runs (the same models and profile, every seed
# computed there), including models whose forensic cells are not computed yet: Recall@10 on the
# random split against the global temporal one.

# %%
HTML(plain(table1_runs, "Recall@10 of Table 1's own runs, random against temporal split"))

# %% [markdown]
# Chance levels and candidates per sample of every cell (Recall@10 of a random ranking under the same
# candidates), for reading any number above against what guessing gets:

# %%
HTML(plain(forensics.chance_table(eff), "Candidates per sample and chance-level Recall@10 of every cell"))

# %% [markdown]
# ## Orderings and magnitudes beside the paper
#
# The paper's Table 1 ranks sequential models far above graph models, and those above NCF, on
# MovieLens, with DQRec first. Per configuration (each factor level alone), in-batch Recall@10 of every
# model and whether DQRec comes first and beats its base DualTower:

# %%
for name in datasets:
    if (eff.dataset == name).any():
        display(HTML(plain(forensics.configurations(eff, name).reset_index(), f"{name}: in-batch Recall@10")))
print("paper families without a model in this grid:", ", ".join(forensics.missing_models(models)) or "none")

# %% [markdown]
# DQRec's Recall@5/10/20 and NDCG@10 per configuration beside the paper's MovieLens values
# (ratio = ours / paper; the paper's magnitudes would read 1.00):

# %%
for name in datasets:
    if ((eff.dataset == name) & (eff.model == "DQRec")).any():
        display(HTML(plain(forensics.beside_paper(results, name).reset_index(), f"DQRec on {name}; paper: " + ", ".join(
            f"{m} {forensics.paper_value(m):.4f}" for m in ("Recall@5", "Recall@10", "Recall@20", "NDCG@10")))))

# %% [markdown]
# ## From ML-100K to ML-1M
#
# Where both datasets are measured: each factor level's ratio on the two sizes, flagged where they
# differ by more than a factor 1.25 either way.

# %%
if len(datasets) > 1:
    scale = forensics.scale_comparison(eff, datasets[0], datasets[1])
    display(HTML(plain(scale, "Ratios on the two sizes")) if len(scale) else "no factor level is measured on both datasets yet")
else:
    print("one dataset in this profile")

# %% [markdown]
# ## Item states on the random split: what Table 1 uses
#
# The sentence the Table 1 chapter carries (generated by `forensics.table1_item_state_sentence`):

# %%
sentences = [forensics.table1_item_state_sentence(data.prepare(loaded[d], split="random", seq_len=params["seq_len"]), eff)
             for d in datasets]
Markdown("\n\n".join(f"> {s}" for s in sentences))

# %% [markdown]
# ## What we found

# %%
Markdown(forensics.findings(results, models, datasets))

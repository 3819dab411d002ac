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
# # Settings and provenance
#
# Two questions a reader should be able to answer for every number in this book: under which
# settings was it produced, and by which code on which data? This page answers both from the code
# and the results files, nothing typed in: the paper's hyper-parameters (Section 6.1.4, transcribed
# in `results/paper/hyperparameters.csv`) beside what each profile of `dqrec.experiment.PROFILES`
# uses, then, per results table, the commit that wrote it and the commits, seeds, epochs and data
# of the runs behind it.

# %%
import os

# %% tags=["parameters"]
profile = os.environ.get("DQREC_PROFILE", "quick")

# %%
import pandas as pd
from IPython.display import HTML, Markdown

from dqrec import report
from dqrec.experiment import PROFILES, paper_table, profile_params, results_dir
from dqrec.registry import make_model

params = profile_params(profile)
root = results_dir(profile)

# %% [markdown]
# ## The paper's hyper-parameters and ours
#
# One row per setting the paper states; a cell reads "as paper" where the profile uses the paper's
# value, and the value otherwise. The model settings (learning rate, batch, dimension) are
# `dqrec.model.DQRec`'s defaults, the same in every profile.

# %%
hparams = report.hyperparameter_deviations(PROFILES, paper_table("hyperparameters"), make_model("DQRec").get_params())
HTML(report.plain(hparams))

# %% [markdown]
# ## What each profile runs
#
# The paper is silent on its training budget, its seeds and its split; where the paper names a data
# set we do not have (Books, Netflix) or a scope we cut for time, the profiles below say what runs
# instead. The `paper` profile is the book's results; `quick` and `test` are smoke runs of the code.

# %%
scope = report.profile_scope(PROFILES)
scope

# %% [markdown]
# Against what the paper states: where this page's profile departs from the paper, and the choices we
# had to make where the paper says nothing (the smoke profiles' scope is in the table above).

# %%
deviations = report.profile_deviations(PROFILES)
HTML(report.profile_departures(deviations, profile))

# %% [markdown]
# ## Provenance of each results table
#
# Every results table is written with a JSON file beside it (`dqrec.experiment.write_table`): the
# commit whose code wrote it, when, under which profile, and the checksums of the data sets it read.

# %%
tables = sorted(p.stem for p in root.glob("*.json") if p.with_suffix(".csv").exists())
if not tables:
    raise FileNotFoundError(f"no results tables in {root}: this chapter reports on them, so execute chapters 01-08 "
                            f"under the {profile!r} profile first (python scripts/build_book.py --profile {profile})")
written = pd.DataFrame([report.table_provenance(name, root) for name in tables])
HTML(report.plain(written, wrap=["checksums"]))

# %% [markdown]
# ## The runs behind each table
#
# A table of model runs (Table 1, the loss comparison, Table 3, Fig. 3) is assembled from the run
# cache; a run read back from the cache keeps the commit that computed it, which can be older than
# the commit that wrote the table. Per data set, split and model (and, for Fig. 3, the setting
# varied): the seeds, the epochs each seed trained, the commits and the split fingerprints.

# %%
behind = report.runs_behind_tables(root, tables)
for name, runs in behind.items():
    display(Markdown(f"### {name}"), HTML(report.plain(runs, wrap=["commits", "data"])))
Markdown(report.model_notes(pd.concat(behind.values()).model if behind else []))

# %% [markdown]
# ## Runs carried over a change of their code
#
# A run's cache key holds the version of the code it ran, so any change of that code stales it. When a
# change cannot move a result (the resumable trainer, for instance, only adds checkpoints),
# `scripts/rekey_runs.py --verify` recomputes the cheapest affected run with the new code, on the torch
# threads it first ran with, and carries that change's runs over to the new key only if every metric,
# every sample's rank and every epoch's validation score agree bit for bit (the logged training loss to
# 1e-7). Each check, agreeing or not:

# %%
rekeyed = report.rekey_log(root)
HTML(report.plain(rekeyed, wrap=("models", "run recomputed", "code change"))) if len(rekeyed) else Markdown("No run was carried over a code change.")

# %% [markdown]
# ## What we found

# %%
deviating = {prof: int((hparams[prof] != "as paper").sum()) for prof in PROFILES}
ours = deviations[deviations.profile == profile]
Markdown(f"The `{profile}` profile rendered this page. Of the paper's {len(hparams)} stated hyper-parameters, the "
         + ", ".join(f"`{prof}` profile changes {n}" for prof, n in deviating.items()) + ". "
         + f"In scope, the `{profile}` profile deviates from the paper in "
         + "; ".join(f"{r.item} (paper: {r.paper}; ours: {r.ours})" for r in ours[ours.kind == "deviation"].itertuples())
         + ", and chooses where the paper is silent: "
         + "; ".join(f"{r.item}: {r.ours}" for r in ours[ours.kind == "paper silent: our choice"].itertuples())
         + f". Its results tables were written by {written.commit.nunique()} commit(s); {len(behind)} of them "
         "are assembled from cached model runs, listed above with the commits that computed them. "
         + (f"{int(rekeyed['runs re-keyed'].sum())} cached runs were carried over "
            f"{rekeyed['code change'].nunique()} checked code change(s), each keeping the commit that computed it; "
            f"{(rekeyed.agrees != 'yes').sum()} of the {len(rekeyed)} checks disagreed, and a change's runs were "
            "carried only once a check of it agreed." if len(rekeyed) else ""))

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
# # Datasets (Table 2)
#
# The paper trains on MovieLens-1M, Amazon Books (2023) and a Netflix Prize subset, keeps ratings
# above 3 as positives and splits the data 8:1:1 (Section 6.1.1). This chapter loads every dataset we
# can run, counts users, items, interactions and density for all ratings and for positives, and puts
# them next to the paper's Table 2. Everything below is computed by `dqrec.data` from the files the
# loaders read; the provenance of each table is written beside it.

# %%
import os

# %% tags=["parameters"]
profile = os.environ.get("DQREC_PROFILE", "quick")  # "quick", "paper" or "test": dqrec.experiment.PROFILES
datasets = None  # None: every dataset we can load; or a list such as ["ml-1m"]
main_dataset = None  # the dataset whose split is plotted; None: the profile's
seed = 0

# %%
import warnings

import pandas as pd

from IPython.display import HTML, Markdown

from dqrec import data, plots
from dqrec.experiment import (check_params, history_lengths, paper_table, profile_params, results_dir,
                              table2_beside_paper, timer, write_table)
from dqrec.findings import claims_datasets, to_markdown
from dqrec.report import plain

warnings.filterwarnings("ignore", message=".*have no timestamp.*")
params = profile_params(profile, main_dataset=main_dataset, seed=seed)
candidates = check_params({"datasets": datasets})["datasets"] if datasets else [
    "ml-1m", "ml-100k", "ml-latest-small", "amazon-books-2023", "amazon-2018-small", "netflix", "netflix-prize-sample"]
print(f"profile={profile}  DQREC_DATA_DIR={data.data_dir()}")

# %% [markdown]
# ## Counts for every dataset we can read
#
# The profile's own datasets are downloaded if they are not at hand; the others are read only if
# they are already in the mirror or the cache. `amazon-books-2023` and `netflix` (the paper's two
# other datasets) need files we may not have here: the Books rating file is ~1 GB and the Netflix Prize is no longer distributed. Where they are
# missing the loader says what it expected and where; we list them as missing rather than guess.
# `amazon-2018-small` (Magazine Subscriptions) and `netflix-prize-sample` (10,000 random ratings)
# are real data in the same formats, shown only to exercise the loaders: they are far too sparse to
# stand in for the paper's sets.

# %%
with timer() as elapsed:  # download the profile's datasets if needed; the others only if already at hand
    loaded, missing = data.load_available(candidates, download=params["datasets"] + [params["main_dataset"]])
stats = pd.concat([ds.stats() for ds in loaded.values()], ignore_index=True)
stats["checksum"] = stats.dataset.map({n: ds.checksum[:12] for n, ds in loaded.items()})
write_table(stats, "table2", params | dict(datasets=list(loaded)), elapsed(),
            checksums={n: ds.checksum for n, ds in loaded.items()});

# %%
# NBVAL_CHECK_OUTPUT
stats.drop(columns="checksum").round(3)

# %%
pd.Series(missing, name="why it is missing").to_frame()

# %% [markdown]
# ## Beside the paper's Table 2

# %%
HTML(plain(table2_beside_paper(stats)))

# %% [markdown]
# ### The ML-1M row does not add up
#
# The paper prints 6,034 users, 3,113 items, 1,000,209 interactions and a density of 5.32 %. The
# interaction count is the raw number of ratings, but the users and items are not those of the raw
# file nor of its positives (the counts above), and no density in our table is 5.32 %. Filtering the
# positives to a k-core is the simplest explanation we found: the table below gives, for each k, the
# users and items left and the density the *raw* rating count would have over them; the line under
# it names the k whose user count equals the paper's.
# The table below is computed, not copied.

# %%
# NBVAL_CHECK_OUTPUT
cores = "ml-1m is not available"
if "ml-1m" in loaded:
    cores = data.kcore_table(loaded["ml-1m"].ratings)
    write_table(cores.reset_index().assign(dataset="ml-1m"), "table2_kcores", params,
                checksums={"ml-1m": loaded["ml-1m"].checksum})
    paper_users = paper_table("table2_datasets").set_index("dataset").users["MovieLens"]
    print(f"k-cores of the positives with the paper's {paper_users:,} users: "
          f"{cores.index[cores.users == paper_users].tolist()}")
cores

# %% [markdown]
# ## The split
#
# We split the positives along the global timeline, 80 % / 10 % / 10 % (`data.temporal_split`), so
# that no model trains on an interaction that happens after a test one; the random 8:1:1 split
# (`data.random_split`) that the paper most likely used is available for comparison. For every
# sample $(u, i, t)$ the recent sequences hold only interactions strictly before $t$:
#
# $$S_u = \{\, i' : (u, i', t') \text{ positive},\ t' < t \,\} \quad\text{(the last } n \text{ of them)},\qquad
# S_i = \{\, u' : (u', i, t') \text{ positive},\ t' < t \,\},$$
#
# with $n$ = `seq_len` (20 in the paper profile), left-padded when shorter.

# %%
split = data.prepare(loaded[params["main_dataset"]], split="temporal", seq_len=params["seq_len"], seed=seed)
split.samples.groupby("part").agg(samples=("user", "size"), users=("user", "nunique"), items=("item", "nunique"),
                                  first=("timestamp", "min"), last=("timestamp", "max")).assign(
    first=lambda d: pd.to_datetime(d["first"], unit="s"), last=lambda d: pd.to_datetime(d["last"], unit="s"))

# %%
plots.activity(split);

# %%
plots.split_timeline(split);

# %% [markdown]
# How much history each sample's user has before it (the length of $S_u$, at most `seq_len`
# items), by part of the split:

# %%
plots.history_at_sample(split);

# %%
lengths = history_lengths(split)
print("; ".join(f"{part}: {row['empty']:.1%} of samples with an empty S_u, {row.full:.1%} with a full one"
                for part, row in lengths.iterrows()))

# %% [markdown]
# ## What we found
#
# Table 2's rows against ours (`dqrec.findings.claims_datasets`, from `results/table2.csv` and
# `results/table2_kcores.csv`), and what the split gives each test sample:

# %%
test, train = lengths.loc["test"], lengths.loc["train"]
no_train = (~split.test.user.isin(split.train.user)).mean()
Markdown(to_markdown(claims_datasets(results_dir(profile))) + "\n\n" + (
    f"On {split.name}'s {split.kind} split, {test.full:.1%} of the test samples have a full recent sequence "
    f"($|S_u| = {split.user_seq.shape[1]}$) and {test['empty']:.1%} an empty one (training samples: {train.full:.1%} "
    f"full, {train['empty']:.1%} empty). Test users are not short of history: $S_u$ holds the user's own earlier "
    f"interactions, including those of the validation and test periods, never a later one. What the temporal split "
    f"does take away is *training* samples: {no_train:.1%} of the test samples belong to a user with no training sample at all, "
    "whom the neighbour store (the augmentation chapter) does not hold."))

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
# # Feature and linkage augmentation (Section 4.3, Eqs. 14-19)
#
# DQRec uses the semantic IDs twice. **Feature augmentation** (Eq. 14) gives each user and item $L$
# extra embeddings, one per code, so entities that share a code share part of their input:
#
# $$e_u^s = \left[ F^s_{U_1}(c_{1u}), \dots, F^s_{U_L}(c_{Lu}) \right].$$
#
# **Linkage augmentation** (Eqs. 15-19) links every sample to the $K$ users (items) whose stored
# quantised representation $\hat z_n$ is nearest to its own,
#
# $$Q_u = \mathrm{topK}\left(\{-\|\hat z_u - \hat z_n\|_2^2\}_{n=1}^{N}\right),$$
#
# plus, for each layer $l$, the $K'$ nearest to $\hat z_u^{lat,l} = \mathcal{D}(s_u^{lat,l})$, its
# reconstruction with code $c_l$ replaced by the runner-up codeword $c_l^{lat}$ (the *latent* pattern,
# Eqs. 16-18):
#
# $$s_u^{lat,l} = (c_1, \dots, c_l^{lat}, \dots, c_L), \qquad
# Q_u^{all} = Q_u \cup \bigcup_{l=1}^{L} Q_u^{lat,l} \quad \text{(Eq. 19)}.$$
#
# The model then mean-pools the ID embeddings of $Q_u^{all}$ (Eq. 20).
#
# This chapter builds both on real data with `dqrec.augment.augment_side` and looks at what the
# neighbours are.

# %%
import os

# %% tags=["parameters"]
profile = os.environ.get("DQREC_PROFILE", "quick")
dataset = None  # None: the profile's main dataset
n_layers = 4  # L
codebook_size = 128  # J
k = 30  # K
k_latent = 2  # K'
representation_epochs = 3
seed = 0
n_cases = 3

# %%
import json
import warnings

import numpy as np
import pandas as pd
import seaborn as sns

from IPython.display import HTML, Markdown

from dqrec import augment, data, leaks
from dqrec.experiment import profile_params, results_dir, timer, write_table
from dqrec.findings import claims_augmentation, to_markdown
from dqrec.report import plain
from dqrec.stats import bootstrap_mean_ci
from dqrec.quantizers import usage_by_side
from dqrec.representation import RepresentationModel

warnings.filterwarnings("ignore", message=".*have no timestamp.*")
params = profile_params(profile, main_dataset=dataset, n_layers=n_layers, codebook_size=codebook_size, k=k,
                        k_latent=k_latent, representation_epochs=representation_epochs, seed=seed)
split = data.prepare(data.load(params["main_dataset"]), split="temporal", seq_len=params["seq_len"])
print(f"{split.name}: {len(split.samples):,} samples, {split.n_users:,} users, {split.n_items:,} items")

# %% [markdown]
# ## Semantic IDs and neighbours for every sample
#
# The representation model (Section 4.2.1) embeds each sample's user and item side from features
# and the recent sequence; DQ-VAE is fitted on the *store*, each entity at its most recent training
# sample before the validation period, and encodes every sample.

# %%
with timer() as t_rep:
    rep = RepresentationModel(epochs=representation_epochs, seed=seed, progress=False).fit(split)
    emb = {side: rep.sample_embeddings(split, side) for side in ("user", "item")}
aug, seconds = {}, {}
for side in ("user", "item"):
    with timer() as t:
        aug[side] = augment.augment_side(split, emb[side], side, n_layers, codebook_size, params["beta"], k, k_latent,
                                         seed)
    seconds[side] = round(t(), 2)
print(f"representation {t_rep():.0f} s; semantic IDs + neighbours: {seconds}")
HTML(plain(pd.DataFrame({side: a.seconds for side, a in aug.items()}).T, "Seconds per step of the augmentation", index="side"))

# %% [markdown]
# ## How the neighbours are searched, and a check against faiss
#
# The store holds a few thousand entities, but every *sample* needs its own neighbours: on ML-1M
# that is every positive of the datasets chapter, each with its own semantic ID, and for each of them
# $L$ latent variants too. `dqrec.codesearch.CodeSearch` searches in code space. DQ-VAE's layers own
# orthogonal column groups of $W$, so
#
# $$\|\hat z(a) - \hat z(b)\|^2 = \sum_{l=1}^{L} T_l[a_l, b_l], \qquad T_l[j, j'] = \|r_l^j - r_l^{j'}\|^2,$$
#
# with $T_l$ the $J \times J$ table of squared distances between layer $l$'s codewords. One query then
# costs $L$ lookups per stored entity. Queries in lexicographic order share partial sums, and two exact bounds prune the
# explicit and latent candidates (module docstring). The result is the exact top-K.
#
# Below, a random subset of samples is searched again with faiss `IndexFlatL2` on the decoded $\hat z$,
# and both neighbour sets are compared in float64. Where they differ, it is between equidistant
# entities, or faiss's float32 arithmetic ($|q|^2 + |s|^2 - 2\, q \cdot s$) picked a farther one.
# `scripts/bench_dqrec.py` does this for all ML-1M samples and times both searches
# (`results/bench/dqrec.json`).

# %%
check_rows = np.random.default_rng(seed).choice(len(split.samples), min(20_000, len(split.samples)), replace=False)
agreement = pd.DataFrame({side: augment.flat_search_agreement(split, a, emb[side], check_rows) for side, a in aug.items()}).T
HTML(plain(agreement.rename(columns={"faiss_flat_search_seconds": "faiss seconds", "share_same_distances": "same",
                                     "share_nearer_than_faiss": "ours nearer", "share_farther_than_faiss": "ours farther"}),
           "Our code-space search against faiss IndexFlatL2 on the decoded ẑ: share of samples whose K neighbour "
           "distances are the same, or nearer / farther in ours", index="side"))

# %% [markdown]
# The committed benchmark (ML-1M, temporal split, $K=30$, $K'=2$, $L=4$, $J=128$, both sides, median of three
# runs; the caption gives the target and the cores it was timed on):

# %%
bench_file = json.loads((results_dir("paper") / "bench" / "dqrec.json").read_text())
bench = bench_file["neighbours"]
timings = pd.DataFrame({**{f"run {i + 1}": {side: r[side]["seconds"] for side in ("user", "item")} | {"total": r["total_seconds"]}
                           for i, r in enumerate(bench["repeats"])},
                        "faiss flat search only": {side: bench["faiss_reference"][side]["faiss_flat_search_seconds"]
                                                   for side in ("user", "item")}}).T.assign(total=lambda t: t.user + t.item)
HTML(plain(timings, f"Seconds to find the neighbours of every ML-1M sample, both sides, on {bench_file['cpus']} CPU cores; "
                    f"target {bench['target_seconds']:g} s (results/bench/dqrec.json)", index="run"))

# %% [markdown]
# ## Feature augmentation (Eq. 14): how the codes are shared
#
# A code is useful as a feature when it is neither unique to one entity nor shared by everyone.
# Perplexity is the effective number of codes used per layer ($J$ at most); the collision rate is the
# share of samples whose full semantic ID is shared with another sample.

# %%
usage, ids = usage_by_side({side: a.codes for side, a in aug.items()}, codebook_size)
display(HTML(plain(usage, "Codebook usage per layer l (J codes each)")))
HTML(plain(ids, "Distinct semantic IDs among the samples", index="side"))

# %% [markdown]
# ## Linkage augmentation (Eqs. 15-19): what $Q^{all}$ holds
#
# `explicit` is $|Q|$ ($K$ unless the store is smaller), `latent` the number of latent neighbours over
# all layers ($L \cdot K'$ at most), `latent_already_explicit` the share of latent neighbours that are
# explicit ones too (what exploration does *not* add), `all` is $|Q^{all}|$.

# %%
stats = pd.DataFrame({side: augment.neighbour_stats(a) for side, a in aug.items()}).T
write_table(stats.reset_index(names="side"), "augmentation_neighbours", params, t_rep() + sum(seconds.values()))
HTML(plain(stats, "Neighbours per sample (means)", index="side"))

# %% [markdown]
# ## Do neighbours share history?
#
# Neighbours are found from representations, not from co-interactions, so they need not have
# interacted with the same items. We measure the Jaccard overlap of training histories between a
# test sample's user (item) and its explicit and latent neighbours, against random entities, for the
# test samples whose user (item) has a training history at all. The interval is a bootstrap over
# those test samples of the mean difference explicit minus random.

# %%
rng = np.random.default_rng(seed)
test_rows = rng.choice(split.test.index.to_numpy(), min(2000, len(split.test)), replace=False)
overlap = pd.concat([augment.history_overlap(split, a, test_rows, seed).assign(side=side) for side, a in aug.items()])
summary = overlap.groupby("side")[["explicit", "latent", "random"]].mean().assign(
    samples_with_history=overlap.groupby("side").explicit.count(), samples=overlap.groupby("side").size())
ci = {side: bootstrap_mean_ci((g.explicit - g.random).dropna().to_numpy(), seed=seed)
      for side, g in overlap.groupby("side")}
summary = summary.assign(ci_lo=[ci[s][0] for s in summary.index], ci_hi=[ci[s][1] for s in summary.index])
write_table(summary.reset_index(), "augmentation_history_overlap", params)
HTML(plain(summary, "Mean Jaccard overlap of training histories with the neighbours; interval: explicit minus random",
           index="side"))

# %%
long = overlap.melt(id_vars="side", var_name="neighbours", value_name="mean Jaccard")
ax = sns.boxplot(long, x="side", y="mean Jaccard", hue="neighbours", showfliers=False)
ax.figure.set_size_inches(6, 3.2)
ax.legend(loc="upper left", bbox_to_anchor=(1, 1), fontsize=8, title="neighbours");

# %% [markdown]
# ## No neighbour from the future
#
# Every neighbour is an entity of the store, and every stored state is a training sample strictly
# before the validation period; validation and test samples therefore only link to their past.

# %%
leaks = pd.DataFrame({side: leaks.augmentation(split, a) for side, a in aug.items()}).T
assert leaks.all(axis=None), leaks
HTML(plain(leaks, "Leak checks (True: holds for every sample)", index="side"))

# %% [markdown]
# ## A few real users and their neighbours
#
# For some test samples whose user has a training history: the user's semantic ID, top genres and
# most recent titles, next to the same for the first explicit and latent neighbours.

# %%
has_history = split.train.user.value_counts()
candidates = split.test[split.test.user.map(has_history).fillna(0) >= 10].index.to_numpy()
for row in rng.choice(candidates, min(n_cases, len(candidates)), replace=False):
    display(HTML(plain(augment.describe_user(split, aug["user"], int(row)), f"test sample {row}")))

# %% [markdown]
# ## What we found
#
# The two claims of Section 4.3.2 this chapter can test (`dqrec.findings.claims_augmentation`). The
# first is what the ablation chapter's "w/o Lat." row measures in accuracy: if almost every latent
# neighbour is an explicit one already, removing the latent neighbours leaves $Q^{all}$ almost
# unchanged, and Table 3's "w/o Lat." change should be close to 0.

# %%
Markdown(to_markdown(claims_augmentation(results_dir(profile))))

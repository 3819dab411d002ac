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
# # DQ-VAE: derivation and variance balance
#
# DQ-VAE (Section 4.2) turns a user's or item's representation $z \in \mathbb{R}^d$ into $L$ semantic
# IDs $s = (c_1, \dots, c_L)$. It centres the representations (Eq. 2), decorrelates them with the SVD
# (Eqs. 3-6), splits the decorrelated dimensions into $L$ groups of equal size and near-equal variance
# (Eq. 7), and quantises each group with its own codebook of $J$ codewords (Eqs. 8-10), trained on
# $\mathcal{L}_T = \mathcal{L}_R + \beta \mathcal{L}_C$ (Eqs. 11-13). This chapter walks
# through the derivation with numerical checks on the **real** representations of users and items
# that `dqrec.representation` learns, then compares DQ-VAE with PQ, OPQ, RQ and plain VQ at the same
# code budget. All logic is in `dqrec.dqvae` and `dqrec.quantizers`; the cells call and show.

# %%
import os

# %% tags=["parameters"]
profile = os.environ.get("DQREC_PROFILE", "quick")  # "quick", "paper" or "test": dqrec.experiment.PROFILES
dataset = None  # None: the profile's main_dataset
n_layers = 4  # L
codebook_size = 128  # J
beta = 0.25
seed = 0
representation_epochs = 3

# %%
import warnings

import numpy as np
import pandas as pd
from IPython.display import HTML, Markdown

from dqrec import data, plots
from dqrec.dqvae import (DQVAE, decorrelation_check, group_shares, grouping_summary, latent_distance_ratio)
from dqrec.experiment import profile_params, results_dir, timer, write_table
from dqrec.findings import claims_dqvae, quantizer_ranking, to_markdown
from dqrec.quantizers import (compare_fit_methods, compare_quantizers, comparison_orderings, latent_ratio_summary, layer_nmi, loss_identity,
                              spectrum_summary)
from dqrec.report import plain
from dqrec.representation import RepresentationModel

warnings.filterwarnings("ignore", message=".*have no timestamp.*")
params = profile_params(profile, main_dataset=dataset, seed=seed, n_layers=n_layers, codebook_size=codebook_size,
                        beta=beta, representation_epochs=representation_epochs)
SIDES = ("user", "item")
print({k: params[k] for k in ("profile", "main_dataset", "seq_len", "n_layers", "codebook_size", "beta", "seed",
                              "representation_epochs")})

# %% [markdown]
# ## 1. The representations (Section 4.2.1)
#
# The feature-only dual tower of `dqrec.representation` is trained on the training split of the
# temporal split. Each user (item) is represented by its top embedding at its most recent training
# sample, so $Z \in \mathbb{R}^{N \times d}$ has one row per entity that has a training sample;
# entities without one are dropped.

# %%
with timer() as rep_time:
    ds = data.load(params["main_dataset"])
    split = data.prepare(ds, split="temporal", seq_len=params["seq_len"])
    rep = RepresentationModel(epochs=representation_epochs, seed=seed, progress=False).fit(split)
    Z, n_entities = {}, {}
    for side in SIDES:
        emb = rep.entity_embeddings(split, side)
        n_entities[side] = len(emb)
        Z[side] = emb[~np.isnan(emb).any(axis=1)].astype(np.float64)
print(f"representation model: {rep_time():.1f} s")

# %%
# NBVAL_CHECK_OUTPUT
pd.DataFrame({side: {"entities": n_entities[side], "N (with a training sample)": Z[side].shape[0],
                     "d": Z[side].shape[1]} for side in SIDES}).T

# %% [markdown]
# ## 2. Decorrelation by SVD (Eqs. 2-6)
#
# The paper centres $Z$ and takes its SVD,
#
# $$\tilde Z = Z - \bar z = V \Sigma W^\top, \qquad Y = \tilde Z W = V \Sigma \qquad \text{(Eqs. 2-4)},$$
#
# so that the rotated data have a diagonal covariance,
#
# $$\mathrm{Cov}(Y) = \tfrac{1}{N} Y^\top Y = \tfrac{1}{N} \hat\Sigma^2, \qquad D(y_n) = \tfrac{1}{N}\sigma_n^2
# \qquad \text{(Eqs. 5-6)}.$$
#
# `DQVAE.fit` does exactly this (plus Eq. 7 and the codebooks); `decorrelation_check` recomputes
# $\mathrm{Cov}(Y)$ from the fitted mean and $W$ and measures the largest off-diagonal entry and the
# largest deviation of the diagonal from $\sigma_n^2 / N$, both relative to the largest variance
# (written to `results/dqvae_decorrelation.csv`).

# %%
with timer() as fit_time:
    models = {side: DQVAE(n_layers, codebook_size, beta, seed=seed).fit(Z[side]) for side in SIDES}
checks = pd.DataFrame({side: decorrelation_check(models[side], Z[side]) for side in SIDES}).T
write_table(checks.reset_index(names="side"), "dqvae_decorrelation", params, fit_time(),
            checksums={ds.name: ds.checksum})
checks.map(lambda v: f"{v:.2e}")

# %%
# NBVAL_CHECK_OUTPUT
for side in SIDES:
    c = checks.loc[side]
    print(f"{side}s: Cov(Y) diagonal (max |off-diagonal| / max diagonal < 1e-10): {c.off_diagonal_ratio < 1e-10}; "
          f"diag Cov(Y) = sigma^2 / N (max error / max variance < 1e-10): {c.max_diagonal_error < 1e-10}")

# %%
variances = {side: models[side].singular_values_ ** 2 / len(Z[side]) for side in SIDES}
HTML(plain(spectrum_summary(variances), "The spectrum of Cov(Z): how unequal the decorrelated dimensions are",
           index="side"))

# %%
plots.svd_spectrum(variances);

# %% [markdown]
# The printed ratios are at the level of floating-point rounding: in the rotated coordinates the
# dimensions are uncorrelated and each carries variance $\sigma_n^2 / N$, as Eqs. 5-6 state. The scree
# plot and the table show how unequal the variances are (`largest / smallest`, and how few of the d
# dimensions hold half of the total): this is why the assignment of dimensions to layers (next
# step) matters.

# %% [markdown]
# ## 3. Balanced groups (Eq. 7)
#
# Eq. 7 asks for $L$ groups $W_1, \dots, W_L$ of $d/L$ columns each with near-equal sums of $\sigma^2$:
#
# $$\tilde W = [W_1, \dots, W_L] = \arg\min_{\tilde W} \sum_{l_1 \neq l_2} \Big( \sum_{w_m \in W_{l_1}} \sigma_m^2 -
# \sum_{w_m \in W_{l_2}} \sigma_m^2 \Big).$$
#
# Written literally (signed differences over all ordered pairs) the objective is identically zero, so
# we minimise the sum of *absolute* differences. `balanced_groups` (greedy with capacity, then
# pairwise swaps) is compared with the naive contiguous split of the sorted dimensions,
# $[0, d/L), [d/L, 2d/L), \dots$, and with
# `imbalance_lower_bound`, a bound no split can beat. `relative_objective` is the objective over the
# total variance, `max_min_ratio` the largest group sum over the smallest.

# %%
with timer() as group_time:
    groups_table = pd.concat([grouping_summary(variances[side], n_layers).assign(side=side) for side in SIDES],
                             ignore_index=True)
    shares = pd.concat([group_shares(variances[side], n_layers).assign(side=side) for side in SIDES],
                       ignore_index=True)
groups_table = groups_table[["side", "grouping", "objective", "relative_objective", "max_min_ratio", "columns"]]
write_table(groups_table, "dqvae_groups", params, fit_time() + group_time(), checksums={ds.name: ds.checksum})
HTML(plain(groups_table.drop(columns="columns"), "Grouping the decorrelated dimensions into L groups (Eq. 7)"))

# %%
for side in SIDES:
    print(f"{side}s, SVD columns of each layer's encoder W_l: "
          f"{' | '.join(','.join(map(str, g)) for g in models[side].groups_)}")

# %%
plots.group_variance_shares(shares);

# %% [markdown]
# The naive split gives the first layer the leading dimensions and so the largest share; its
# `max_min_ratio` says how many times more variance its richest layer has than its poorest. The
# balanced split's shares sit around $1/L$ (dashed line); how close it gets to the best possible
# split is bounded by the gap between its `relative_objective` and the lower bound's. The encoder
# columns printed above show how the balanced split pairs leading dimensions with trailing ones.
# When the largest variance alone exceeds $1/L$ of the total (`largest share` in step 2), no split
# can balance the layers: the lower bound is then above 0, and the best any split can do is to put
# the leading dimension with the $d/L - 1$ smallest ones, which is what the balanced split does there.

# %% [markdown]
# ## 4. Encoding, decoding and the loss (Eqs. 8-13)
#
# Encoding and decoding (Eqs. 8-10):
#
# $$x_l = (z - \bar z) W_l, \qquad c_l = \arg\min_{j} \|x_l - r_l^j\|^2, \qquad
# \hat z = \mathcal{D}(s) = \sum_{l=1}^{L} r_l^{c_l} W_l^\top + \bar z .$$
#
# Below, `decode(encode(Z))` against Eq. 10 written out literally in the cell.

# %%
eq10 = {}
for side in SIDES:
    m = models[side]
    codes = m.encode(Z[side])
    literal = m.mean_ + sum(m.codebooks_[l][codes[:, l]] @ m.components_[:, g].T for l, g in enumerate(m.groups_))
    eq10[side] = np.abs(m.decode(codes) - literal).max()
    print(f"{side}s: max |decode(encode(Z)) - Eq. 10| = {eq10[side]:.1e}")

# %% [markdown]
# Because $W$ is square and orthonormal and the $W_l$ partition its columns, the reconstruction error
# splits into orthogonal per-layer parts, $\hat z - z = \sum_l (r_l^{c_l} - x_l) W_l^\top$, hence
#
# $$\mathcal{L}_R = \|\hat z - z\|_2^2 = \sum_{l=1}^{L} \|x_l - r_l^{c_l}\|_2^2 = \mathcal{L}_C
# \quad \text{(Eqs. 11-12)}, \qquad \mathcal{L}_T = \mathcal{L}_R + \beta \mathcal{L}_C
# = (1 + \beta)\, \mathcal{L}_C \quad \text{(Eq. 13)}.$$
#
# With the nearest-codeword assignment of Eq. 9, $\mathcal{L}_C$ is a sum of $L$ independent k-means
# objectives, one per layer: per-layer k-means minimises $\mathcal{L}_T$ directly. `DQVAE.losses`
# computes $\mathcal{L}_R$ through the decoder and $\mathcal{L}_C$ in the latent spaces separately.

# %%
identity = loss_identity(models, Z)
identity.map(lambda v: f"{v:.3e}")

# %%
# NBVAL_CHECK_OUTPUT
for side in SIDES:
    r = identity.loc[side]
    print(f"{side}s: decode(encode(Z)) = Eq. 10 (max diff < 1e-10): {eq10[side] < 1e-10}; "
          f"L_R = L_C (relative diff < 1e-10): {r['|L_R - L_C| / L_C'] < 1e-10}; "
          f"L_T = (1 + beta) L_C: {bool(np.isclose(r['L_T / L_C'], 1 + beta, rtol=1e-10))}")

# %% [markdown]
# The relative difference between $\mathcal{L}_R$ and $\mathcal{L}_C$ is at rounding level on both
# sides, so training the codebooks on $\mathcal{L}_T$ is per-layer k-means. `fit_method="kmeans"` (the
# default) runs faiss k-means per layer; `fit_method="adam"` trains the codebooks literally, by Adam on
# $\mathcal{L}_T$ computed through the
# decoder (Eq. 10) over minibatches, from a 2-iteration k-means start. Both are fitted below; the
# table gives the loss each reaches on Z and its fit time.

# %%
with timer() as loss_time:
    losses_table, histories, kmeans_losses = compare_fit_methods(Z, n_layers, codebook_size, beta, seed)
write_table(losses_table, "dqvae_losses", params, loss_time(), checksums={ds.name: ds.checksum})
HTML(plain(losses_table, "DQ-VAE losses (Eqs. 11-13) against k-means per group"))

# %%
plots.adam_loss_history(histories, kmeans_losses);

# %% [markdown]
# The column `L_T / k-means L_T` says how far Adam ends from the k-means solution (below 1: Adam's
# codebooks are better on $Z$; above 1: worse), and `fit_seconds` what each costs. The curves show
# $\mathcal{L}_R$ and $\mathcal{L}_C$ on top of each other at every epoch (the identity above holds for
# any codebook, not only at the optimum), with $\mathcal{L}_T = (1 + \beta)\mathcal{L}_C$ above them. Both methods minimise the same
# objective from a k-means++ start and reach local optima of it, so any gap between them is the
# difference between two local optima, not between two objectives.

# %% [markdown]
# ## 5. Latent codes (Eq. 16)
#
# DQRec explores, per layer, the runner-up codeword,
#
# $$c_l^{lat} = \arg\min_{j \neq c_l} \|x_l - r_l^{j}\|^2 .$$
#
# How good an alternative it is depends on how close it is: the ratio
# $\|x_l - r_l^{c_l^{lat}}\| / \|x_l - r_l^{c_l}\|$ of the two Euclidean distances is 1 when $x_l$ lies
# on the boundary between the two cells and grows as $x_l$ nears its own codeword.

# %%
ratios = {side: latent_distance_ratio(models[side], Z[side]) for side in SIDES}
HTML(plain(latent_ratio_summary(ratios), "Latent distance ratios per layer"))

# %%
plots.latent_distance_ratios(ratios);

# %% [markdown]
# The table gives, per layer, the median ratio and the share of entities whose runner-up codeword is
# within 10 %, 50 % and 100 % of the distance to the assigned one. Where those shares are large, the
# latent code describes the entity in that layer nearly as well as its own code, so the neighbours it
# brings in (Eq. 17) are plausible rather than arbitrary. Layers whose curves rise earlier have
# more crowded codebooks, relative to the spread of their latents.

# %% [markdown]
# ## 6. DQ-VAE against PQ, OPQ, RQ and VQ at the same budget
#
# Every quantiser gets $L$ layers of $J$ codewords (`dqrec.quantizers`): PQ quantises contiguous blocks
# of the raw embedding, OPQ learns a rotation first, RQ quantises residuals level by level (as in
# RQ-VAE), and VQ is a single codebook of $J$ codewords ($L = 1$, only $J$ distinct IDs). For each we
# report fit time, relative reconstruction error $\|Z - \hat Z\|^2 / \|Z - \bar z\|^2$, collision rate (share of
# entities whose full ID is shared with another), mean code perplexity per layer, and the mean
# normalised mutual information between layers (`mean_nmi`), next to the same statistic for
# independently shuffled layers (`mean_nmi_chance`, the estimator's bias at this N and J).

# %%
all_codes = {side: {} for side in SIDES}
with timer() as cmp_time:
    comparison = pd.concat([compare_quantizers(Z[side], n_layers=n_layers, codebook_size=codebook_size, seed=seed,
                                               codes=all_codes[side]).reset_index().assign(side=side, N=len(Z[side]))
                            for side in SIDES], ignore_index=True)
comparison = comparison[["side", "quantizer", "N", *[c for c in comparison if c not in ("side", "quantizer", "N")]]]
write_table(comparison, "dqvae_comparison", params, cmp_time(), checksums={ds.name: ds.checksum})
HTML(plain(comparison, "DQ-VAE against PQ, OPQ, RQ and VQ at the same code budget"))

# %%
print(comparison_orderings(comparison))

# %%
plots.quantizer_comparison(comparison);

# %%
chance = comparison.set_index(["side", "quantizer"]).mean_nmi_chance.to_dict()
plots.layer_nmi_heatmaps({(side, name): layer_nmi(all_codes[side][name]) for side in SIDES
                          for name in ("DQ-VAE", "RQ")}, chance=chance);

# %% [markdown]
# How to read the rows: RQ's later levels refine the residual of the earlier ones, so its IDs are
# hierarchical (a level's code means something only given the codes before it); DQ-VAE's layers
# quantise orthogonal subspaces of balanced variance, so each position of the ID can be read (and
# explored, Eq. 16) on its own. PQ splits the raw dimensions without decorrelating or balancing them,
# and OPQ learns a rotation on top of PQ at a higher fit cost: their rows show what the SVD rotation and
# the balanced split buy at this budget. VQ, with only $J$ distinct IDs, shows what a single codebook
# cannot resolve. In the NMI heatmaps, compare the off-diagonal values with the chance level in their
# titles (`mean_nmi_chance`, the plug-in estimator's bias at this $N$ and $J$): values near that level
# mean the layers' codes are close to independent. Note that the SVD makes the layers' latents
# *uncorrelated* (Eq. 5), not independent: nonlinear dependence between the subspaces (for instance
# through the norm of the embeddings) can still show up as shared information between DQ-VAE's layers,
# so the measured excess, not the derivation, says how decoupled the IDs are.

# %% [markdown]
# ## What we found
#
# The paper's claims about DQ-VAE, judged on the tables above (`dqrec.findings.claims_dqvae`):

# %%
Markdown(to_markdown(claims_dqvae(results_dir(profile))) + "\n\n" + quantizer_ranking(comparison))

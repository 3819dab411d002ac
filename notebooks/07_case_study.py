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
# # Case study: what a semantic ID says about a user (Fig. 4)
#
# The paper's Fig. 4 shows two MovieLens users whose watch histories differ but whose semantic IDs
# and genre mixes are alike, and concludes that DQ-VAE captures interest patterns "without being
# affected by overlapping interaction sequences". One pair can be picked to make any point, so we
# show one pair chosen by a stated rule and then measure the claim over **all** pairs of users:
# do users who share more codes have more similar tastes, and does that still hold for pairs that
# have not a single training item in common?

# %%
import os

# %% tags=["parameters"]
profile = os.environ.get("DQREC_PROFILE", "quick")
dataset = None  # None: the profile's main dataset
representation_epochs = None  # None: the profile's
seed = 0
min_items = 20  # the case pair's users have at least this many training items

# %%
import warnings

from IPython.display import HTML, Markdown

from dqrec import augment, casestudy, data, plots, report
from dqrec.experiment import profile_params, results_dir, timer, write_table
from dqrec.findings import MIN_PAIRS, case_study_discussion, claims_case_study, to_markdown
from dqrec.representation import RepresentationModel

warnings.filterwarnings("ignore", message=".*have no timestamp.*")
params = profile_params(profile, main_dataset=dataset, representation_epochs=representation_epochs, seed=seed)
split = data.prepare(data.load(params["main_dataset"]), split="temporal", seq_len=params["seq_len"])
with timer() as elapsed:
    rep = RepresentationModel(epochs=params["representation_epochs"], seed=seed, progress=False).fit(split)
    users = augment.augment_side(split, rep.sample_embeddings(split, "user"), "user", params["n_layers"],
                                 params["codebook_size"], params["beta"], params["k"], params["k_latent"], seed)
print(f"{split.name}: {int((users.store >= 0).sum()):,} stored users, semantic IDs of L={params['n_layers']} codes "
      f"from J={params['codebook_size']} ({elapsed():.0f} s)")

# %% [markdown]
# ## One pair, chosen by a rule
#
# Among users with at least `min_items` training items: the pairs that share the most codes (the
# whole ID if any pair does) and **no** training item, and of those the pair with the most similar
# genre mix. Each user is described at their stored state, the most recent training sample.

# %%
pair = casestudy.case_pair(split, users, seed, min_items)
profile_table = casestudy.pair_profile(split, users, pair)
plots.pair_genres(profile_table);

# %%
HTML(report.plain(casestudy.pair_users(split, users, pair).reset_index(names=""),
                  caption="The pair at its stored states (the training items behind each semantic ID)"))

# %% [markdown]
# ## All pairs
#
# For every pair of stored users $(u, v)$: how many of the $L$ codes their semantic IDs
# $s_u = (c_{1u}, \dots, c_{Lu})$ and $s_v$ share, the Jaccard overlap of their training item sets
# $|I_u \cap I_v| / |I_u \cup I_v|$, and the cosine of their genre mixes *centred* on the average
# user's mix $\bar g$,
#
# $$\cos(g_u - \bar g,\; g_v - \bar g),$$
#
# so that 0 is what unrelated users score on average (raw genre mixes are all dominated by Drama and
# Comedy and look alike). Each point below carries its number of pairs $n$ and a 95 % interval
# ($\pm 1.96\,\mathrm{sd}/\sqrt{n}$, which treats pairs as independent although every user is in
# many of them, so the real uncertainty is larger); a point resting on fewer than `MIN_PAIRS` pairs
# is drawn hollow and is not used for a verdict.

# %%
with timer() as t_pairs:
    summary = casestudy.pair_summary(split, users)
write_table(summary, "case_study_pairs", params, elapsed() + t_pairs())
plots.shared_codes_summary(summary, MIN_PAIRS);

# %%
# NBVAL_IGNORE_OUTPUT
summary.assign(
    cosine=summary.genre_cosine.map("{:+.3f}".format) + " ± " + summary.genre_cosine_sd.map("{:.3f}".format),
    cosine_no_common=summary.genre_cosine_no_common_item.map("{:+.3f}".format) + " ± "
    + summary.genre_cosine_no_common_item_sd.map("{:.3f}".format).replace("nan", "–"),
)[["shared_codes", "pairs", "history_jaccard", "cosine", "pairs_no_common_item", "cosine_no_common"]].rename(columns={
    "shared_codes": "shared codes", "history_jaccard": "history Jaccard", "cosine": "taste cosine (mean ± sd)",
    "pairs_no_common_item": "pairs with no common item", "cosine_no_common": "their taste cosine"}).pipe(
    lambda t: HTML(report.plain(t.assign(**{c: t[c].map("{:,}".format) for c in ("pairs", "pairs with no common item")}),
                                caption="Pairs of stored users by the number of codes their semantic IDs share")))

# %% [markdown]
# ## What we found
#
# Each claim of the paper's case study, judged on the table above (`dqrec.findings.claims_case_study`):

# %%
Markdown(to_markdown(claims_case_study(results_dir(profile))) + "\n\n" + case_study_discussion(results_dir(profile)))

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
# # Verdict: what holds and what does not
#
# Each claim of the paper that this book tests, with our result, a verdict (reproduced, partly
# reproduced, not reproduced, not testable here), why, and the chapter holding the evidence. Nothing
# on this page is typed in: the claims and verdicts are computed from the results files the chapters
# wrote (`results/` for the paper profile), by `dqrec.findings` (chapters 01-03 and 05-07) and
# `dqrec.report` (Table 1, chapter 04), so a verdict changes when the numbers do.

# %%
import os

# %% tags=["parameters"]
profile = os.environ.get("DQREC_PROFILE", "quick")

# %%
import pandas as pd
from IPython.display import Markdown

from dqrec import plots, report
from dqrec.experiment import profile_params, results_dir, write_table

params = profile_params(profile)
root = results_dir(profile)
table1 = root / "table1_claims.csv"
extra = ([report.Claim(**row) for row in pd.read_csv(table1).fillna("").to_dict("records")]
         if table1.exists() else [report.Claim("Table 1", "(claims of Table 1)", "chapter 04 has not run under this "
                                               "profile", "not testable here", f"{table1} is missing", "04_table1")])
claims = report.claims_frame(report.collect_claims(root, extra))
chapters = {p.stem for p in (root / "notebooks").glob("[0-9][0-9]_*.ipynb")} | {"00_verdict"}  # linked where built
write_table(claims, "verdict", params);

# %% [markdown]
# ## At a glance
#
# The bars count the paper's claims by verdict, per chapter holding the evidence; the table under
# them names each claim.

# %%
plots.verdict_overview(claims);

# %%
Markdown(report.verdict_summary(claims, chapters=chapters, note=report.coverage_note(root, params)))

# %% [markdown]
# ## Claim by claim
#
# Our result and the reason for each verdict. Where a difference between models is involved, the
# chapter gives its confidence interval; "inside the noise" means the interval contains zero.

# %%
Markdown(report.verdict_details(claims, chapters=chapters))

"""Benchmarks for issue 4 on ML-1M (temporal split), written to results/bench/dqrec.json.

* neighbours: semantic IDs + explicit and latent neighbours for every sample, both sides
  (K=30, K'=2, L=4, J=128), given the representations; target <= 5 s.
* end to end: one DQRec run (representation, DQ-VAE, neighbours, training with early stopping,
  both evaluations of the test split) with the paper profile's epochs; target <= 300 s.
"""
import json

import numpy as np
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dqrec import data  # noqa: E402
from dqrec.augment import augment_side  # noqa: E402
from dqrec.evaluate import evaluate  # noqa: E402
from dqrec.experiment import fit_model, git_sha, profile_params  # noqa: E402
from dqrec.representation import RepresentationModel  # noqa: E402

warnings.filterwarnings("ignore")
split = data.prepare(data.load("ml-1m", download=False), split="temporal", seq_len=20)
rep = RepresentationModel(epochs=1, progress=False).fit(split)
emb = {side: rep.sample_embeddings(split, side) for side in ("user", "item")}
neighbours = {}
for side in ("user", "item"):
    t = time.perf_counter()
    aug = augment_side(split, emb[side], side, n_layers=4, codebook_size=128, k=30, k_latent=2)
    neighbours[side] = dict(seconds=round(time.perf_counter() - t, 2), distinct_ids=int(len(np.unique(aug.codes, axis=0))),
                            samples=len(aug.codes))
neighbour_total = sum(v["seconds"] for v in neighbours.values())

params = profile_params("paper", progress=False)
t = time.perf_counter()
model = fit_model("DQRec", split, 0, params)
fit_s = time.perf_counter() - t
t = time.perf_counter()
res = evaluate(model, split.test, split.known(), split.n_items, progress=False)
eval_s = time.perf_counter() - t
total = fit_s + eval_s
out = dict(dataset="ml-1m", split="temporal", samples=len(split.samples),
           neighbours=dict(per_side=neighbours, total_seconds=round(neighbour_total, 2), target_seconds=5.0,
                           meets_target=neighbour_total <= 5.0),
           end_to_end=dict(fit_seconds=round(fit_s, 1), eval_seconds=round(eval_s, 1), total_seconds=round(total, 1),
                           epochs_run=len(model.history_), max_epochs=params["epochs"], patience=params["patience"],
                           history=model.history_, target_seconds=300.0, meets_target=total <= 300.0,
                           test_recall10=res[(res.k == 10) & (res.metric == "Recall")].set_index("protocol").value.to_dict()),
           git_sha=git_sha(), cpus=os.cpu_count())
path = ROOT / "results" / "bench" / "dqrec.json"
path.write_text(json.dumps(out, indent=2, default=float) + "\n")
print(json.dumps(out, indent=2, default=float))

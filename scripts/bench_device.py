"""The CUDA path of the one trainer, checked and timed on a GPU machine (CI has none).

* check: DQRec, DualTower and MF-BPR trained with ``device="cuda"`` on the planted two-group data of
  the tests must beat MostPopular by the tests' margin under full ranking;
* epoch: three ML-1M DQRec epochs (K=30, L=4, J=128, batch 1024) given the augmentation, fp32 and bf16,
  with the trainer's per-step breakdown, as ``scripts/bench_dqrec.py`` measures them on the CPU;
* end to end: one converged ML-1M DQRec run (temporal split, seed 0, the paper profile) on the GPU.

Usage: python scripts/bench_device.py [--out results/bench] [--skip-end-to-end]
Writes <out>/dqrec_cuda.json.
"""
import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dqrec import data  # noqa: E402
from dqrec.augment import augment_side  # noqa: E402
from dqrec.evaluate import evaluate  # noqa: E402
from dqrec.experiment import git_sha, model_kwargs, profile_params  # noqa: E402
from dqrec.registry import make_model  # noqa: E402
from dqrec.representation import RepresentationModel  # noqa: E402
from tests.test_augment_model import planted_split  # noqa: E402
from tests.test_train import KW, SEM, full_recall10  # noqa: E402


def check(device: str) -> dict:
    split = planted_split(n_users=200, n_items=80, per_user=30)
    popular = full_recall10(make_model("MostPopular").fit(split), split)
    out = {"MostPopular": popular}
    mf = {k: v for k, v in KW.items() if k != "hidden"}
    for name, kw in (("DQRec", dict(KW, **SEM)), ("DualTower", KW), ("MF-BPR", dict(mf, lr=0.01))):
        model = make_model(name, **kw, device=device).fit(split)
        out[name] = full_recall10(model, split)
    out["all_beat_most_popular"] = all(out[m] > popular + 0.15 for m in ("DQRec", "DualTower", "MF-BPR"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "results" / "bench"), help="folder for dqrec_cuda.json")
    ap.add_argument("--skip-end-to-end", action="store_true", help="skip the converged ML-1M run")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this benchmark is for a GPU machine")
    out = dict(device=torch.cuda.get_device_name(0), torch=torch.__version__, git_sha=git_sha())
    out["check"] = check("cuda")
    print(json.dumps(out["check"]), flush=True)

    split = data.prepare(data.load("ml-1m", download=False), split="temporal", seq_len=20)
    rep = RepresentationModel(epochs=1, progress=False).fit(split)
    aug = {side: augment_side(split, rep.sample_embeddings(split, side), side, n_layers=4, codebook_size=128, k=30,
                              k_latent=2) for side in ("user", "item")}
    out["epoch"] = {}
    for precision in ("fp32", "bf16"):
        model = make_model("DQRec", epochs=3, patience=3, precision=precision, device="cuda",
                           progress=False).fit(split, augmentation=aug)
        epochs = model.trainer_.history_
        totals = sorted(sum(v for k, v in h.items() if k.endswith("_seconds")) for h in epochs)
        out["epoch"][precision] = dict(median_total_seconds=round(totals[1], 2), epochs=epochs)
        print(precision, json.dumps(out["epoch"][precision]["median_total_seconds"]), flush=True)

    if not args.skip_end_to_end:
        params = profile_params("paper", progress=False)
        start = time.perf_counter()
        model = make_model("DQRec", **model_kwargs("DQRec", 0, params), device="cuda").fit(split)
        fit_s = time.perf_counter() - start
        res = evaluate(model.scorer("test"), split.test, split.known(), split.n_items, progress=False)
        out["end_to_end"] = dict(fit_seconds=round(fit_s, 1), **model.trainer_.summary(),
                                 test_recall10=res[(res.k == 10) & (res.metric == "Recall")]
                                 .set_index("protocol").value.to_dict())
        print(json.dumps(out["end_to_end"]), flush=True)
    path = Path(args.out) / "dqrec_cuda.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()

"""Train one RecBole 1.2.1 model on exported atomic files and dump its scores; run in the RecBole venv.

    TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 /work/venvs/recbole/bin/python scripts/recbole_worker.py \
        --data-dir DIR --dataset NAME --model LightGCN --seed 0 --out OUT_PREFIX [--bench-epochs 3]

Reads DIR/NAME/NAME.{train,valid,test}.inter (``benchmark_filename``), whose user and item tokens
are dqrec's indices, and DIR/NAME/test_users.npy (the user of every test sample, in the order of
dqrec's ``split.test``). Trains with early stopping on validation, loads the best epoch, and writes

* OUT_PREFIX.npy: (n_test, n_items) float32 scores of every item (dqrec's item order) for the user
  of each test sample (general models score by user; a sequential model must score each sample
  from its own history: add a branch in :func:`sample_scores`);
* OUT_PREFIX.json: epochs, best epoch, seconds of each training and validation epoch, RecBole's
  own test metrics, the config.

With ``--bench-epochs N`` it trains N epochs without validation and writes only the JSON (timings).
Kept free of dqrec imports: this venv has numpy < 2.
"""
import argparse
import json
import time

import numpy as np
import torch

# Our hyper-parameters mapped onto RecBole's names: the paper's dim 64 / lr 1e-3 / batch 1024 for all,
# plus each model's settings as close to dqrec's implementation as RecBole's options allow.
MODELS = {
    "NeuMF": dict(mf_embedding_size=64, mlp_embedding_size=64, mlp_hidden_size=[64, 32, 16], dropout_prob=0.0,
                  train_neg_sample_args=dict(distribution="uniform", sample_num=4, alpha=1.0, dynamic=False,
                                             candidate_num=0)),
    "NGCF": dict(embedding_size=64, hidden_size_list=[64, 64, 64], node_dropout=0.0, message_dropout=0.1,
                 reg_weight=1e-5),
    "LightGCN": dict(embedding_size=64, n_layers=3, reg_weight=1e-4),
}


def config_dict(args) -> dict:
    epochs = args.bench_epochs or args.max_epochs
    return dict(model=args.model, dataset=args.dataset, data_path=args.data_dir,
                benchmark_filename=["train", "valid", "test"],
                load_col={"inter": ["user_id", "item_id", "timestamp"]}, USER_ID_FIELD="user_id",
                ITEM_ID_FIELD="item_id", TIME_FIELD="timestamp", learning_rate=1e-3, train_batch_size=1024,
                eval_batch_size=4096, epochs=epochs, stopping_step=5,
                eval_step=epochs + 1 if args.bench_epochs else 1, valid_metric="NDCG@10",
                metrics=["Recall", "NDCG"], topk=[10], eval_args=dict(group_by="user", order="TO", mode="full"),
                seed=args.seed, reproducibility=True, use_gpu=False, device="cpu", worker=0, show_progress=False,
                checkpoint_dir=f"{args.out}_ckpt", save_dataset=False, save_dataloaders=False,
                **MODELS[args.model])


def sample_scores(model, dataset, test_users: np.ndarray, n_items: int) -> np.ndarray:
    """(len(test_users), n_items) scores in dqrec's item order, by user (general recommenders)."""
    from recbole.data.interaction import Interaction

    uid = dataset.token2id(dataset.uid_field, [str(u) for u in np.unique(test_users)])
    iid = dataset.token2id(dataset.iid_field, [str(i) for i in range(n_items)])
    model.eval()
    with torch.no_grad():
        rows = []
        for start in range(0, len(uid), 512):
            users = torch.as_tensor(uid[start:start + 512])
            try:
                full = model.full_sort_predict(Interaction({dataset.uid_field: users}))
            except NotImplementedError:  # NeuMF scores (user, item) pairs only
                pairs = Interaction({dataset.uid_field: users.repeat_interleave(dataset.item_num),
                                     dataset.iid_field: torch.arange(dataset.item_num).repeat(len(users))})
                full = model.predict(pairs)
            rows.append(full.reshape(-1, dataset.item_num)[:, iid].numpy())
    by_user = np.concatenate(rows).astype(np.float32)
    return by_user[np.searchsorted(np.unique(test_users), test_users)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--model", required=True, choices=sorted(MODELS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--bench-epochs", type=int, default=0)
    ap.add_argument("--max-epochs", type=int, default=200)
    args = ap.parse_args()

    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    conf = config_dict(args)
    config = Config(model=args.model, dataset=args.dataset, config_dict=conf)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)

    seconds, valid_scores = {"train": [], "valid": []}, []
    for step, name in (("train", "_train_epoch"), ("valid", "_valid_epoch")):
        inner = getattr(trainer, name)

        def timed(*a, _inner=inner, _step=step, **kw):
            t = time.perf_counter()
            out = _inner(*a, **kw)
            seconds[_step].append(time.perf_counter() - t)
            if _step == "valid":
                valid_scores.append(float(out[0]))
            return out

        setattr(trainer, name, timed)
    start = time.perf_counter()
    best_valid, _ = trainer.fit(train_data, valid_data if not args.bench_epochs else None, saved=not args.bench_epochs,
                                show_progress=False)
    result = dict(model=args.model, seed=args.seed, epochs_run=len(seconds["train"]),
                  interactions={part: len(d._dataset.inter_feat) for part, d in
                                (("train", train_data), ("valid", valid_data), ("test", test_data))},
                  train_epoch_seconds=[round(s, 3) for s in seconds["train"]],
                  valid_epoch_seconds=[round(s, 3) for s in seconds["valid"]], fit_seconds=round(time.perf_counter() - start, 2),
                  torch_threads=torch.get_num_threads(), torch=torch.__version__,
                  config={k: v for k, v in conf.items() if k not in ("data_path", "checkpoint_dir")})
    if not args.bench_epochs:
        result["valid_ndcg10"] = [round(v, 5) for v in valid_scores]
        result["best_epoch"] = int(np.argmax(valid_scores)) + 1  # the first best, as RecBole keeps it
        result["stopped_by"] = "max_epochs" if len(seconds["train"]) >= args.max_epochs else "patience"
        result["recbole_best_valid_ndcg10"] = float(best_valid)
        test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)  # loads the best epoch
        result["recbole_test_per_user"] = {k: float(v) for k, v in test.items()}
        test_users = np.load(f"{args.data_dir}/{args.dataset}/test_users.npy")
        n_items = int(np.load(f"{args.data_dir}/{args.dataset}/n_items.npy"))
        np.save(f"{args.out}.npy", sample_scores(model, train_data._dataset, test_users, n_items))
    with open(f"{args.out}.json", "w") as f:
        json.dump(result, f, indent=1, default=str)


if __name__ == "__main__":
    main()

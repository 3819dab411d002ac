"""Train RecBole 1.2.1's SASRec or BERT4Rec on exported atomic files and dump test scores (RecBole's venv).

Run by scripts/recbole_sequential.py with /work/venvs/recbole/bin/python; imports no dqrec code.

    python recbole_sequential_runner.py DATA_DIR NAME MODEL EPOCHS SEED OUT.npz JSON_CONFIG

JSON_CONFIG: RecBole settings of the model, with ``stopping_step`` (its patience) among them, and
optionally ``resume_dir`` (not RecBole's): a folder where the training state is saved after every epoch
(model, Adam, epoch, early-stopping counter, best score, the best model's file, the random generators) and
from which a run started again continues. A resumed run is not bit for bit the uninterrupted one (RecBole's
data transforms draw from generators this does not reach), but it trains and stops the same way.
DATA_DIR/NAME/NAME.{train,valid,test}.inter hold one row per sample: ``row`` (our sample row),
``user_id``, ``item_id_list`` (the sample's history, oldest first) and ``item_id`` (its positive). Writes
OUT.npz: ``rows`` (test sample rows), ``scores`` (len(rows), RecBole's items), ``items`` (our index of
each score column), ``epoch_seconds`` (RecBole's training seconds of each epoch, validation excluded),
``valid_scores`` (its validation NDCG@10 after each epoch).
"""
import json
import os
import random
import sys
import time

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from recbole.config import Config  # noqa: E402
from recbole.data import create_dataset, data_preparation  # noqa: E402
from recbole.trainer import Trainer  # noqa: E402
from recbole.utils import get_model, init_seed  # noqa: E402


def main(data_dir, name, model_name, epochs, seed, out, extra):
    extra = json.loads(extra)
    resume = extra.pop("resume_dir", None)
    config = Config(model=model_name, dataset=name, config_dict=dict(
        data_path=data_dir, benchmark_filename=["train", "valid", "test"], USER_ID_FIELD="user_id",
        ITEM_ID_FIELD="item_id", load_col={"inter": ["row", "user_id", "item_id_list", "item_id"]},
        alias_of_item_id=["item_id_list"], numerical_features=[], epochs=int(epochs), eval_step=1,
        train_batch_size=1024, learning_rate=1e-3, eval_batch_size=1024, metrics=["Recall", "NDCG"], topk=[10],
        valid_metric="NDCG@10", eval_args={"order": "TO", "mode": "full", "group_by": None}, seed=int(seed),
        reproducibility=True, use_gpu=False, device="cpu", show_progress=False,
        checkpoint_dir=resume or os.path.join(data_dir, "saved"), save_dataset=False, save_dataloaders=False,
        **extra))
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train.dataset).to(config["device"])
    trainer = Trainer(config, model)
    seconds = []
    original = trainer._train_epoch

    def timed(*args, **kwargs):  # RecBole's own epoch, timed without its validation
        t0 = time.perf_counter()
        result = original(*args, **kwargs)
        seconds.append(time.perf_counter() - t0)
        return result

    trainer._train_epoch = timed
    valid_scores, validate = [], trainer._valid_epoch

    def scored(*args, **kwargs):  # RecBole's validation score (valid_metric) of each epoch
        score, result = validate(*args, **kwargs)
        valid_scores.append(float(score))
        return score, result

    trainer._valid_epoch = scored
    state_file = os.path.join(resume, "state.pth") if resume else None
    if state_file and os.path.exists(state_file):
        state = torch.load(state_file, weights_only=False)
        model.load_state_dict(state["model"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.start_epoch, trainer.cur_step = state["epoch"] + 1, state["cur_step"]
        trainer.best_valid_score, trainer.best_valid_result = state["best_valid_score"], state["best_valid_result"]
        trainer.saved_model_file = state["saved_model_file"]
        seconds[:], valid_scores[:] = state["seconds"], state["valid_scores"]
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])
        train.generator.set_state(state["loader_rng"])
        print(f"resumed after epoch {state['epoch'] + 1} from {state_file}", flush=True)

    def save_state(epoch_idx, valid_score):  # after RecBole's early-stopping update of this epoch
        tmp = state_file + ".tmp"
        torch.save(dict(model=model.state_dict(), optimizer=trainer.optimizer.state_dict(), epoch=epoch_idx,
                        cur_step=trainer.cur_step, best_valid_score=trainer.best_valid_score,
                        best_valid_result=trainer.best_valid_result, saved_model_file=trainer.saved_model_file,
                        seconds=list(seconds), valid_scores=list(valid_scores), torch_rng=torch.get_rng_state(),
                        numpy_rng=np.random.get_state(), python_rng=random.getstate(),
                        loader_rng=train.generator.get_state()), tmp)
        os.replace(tmp, state_file)

    trainer.fit(train, valid, saved=True, show_progress=False, callback_fn=save_state if resume else None)
    trainer.resume_checkpoint(trainer.saved_model_file)  # the best validation epoch
    model.eval()
    inter = test.dataset.inter_feat
    ours = np.array([int(t) for t in dataset.id2token("item_id", np.arange(1, dataset.item_num))])  # our index
    scores = []
    with torch.no_grad():
        for start in range(0, len(inter), 1024):
            batch = inter[start:start + 1024].to(config["device"])
            scores.append(model.full_sort_predict(batch).view(len(batch), -1)[:, 1:].cpu().numpy())  # 0: [PAD]
    np.savez(out, rows=inter["row"].numpy().astype(np.int64), scores=np.concatenate(scores), items=ours,
             epoch_seconds=np.array(seconds), best_valid=float(trainer.best_valid_score), valid_scores=np.array(valid_scores))

if __name__ == "__main__":
    main(*sys.argv[1:])

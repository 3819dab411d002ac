"""Protocol forensics: each factor on a hand-checkable toy case, and the default path unchanged."""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from dqrec import data, forensics
from dqrec.evaluate import _sample_negatives, candidate_counts, evaluate, expected_random_metrics
from tests.test_evaluate import TINY, TINY_KNOWN, TINY_SCORER, ConstantScorer, TableScorer, frame


def toy_dataset(n=600, n_users=12, n_items=20, seed=0):
    rng = np.random.default_rng(seed)
    pairs = pd.DataFrame({"user": rng.integers(1, n_users + 1, n), "item": rng.integers(1, n_items + 1, n)})
    pairs = pairs.drop_duplicates().reset_index(drop=True)
    ratings = pairs.assign(rating=5.0, timestamp=1e9 + rng.integers(0, 60, len(pairs)).astype(float))  # many ties
    return data.Dataset("toy", ratings, pd.DataFrame(), pd.DataFrame())


# ------------------------------------------------------------------ tie rules
def test_tie_rules_on_an_all_equal_scorer():
    for protocol in ("in_batch", "full"):
        m = candidate_counts(TINY, TINY_KNOWN, 6, protocol)
        _, opt = evaluate(ConstantScorer(), TINY, TINY_KNOWN, 6, protocols=protocol, ties="optimistic",
                          progress=False, return_ranks=True)
        _, pes = evaluate(ConstantScorer(), TINY, TINY_KNOWN, 6, protocols=protocol, ties="pessimistic",
                          progress=False, return_ranks=True)
        np.testing.assert_array_equal(opt[protocol], 0)
        np.testing.assert_array_equal(pes[protocol], m - 1)  # last of its eligible candidates


def test_tie_rules_leave_untied_ranks_alone():
    for ties in ("random", "optimistic", "pessimistic"):
        _, ranks = evaluate(TINY_SCORER, TINY, TINY_KNOWN, 6, protocols="full", ties=ties, progress=False,
                            return_ranks=True)
        np.testing.assert_array_equal(ranks["full"], [0, 4, 4, 0])  # test_evaluate's hand-computed ranks


# ------------------------------------------------------------------ candidate pools
def test_duplicated_candidates_by_hand():
    # One batch of 4 in batch order; columns hold items [3, 1, 1, 4] in some order. s0 (u0, 3): u0 likes
    # 4 -> 3, 1, 1 eligible, rank 0; s1 (u1, 1): the other copy of 1 is itself -> 3, 1, 4, rank 2; s2
    # likewise; s3 (u0, 4): u0 likes 3 -> 1, 1, 4, rank 0. Distinct items would give counts [2, 3, 3, 2].
    np.testing.assert_array_equal(candidate_counts(TINY, TINY_KNOWN, 6, "in_batch", duplicates=True), [3, 3, 3, 3])
    _, ranks = evaluate(TINY_SCORER, TINY, TINY_KNOWN, 6, protocols="in_batch", duplicates=True, progress=False,
                        return_ranks=True)
    np.testing.assert_array_equal(ranks["in_batch"], [0, 2, 2, 0])
    chance = expected_random_metrics(TINY, TINY_KNOWN, 6, protocols="in_batch", ks=(1,), duplicates=True)
    assert chance.value.iloc[0] == pytest.approx(1 / 3)


def test_smaller_batches_mean_fewer_candidates():
    rng = np.random.default_rng(0)
    samples = frame(rng.integers(0, 30, 2000), rng.integers(0, 500, 2000))
    known = sp.csr_matrix((30, 500))
    means = [candidate_counts(samples, known, 500, "in_batch", batch_size=b).mean() for b in (100, 256, 1024)]
    assert means[0] < means[1] < means[2] <= 500 and means[0] <= 100


def test_sampled_negatives_never_include_known_positives():
    rng = np.random.default_rng(1)
    n_users, n_items = 20, 150
    known = sp.random(n_users, n_items, density=0.2, random_state=2, format="csr")
    known.data[:] = 1
    rows, cols = known.nonzero()
    samples = frame(rows[:300], cols[:300])
    pool = _sample_negatives(known, rows[:300], cols[:300], n_items, 100, rng)
    assert not (pool & (known[rows[:300]].toarray() > 0) & (np.arange(n_items)[None, :] != cols[:300, None])).any()
    assert (pool.sum(1) == 101).all() and pool[np.arange(300), cols[:300]].all()
    # the evaluator's counts: exactly the positive and 100 negatives, chance 1/101 at K=1
    np.testing.assert_array_equal(candidate_counts(samples, known, n_items, "negatives"), 101)
    chance = expected_random_metrics(samples, known, n_items, protocols="negatives", ks=(1,))
    assert chance.value.iloc[0] == pytest.approx(1 / 101)
    # known positives score 10, the rest 0: a known positive among the candidates would tie with the
    # positive and push it down under pessimistic ties
    _, ranks = evaluate(TableScorer(np.where(known.toarray() > 0, 10.0, 0.0)), samples, known, n_items,
                        protocols="negatives", ties="pessimistic", progress=False, return_ranks=True)
    np.testing.assert_array_equal(ranks["negatives"], 0)


def test_sampled_negatives_take_what_is_left():
    known = sp.csr_matrix(np.array([[1, 1, 1, 0, 0]], float))
    np.testing.assert_array_equal(candidate_counts(frame([0], [0]), known, 5, "negatives", n_negatives=100), 3)


# ------------------------------------------------------------------ exclusion
def test_exclusion_none_keeps_the_users_other_positives():
    empty = sp.csr_matrix((3, 6))
    _, ranks = evaluate(TINY_SCORER, TINY, empty, 6, protocols="full", progress=False, return_ranks=True)
    np.testing.assert_array_equal(ranks["full"], [2, 4, 4, 1])  # s0: 4, 5 above; s3: 5 above
    split = data.prepare(toy_dataset())
    assert forensics.exclusion_matrix(split, "none").nnz == 0
    assert (forensics.exclusion_matrix(split, "all") != split.known()).nnz == 0
    train_only = forensics.exclusion_matrix(split, "train")
    assert train_only.sum() == len(split.train) and train_only.multiply(split.matrix(("test",))).sum() < len(split.test)


# ------------------------------------------------------------------ splits
def test_leave_one_out_holds_exactly_the_last_positive_per_user():
    split = data.prepare(toy_dataset(), split="leave_one_out")
    s = split.samples
    counts = s.groupby("user").size()
    last = s.groupby("user").tail(1)  # samples are in global time order (ties: user, item)
    second = s.drop(last.index).groupby("user").tail(1)
    eligible = counts[counts >= 3].index
    assert set(split.test.index) == set(last[last.user.isin(eligible)].index)
    assert set(split.valid.index) == set(second[second.user.isin(eligible)].index)
    assert split.test.user.is_unique and len(split.test) == len(eligible)


def test_user_temporal_split_is_chronological_per_user():
    split = data.prepare(toy_dataset(), split="user_temporal")
    for _, g in split.samples.groupby("user"):
        order = g.part.map({"train": 0, "valid": 1, "test": 2}).to_numpy()
        assert (np.diff(order) >= 0).all()  # within a user, train then valid then test
        assert (g.part == "train").sum() == round(len(g) * 0.8)
    t = split.samples.groupby("part").timestamp.agg(["min", "max"])
    assert t.loc["train", "max"] > t.loc["test", "min"]  # unlike the global split, timelines overlap


# ------------------------------------------------------------------ sequences
def test_leaked_target_is_found_in_s_u_only_when_asked():
    ds = toy_dataset()
    clean, leaky = data.prepare(ds), data.prepare(ds, user_seq_rule="with_target")
    items = clean.samples.item.to_numpy()
    assert not (clean.user_seq == items[:, None]).any()
    np.testing.assert_array_equal(leaky.user_seq[:, 0], items)
    np.testing.assert_array_equal(leaky.user_seq[:, 1:], clean.user_seq[:, :-1])  # then the clean history
    s_i = data.prepare(ds, item_seq_rule="with_target")
    np.testing.assert_array_equal(s_i.item_seq[:, 0], clean.samples.user.to_numpy())
    np.testing.assert_array_equal(s_i.user_seq, clean.user_seq)


def test_same_second_and_static_sequences_by_hand():
    # user 0: item 10 at t=1, items 11 and 12 at t=2, item 13 at t=3 (rows in this order)
    owner, other, t = np.array([0, 0, 0, 0]), np.array([10, 11, 12, 13]), np.array([1, 2, 2, 3])
    at = data.recent_sequences(owner, other, t, 3, "at_or_before")
    np.testing.assert_array_equal(at, [[-1, -1, -1], [12, 10, -1], [11, 10, -1], [12, 11, 10]])
    static = data.recent_sequences(owner, other, t, 2, "static")
    np.testing.assert_array_equal(static, [[13, 12]] * 4)  # the future, the same for every row
    with pytest.raises(ValueError, match="sequence rule"):
        data.recent_sequences(owner, other, t, 2, "after")


def test_same_second_share():
    split = data.prepare(toy_dataset())
    s = split.samples
    brute = np.mean([((s.user == u) & (s.timestamp == t)).sum() > 1 for u, t in zip(s.user, s.timestamp)])
    assert data.same_second_share(split) == pytest.approx(brute) and 0 < brute < 1


# ------------------------------------------------------------------ training on evaluation data
def test_fit_on_all_cell_trains_on_every_part_and_has_its_own_key():
    from dqrec.experiment import run_key, split_fingerprint

    ds = toy_dataset()
    default = forensics.make_split(ds, forensics.DATA_CELLS[0], seq_len=5)
    leaky = forensics.make_split(ds, next(c for c in forensics.DATA_CELLS if c.factor == "fit on"), seq_len=5)
    assert len(leaky.train) == len(leaky.samples) and len(default.train) < len(default.samples)
    assert len(leaky.test) == len(default.test) and split_fingerprint(leaky) != split_fingerprint(default)
    assert run_key(leaky, "MostPopular", 0, {}) != run_key(default, "MostPopular", 0, {})


# ------------------------------------------------------------------ item states (random split)
def test_item_state_share_and_before_sample_states():
    from dqrec.registry import make_model

    split = data.prepare(toy_dataset(), split="random", seq_len=6)
    s, test = split.samples, split.test
    last = split.last_train_sample("item")
    brute = np.mean([u in split.item_seq[last[i]] if last[i] >= 0 else False for u, i in zip(test.user, test.item)])
    assert forensics.item_state_share(split) == pytest.approx(brute) and brute > 0
    model = make_model("DualTower", epochs=1, patience=1, progress=False, device="cpu").fit(split)
    scorer = forensics.BeforeSampleScorer(model)
    items = np.arange(split.n_items)
    rows = scorer.state_rows(test.timestamp.to_numpy(), items)
    for r, (t, u) in enumerate(zip(test.timestamp, test.user)):
        for i in items:
            before = s[(s.item == i) & (s.timestamp < t)]
            want = scorer.n_rows_ + i if before.empty else before.index.max()
            assert rows[r, i] == want
            if rows[r, i] < scorer.n_rows_:  # (u, i) pairs are unique: a state before t never holds u's (u, i)
                assert not (split.item_seq[rows[r, i]] == u).any() or i != test.item.iloc[r]
    scores = scorer.score(test.iloc[:3], items)
    assert scores.shape == (3, split.n_items) and np.isfinite(scores).all()


# ------------------------------------------------------------------ the default path is unchanged
def test_default_options_are_todays_call():
    rng = np.random.default_rng(3)
    samples = frame(rng.integers(0, 40, 500), rng.integers(0, 80, 500))
    known = sp.csr_matrix((np.ones(500), (samples.user, samples.item)), shape=(40, 80))
    scorer = TableScorer(rng.integers(0, 3, (40, 80)))
    today = evaluate(scorer, samples, known, 80, batch_size=64, seed=2, progress=False, return_ranks=True)
    spelled = evaluate(scorer, samples, known, 80, batch_size=64, seed=2, progress=False, return_ranks=True,
                       duplicates=False, ties="random", n_negatives=100)
    pd.testing.assert_frame_equal(today[0], spelled[0])
    for p in today[1]:
        np.testing.assert_array_equal(today[1][p], spelled[1][p])
    ds = toy_dataset()
    a, b = data.prepare(ds), forensics.make_split(ds, forensics.DATA_CELLS[0], seq_len=20)
    np.testing.assert_array_equal(a.user_seq, b.user_seq)
    np.testing.assert_array_equal(a.item_seq, b.item_seq)
    assert a.params == {k: v for k, v in b.params.items()} and "user_seq_rule" not in a.params


def test_run_spec_without_a_cell_has_no_forensic_settings():
    from dqrec.experiment import run_key, run_spec

    split = data.prepare(toy_dataset())
    assert "forensics" not in run_spec(split, "MostPopular", 0, {})
    cells = [forensics.cell_settings(forensics.DATA_CELLS[0], c, 0) for c in forensics.BASE_EVAL + forensics.FACTOR_EVAL]
    keys = {run_key(split, "MostPopular", 0, {}, c) for c in cells}
    assert len(keys) == len(cells) and run_key(split, "MostPopular", 0, {}) not in keys


def test_grid_caches_every_cell_and_reads_it_back(tmp_path, monkeypatch):
    ds = toy_dataset()
    cells = forensics.DATA_CELLS[:2]
    params = dict(seq_len=5, tune=False)
    first = forensics.run_grid(ds, params, models=("MostPopular",), eval_seeds=(0, 1), cache=tmp_path,
                               data_cells=cells, log=lambda *_: None)
    n_default = sum(2 if c.seeded else 1 for c in forensics.BASE_EVAL + forensics.FACTOR_EVAL)
    assert len(list(tmp_path.glob("*.csv"))) == n_default + 3  # + the other data cell's in-batch x 2 seeds, full
    assert len(first) == 6 * (n_default + 3)
    monkeypatch.setattr(forensics, "fit_model", lambda *a, **k: pytest.fail("a cached cell was refitted"))
    again = forensics.run_grid(ds, params, models=("MostPopular",), eval_seeds=(0, 1), cache=tmp_path,
                               data_cells=cells, log=lambda *_: None)
    pd.testing.assert_frame_equal(first, again, check_dtype=False)
    read, missing = forensics.read_grid(ds, params, models=("MostPopular",), eval_seeds=(0, 1), cache=tmp_path)
    assert len(read) == len(first) and len(missing) == len(forensics.DATA_CELLS) - 2
    eff = forensics.effects(first)
    default = eff[(eff.factor == "default")]
    assert np.allclose(default.ratio, 1.0)
    assert first.chance.between(0, 1).all() and (first.chance > 0).all() and (first.candidates >= 1).all()


def test_chance_table_one_row_per_cell_in_grid_order():
    """One row per (factor, level, protocol) whatever the number of models, a column per dataset, rows in
    the grid's order (default first), and each dataset's own candidates and chance level."""
    rows = []
    for dataset, scale in (("big", 10.0), ("small", 1.0)):
        for model in ("A", "B"):
            for factor, level, protocol in (("sequence", "S_u with the target", "in_batch"),
                                            ("candidates", "batch of 100", "in_batch"),
                                            ("default", forensics.DEFAULT, "full"), ("split", "random", "in_batch"),
                                            ("default", forensics.DEFAULT, "in_batch")):
                rows.append(dict(dataset=dataset, model=model, factor=factor, level=level, protocol=protocol,
                                 candidates=scale * len(level), chance=1 / (scale * len(level))))
    table = forensics.chance_table(pd.DataFrame(rows))
    assert list(table.columns) == ["factor", "level", "protocol", "candidates, big", "candidates, small",
                                   "chance, big", "chance, small"]
    assert list(zip(table.factor, table.protocol)) == [("default", "full"), ("default", "in_batch"),  # not a-z
                                                       ("split", "in_batch"), ("candidates", "in_batch"),
                                                       ("sequence", "in_batch")]
    row = table[table.factor == "split"].iloc[0]
    assert row["candidates, big"] == 60 and row["candidates, small"] == 6 and row["chance, big"] == pytest.approx(1 / 60)


def test_evaluation_spread_says_when_one_seed_cannot_measure_it():
    rows = [dict(dataset="d", model="DQRec", data_factor="default", data_level="ours", eval_factor="default",
                 eval_level="ours", protocol=p, metric="Recall", k=10, value=v, eval_seed=s, chance=0.1, candidates=10)
            for p, s, v in (("in_batch", 0, 0.20), ("in_batch", 1, 0.30), ("full", 0, 0.1))]
    two = pd.DataFrame(rows)
    assert "sd over 2 evaluation seeds of a DQRec cell is 0.0707" in forensics.evaluation_spread(two)
    one = forensics.evaluation_spread(two[two.eval_seed == 0])
    assert "1 evaluation seed " in one and "not measured" in one and "sd" not in one


def test_largest_effects_table_keeps_each_ratio_with_its_dataset_and_model():
    rows = []
    for dataset, scale in (("big", 2.0), ("small", 1.0)):
        for model, m in (("DQRec w/o Lat.", 1.0), ("EASE", 3.0)):
            for factor, level, ratio in (("split", "random", 1.5), ("ties", "optimistic", 1.1),
                                         ("candidates", "batch of 100", 4.0), ("candidates", "batch of 256", 2.0)):
                rows.append(dict(dataset=dataset, model=model, factor=factor, level=level, protocol="in_batch",
                                 ratio=ratio * scale * m))
    table = forensics.largest_effects_table(pd.DataFrame(rows), n=2)
    assert list(table.columns) == ["factor", "level", "geometric mean", "model", "big", "small"]
    assert list(table.factor) == ["candidates"] * 2 + ["split"] * 2  # strongest level of each factor, strongest first
    assert set(table.level) == {"batch of 100", "random"}
    row = table[(table.level == "batch of 100") & (table.model == "EASE")].iloc[0]
    assert (row.big, row.small) == (24.0, 12.0)


def test_collect_computes_then_reads_back_and_the_notes_say_what_is_there(tmp_path, monkeypatch):
    toys = {"toy": toy_dataset(), "toy2": toy_dataset(seed=1)}
    monkeypatch.setattr(data, "load", lambda name, **_: data.Dataset(name, *[getattr(toys[name], f) for f in
                                                                            ("ratings", "users", "items")]))
    params = dict(seq_len=5, tune=False, forensics_seeds=[0], forensics_eval_seeds={"toy": [0, 1], "toy2": [0]})
    fitted, missing, loaded = forensics.collect(["toy", "toy2"], params, ["MostPopular"], True, tmp_path)
    assert missing == {"toy": [], "toy2": []} and set(loaded) == {"toy", "toy2"}
    assert set(fitted.dataset) == {"toy", "toy2"} and set(fitted[fitted.dataset == "toy"].eval_seed) == {0, 1}
    monkeypatch.setattr(forensics, "fit_model", lambda *a, **k: pytest.fail("read back only, nothing is fitted"))
    read, missing, _ = forensics.collect(["toy", "toy2"], params, ["MostPopular"], False, tmp_path)
    assert len(read) == len(fitted) and missing == {"toy": [], "toy2": []}

    notes = forensics.grid_notes({"toy": [], "toy2": ["random (split) × EASE"]}, loaded, 5).splitlines()
    assert notes[:2] == ["- **toy**: complete", "- **toy2**: 1 (data cell × model) missing: random (split) × EASE"]
    split = data.prepare(loaded["toy2"], seq_len=5)
    assert f"{100 * data.same_second_share(split):.1f} % of the positives" in notes[3]
    assert notes[5].startswith(f"- **toy2**: {100 * forensics.cold_test_share(split):.1f} % of the test samples")

    eff = forensics.effects(fitted)
    styles = forensics.ratio_styles(eff, "in_batch", ["MostPopular"], ["toy", "absent", "toy2"], shade=True)
    assert [s.caption for s in styles] == ["toy, in-batch Recall@10 / our default", "toy2, in-batch Recall@10 / our default"]
    assert "background-color" in styles[0].to_html() and "background-color" not in forensics.ratio_styles(
        eff, "full", ["MostPopular"], ["toy"], shade=False)[0].to_html()

import json

import numpy as np
import pandas as pd

from dqrec import report
from dqrec.experiment import PROFILES, paper_table
from dqrec.findings import VERDICTS, Claim


def summary_of(means: dict, counts: dict | None = None, dataset="ml-1m", split="random", protocol="in_batch",
               sd=0.01):
    """summarise()-shaped rows: means = {model: value at Recall@5} scaled per metric."""
    rows = []
    for model, base in means.items():
        for i, label in enumerate(report.METRICS):
            metric, k = label.split("@")
            n = (counts or {}).get(model, 3)
            rows.append(dict(dataset=dataset, split=split, protocol=protocol, model=model, metric=metric, k=int(k),
                             mean=base * (1 + 0.1 * i), std=sd if n > 1 else 0.0, count=n))
    return pd.DataFrame(rows)


def test_table1_block_in_the_papers_layout():
    s = summary_of({"DQRec": 0.3, "EASE": 0.2}, counts={"EASE": 1})
    s = s.sample(frac=1, random_state=0)  # input order must not matter
    text, means = report.table1_block(s, "ml-1m", "random", "in_batch", ["DQRec", "EASE"])
    assert list(text.index) == report.METRICS  # Recall@5, @10, @20, NDCG@5, ... not alphabetical
    assert list(text.columns) == ["DQRec", "EASE"] and text.index.name is None and text.columns.name is None
    assert text.loc["Recall@5", "DQRec"] == "0.3000 ± 0.0100"
    assert text.loc["Recall@5", "EASE"] == "0.2000"  # one run: no '± 0.0000'
    html = report.render(text, means, "caption")
    assert html.count("<b>") == len(report.METRICS) + 1  # one best per row, and the caption
    # DQRec holds the row maximum, so every bold cell is a DQRec cell
    mark = report.row_best(means)
    assert mark["DQRec"].all() and not mark["EASE"].any()


def test_row_best_ignores_missing_and_marks_ties():
    m = pd.DataFrame({"a": [0.1, np.nan], "b": [0.1, 0.2]})
    assert report.row_best(m).values.tolist() == [[True, True], [False, True]]


def test_paper_beside_ours_marks_what_did_not_run():
    s = summary_of({"DQRec": 0.1, "NCF": 0.05, "BERT4Rec": 0.08})
    text, means = report.paper_beside_ours(s, paper_table("table1_overall"), "MovieLens", "ml-1m", "random")
    assert list(text.columns) == list(report.PAPER_MODELS)
    assert text.loc[("Recall@5", "paper"), "DQRec"] == "0.6204"
    assert text.loc[("Recall@5", "ours"), "DQRec"].startswith("0.1000")
    assert text.loc[("Recall@5", "ours"), "Bert4Rec"].startswith("0.0800")  # registry name BERT4Rec
    assert text.loc[("Recall@5", "ours"), "DuoRec"] == report.NOT_RUN
    assert text.loc[("Recall@5", "ours"), "LLMRec"] == "not run"
    assert np.isnan(means.loc[("Recall@5", "ours"), "DuoRec"])
    assert report.row_best(means).loc[("Recall@5", "ours")].idxmax() == "DQRec"
    groups = [m for cols in report.PAPER_GROUPS.values() for m in cols]
    assert sorted(groups) == sorted(report.PAPER_MODELS)  # the split tables show every column once


def runs_with_gap(gap: int, n=3000, seed=0):
    """{model: {seed: {protocol: ranks}}}: DQRec's ranks `gap` places above DualTower's."""
    rng = np.random.default_rng(seed)
    runs = {"DQRec": {}, "DualTower": {}}
    for s in (0, 1, 2):
        base = rng.integers(0, 40, n)
        runs["DualTower"][s] = {"in_batch": base + max(gap, 0)}
        runs["DQRec"][s] = {"in_batch": base + max(-gap, 0)}
    return runs


def claims_for(gap):
    runs = runs_with_gap(gap)
    diffs = report.differences_from_ranks(runs, "DQRec", ["DualTower"]).assign(dataset="ml-1m", split="random")
    means = {m: diffs.set_index("metric").loc["Recall@5", "mean_a" if m == "DQRec" else "mean_b"] for m in runs}
    rows = []
    for m, by_seed in runs.items():
        for label in report.METRICS:
            metric, k = label.split("@")
            from dqrec.stats import per_sample
            vals = [per_sample(r["in_batch"], metric, int(k)).mean() for r in by_seed.values()]
            rows.append(dict(dataset="ml-1m", split="random", protocol="in_batch", model=m, metric=metric, k=int(k),
                             mean=np.mean(vals), std=np.std(vals, ddof=1), count=3))
    del means
    claims = report.claims_table1(pd.DataFrame(rows), diffs, paper_table("table1_overall"), "ml-1m", ["random"],
                                  {"Books": "not available here", "Netflix": "not available here"})
    return {c.claim.split(" (")[0][:40]: c for c in claims}, claims


def test_claims_follow_the_numbers():
    ahead, all_ahead = claims_for(gap=15)
    behind, all_behind = claims_for(gap=-15)
    best = [c for c in all_ahead if c.claim.startswith("DQRec outperforms every baseline on every metric")][0]
    assert best.verdict == "reproduced"
    worst = [c for c in all_behind if c.claim.startswith("DQRec outperforms every baseline on every metric")][0]
    assert worst.verdict == "not reproduced" and "behind" in worst.ours
    aug = [c for c in all_ahead if c.claim.startswith("The augmentation")][0]
    assert aug.verdict == "reproduced"
    tie, all_tie = claims_for(gap=0)
    assert [c for c in all_tie if c.claim.startswith("The augmentation")][0].verdict == "not reproduced"
    recall_gain = [c for c in all_behind if c.claim.startswith("DQRec's improvement is larger in Recall")][0]
    assert recall_gain.verdict == "not reproduced"  # behind everywhere: no gain to compare, whatever the sizes
    magnitude = [c for c in all_ahead if "reaches Recall@5" in c.claim][0]
    assert magnitude.verdict == "not reproduced"  # ours are far below 0.62
    assert {c.verdict for c in all_ahead} <= set(VERDICTS)
    assert sum(c.verdict == "not testable here" for c in all_ahead) >= 2  # Books, Netflix (and unrun baselines)


def test_verdict_markdown_counts_and_links():
    claims = report.claims_frame([Claim("Table 3", "w/o User hurts", "−1%", "reproduced", "why", "05_ablations"),
                                  Claim("Fig. 3", "J=128 best", "J=16 best", "not reproduced", "why", "06_sensitivity"),
                                  Claim("Table 1", "Books", "no data", "not testable here", "why", "")])
    md = report.verdict_summary(claims, prefix="notebooks/")
    assert "1 reproduced, 1 not reproduced, 1 not testable here" in md
    assert "[Ablations (Table 3)](notebooks/05_ablations.ipynb)" in md  # the chapter's title
    assert md.count("\n| ") == 5  # header, rule, 3 claims
    details = report.verdict_details(claims)
    assert details.count("### ") == 3 and "*not reproduced*" in details


def test_collect_claims_reports_a_failing_chapter(monkeypatch, tmp_path):
    from dqrec import findings

    def claims_broken(results_dir):
        raise FileNotFoundError("table3.csv")

    def claims_fine():
        return [Claim("Fig. 4", "c", "o", "reproduced", "w", "07_case_study")]

    monkeypatch.setattr(findings, "claims_zz_broken", claims_broken, raising=False)
    monkeypatch.setattr(findings, "claims_zz_fine", claims_fine, raising=False)
    claims_broken.__module__ = claims_fine.__module__ = findings.__name__
    got = report.collect_claims(tmp_path, [Claim("Table 1", "x", "y", "partly reproduced", "z", "04_table1")])
    assert got[0].section == "Table 1"
    broken = [c for c in got if "claims_zz_broken" in c.claim]
    assert broken and broken[0].verdict == "not testable here" and "table3.csv" in broken[0].why
    assert any(c.section == "Fig. 4" for c in got)


def test_hyperparameters_beside_each_profile():
    from dqrec.registry import make_model

    profiles = dict(PROFILES, other=dict(PROFILES["paper"], k=5))
    table = report.hyperparameter_deviations(profiles, paper_table("hyperparameters"), make_model("DQRec").get_params())
    by = table.set_index("setting")
    assert by.loc["learning_rate", report.PAPER_COLUMN] == "1e-3"
    assert (by["paper"] == "as paper").all(), by["paper"]  # the paper profile keeps every stated setting
    assert by.loc["K", "other"] == "5" and (by.drop(index="K")["other"] == "as paper").all()
    wrong_lr = report.hyperparameter_deviations(PROFILES, paper_table("hyperparameters"),
                                                dict(make_model("DQRec").get_params(), lr=0.01)).set_index("setting")
    assert wrong_lr.loc["learning_rate", "paper"] == "0.01"
    scope = report.profile_scope(PROFILES)
    assert scope.loc["Fig. 3 data / seeds", "paper"].startswith(PROFILES["paper"]["sensitivity_dataset"])


def test_run_provenance_lists_commits_seeds_epochs():
    rows = pd.DataFrame(dict(dataset="d", split="s", model=["A", "A", "B"], seed=[0, 1, 0],
                             epochs_run=[12, 15, 3], git_sha=["abcdef123456", "0123456789ab", "abcdef123456"]))
    prov = report.run_provenance(rows).set_index("model")
    assert prov.loc["A", "seeds"] == "0, 1" and prov.loc["A", "epochs"] == "12, 15"
    assert prov.loc["A", "commits"] == "01234567, abcdef12" and prov.loc["B", "commits"] == "abcdef12"
    no_epochs = report.run_provenance(rows.drop(columns="epochs_run"))
    assert (no_epochs.epochs == "not recorded").all()


def test_run_provenance_names_only_the_splits_its_own_runs_saw(tmp_path):
    import json

    for name, spec in {"a0": dict(model="A", seed=0, data="split1"), "a1": dict(model="A", seed=1, data="split1"),
                       "b0": dict(model="B", seed=0, data="split2"),  # another model: never A's
                       "a0f": dict(model="A", seed=0, data="forensic", forensics={"split": "per_user"}),
                       "a5": dict(model="A", seed=5, data="other-seed"),
                       "x": dict(model="A", seed=0, data="elsewhere", dataset="e")}.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(dict(dict(dataset="d", split="s"), **spec)))
    rows = pd.DataFrame(dict(dataset="d", split="s", model=["A", "A", "B"], seed=[0, 1, 0], epochs_run=1,
                             git_sha="abcdef123456"))
    prov = report.run_provenance(rows, tmp_path).set_index("model")
    assert prov.loc["A", "data"] == "split1" and prov.loc["B", "data"] == "split2"


def test_merge_claims_combines_splits():
    c = lambda v, ours: Claim("Table 1", "X beats Y", ours, v, "why", "04_table1")
    [one] = report.merge_claims([c("reproduced", "random: yes"), c("not reproduced", "temporal: no")])
    assert one.verdict == "partly reproduced" and one.ours == "random: yes temporal: no"
    [none] = report.merge_claims([c("not reproduced", "a"), c("not reproduced", "b")])
    assert none.verdict == "not reproduced"
    assert len(report.merge_claims([c("reproduced", "a"), Claim("Table 3", "other", "o", "reproduced", "w", "")])) == 2


def test_profile_deviations_name_what_differs_from_the_paper():
    dev = report.profile_deviations(PROFILES).set_index(["profile", "item"])
    assert dev.loc[("paper", "Table 1 data sets"), "kind"] == "deviation"  # no Books, no Netflix
    assert "MovieLens" in dev.loc[("paper", "Table 1 data sets"), "ours"]
    fig3 = dev.loc[("paper", "Fig. 3 data set")]
    assert fig3.kind == ("as paper" if PROFILES["paper"]["sensitivity_dataset"] == "ml-1m" else "deviation")
    assert dev.loc[("paper", "epochs / early stopping"), "kind"] == "paper silent: our choice"
    same = dict(PROFILES["paper"], datasets=["ml-1m", "amazon-books-2023", "netflix"])
    assert report.profile_deviations({"x": same}).set_index("item").loc["Table 1 data sets", "kind"] == "as paper"


def test_profile_departures_split_one_profiles_rows_by_kind():
    dev = report.profile_deviations(PROFILES)
    html = report.profile_departures(dev, "paper")
    departs, silent = html.split("chooses where the paper is silent")
    paper = dev[dev.profile == "paper"]
    for item in paper[paper.kind == "deviation"].item:
        assert item in departs and item not in silent
    for item in paper[paper.kind == "paper silent: our choice"].item:
        assert item in silent and item not in departs
    assert PROFILES["test"]["epochs"] != PROFILES["paper"]["epochs"]  # another profile's rows stay out
    assert f"at most {PROFILES['test']['epochs']} epochs" not in html


def test_column_chunks_cover_every_column_once():
    cols = [f"m{i}" for i in range(14)]
    chunks = report.column_chunks(cols, 6)
    assert [len(c) for c in chunks] == [6, 6, 2] and sum(chunks, []) == cols


def test_evidence_links_only_to_chapters_in_the_build():
    assert report.evidence_link("05_ablations", "notebooks/") == "[Ablations (Table 3)](notebooks/05_ablations.ipynb)"
    assert report.evidence_link("05_ablations", chapters={"04_table1"}) == "Ablations (Table 3) (not in this build)"
    assert report.evidence_link("") == ""


def test_family_order_claim_follows_each_block():
    paper = paper_table("table1_overall")
    seq_ahead = summary_of({"SASRec": 0.20, "LightGCN": 0.04, "DQRec": 0.10}, dataset="ml-100k", split="temporal")
    graph_ahead = summary_of({"SASRec": 0.03, "NGCF": 0.05}, dataset="ml-1m", split="temporal")
    only_graph = summary_of({"LightGCN": 0.04, "DQRec": 0.10}, dataset="ml-1m", split="random")
    c = report.claim_family_order(seq_ahead, paper)
    assert c.verdict == "reproduced" and "SASRec 0.2" in c.ours and "LightGCN 0.0" in c.ours and "DQRec" in c.ours
    assert "DuoRec" in c.claim  # the paper's best sequential baseline on MovieLens, read from its table
    assert report.claim_family_order(pd.concat([seq_ahead, graph_ahead]), paper).verdict == "partly reproduced"
    assert report.claim_family_order(graph_ahead, paper).verdict == "not reproduced"
    assert report.claim_family_order(only_graph, paper).verdict == "not testable here"


def test_plain_tables_read_as_numbers_not_float_artefacts():
    import re

    frame = pd.DataFrame({"distinct_ids": [205587.0, 31.0], "collision_rate": [0.864920, 0.5], "user": [1434, 7]},
                         index=["user side", "item side"])
    cells = re.findall(r">([^<>]+)</t[dh]>", report.plain(frame, index="side"))
    assert cells[:4] == ["side", "distinct ids", "collision rate", "user"]  # words, the index as a named column
    assert "205,587" in cells and "205587.0" not in cells and "2.056e+05" not in cells
    assert "0.8649" in cells and "1434" in cells  # 4 significant digits; ids without separators


def test_reference_comparison_pairs_ours_with_recbole(tmp_path):
    import json

    assert report.reference_comparison(tmp_path).empty  # nothing run: nothing shown
    rows = [dict(side=side, model="LightGCN", implementation="LightGCN", seed=s, **{
        "Recall@10_full": r, "NDCG@10_full": r / 2, "Recall@10_full_warm_users": 2 * r, "cold_user_share": 0.85,
        "epochs_run": 10}) for side, r in (("dqrec", 0.02), ("RecBole 1.2.1", 0.04)) for s in (0, 1)]
    pd.DataFrame(rows).to_csv(tmp_path / "recbole_comparison.csv", index=False)
    (tmp_path / "bench").mkdir()
    seq = dict(model="SASRec", max_epochs=200, ours=dict(epochs_run=22, train_on="sequences", test_with_history={
        "Recall@10": 0.18, "NDCG@10": 0.09, "n_samples": 5376}), recbole=dict(epochs_run=17, test_with_history={
            "Recall@10": 0.15, "NDCG@10": 0.08, "n_samples": 5376}))
    longer = dict(seq, recbole=dict(seq["recbole"], epochs_run=60, patience=20, test_with_history={
        "Recall@10": 0.2, "NDCG@10": 0.1, "n_samples": 5376}))
    (tmp_path / "bench" / "recbole_sequential.json").write_text(json.dumps({
        "ml-100k/temporal/SASRec/s0": seq, "ml-100k/temporal/SASRec/s0/recbole-patience20": longer}))
    t = report.reference_comparison(tmp_path)
    assert list(t.model) == ["LightGCN", "LightGCN", "SASRec", "SASRec"] and t.attrs["cold_user_share"] == 0.85
    assert t["ratio"].round(3).tolist() == [0.5, 0.5, 1.2, 0.9]  # ours / RecBole, never the other way
    assert t.loc[0, "seeds"] == "2 / 2" and t.loc[2, "epochs"] == "22 / 17"
    assert t.loc[2, "trained on"] == "sequences / prefixes"
    assert t.patience.tolist()[2:] == ["5 / 5", "5 / 20"]  # an entry without the field ran with patience 5
    text = report.reference_gaps(t)
    assert "SASRec (with history (5,376), trained on sequences / prefixes, patience 5 / 20): 0.90x" in text
    assert "SASRec (with history (5,376), trained on sequences / prefixes): 1.20x" in text
    said = report.reference_patience(tmp_path)
    assert "seed 0): with patience (ours / RecBole) 5 / 20 instead of 5 / 5" in said
    assert "RecBole's Recall@10 is 0.2000 against 0.1500" in said and "0.90x against 1.20x" in said
    assert "(epochs run, ours / RecBole: 22 / 60 against 22 / 17)" in said
    assert said.endswith("the longer patience moves RecBole's number.")
    path = tmp_path / "bench" / "recbole_sequential.json"
    same = dict(longer, recbole=dict(longer["recbole"], test_with_history=seq["recbole"]["test_with_history"]))
    path.write_text(json.dumps({"ml-100k/temporal/SASRec/s0": seq, "ml-100k/temporal/SASRec/s0/recbole-patience20": same}))
    assert report.reference_patience(tmp_path).endswith("its early stop is not what separates the two.")
    other_seed = dict(seq, seed=1, recbole=dict(seq["recbole"], test_with_history=dict(
        seq["recbole"]["test_with_history"], **{"Recall@10": 0.1})))  # a second seed at patience 5: not compared
    path.write_text(json.dumps({"ml-100k/temporal/SASRec/s1": other_seed, "ml-100k/temporal/SASRec/s0": seq,
                                "ml-100k/temporal/SASRec/s0/recbole-patience20": same}))
    said = report.reference_patience(tmp_path)
    assert "0.1500 against 0.1500" in said and "seed 1" not in said  # seed 0 against seed 0, not the mean
    path.write_text(json.dumps({"ml-100k/temporal/SASRec/s0": seq}))
    assert report.reference_patience(tmp_path) == ""  # one patience per model: nothing to say
    assert report.reference_seed_noise(tmp_path) == ""  # one seed each: no noise to size


def test_reference_seeds_are_averaged_and_their_spread_sized(tmp_path):
    import json

    (tmp_path / "bench").mkdir()
    side = lambda r, e: dict(epochs_run=e, train_on="prefixes", test_with_history={  # noqa: E731
        "Recall@10": r, "NDCG@10": r / 2, "n_samples": 5376})
    pair = lambda seed, ours, theirs: dict(model="SASRec", dataset="ml-100k", split="temporal", seed=seed,  # noqa: E731
                                           max_epochs=200, ours=side(ours, 50), recbole=side(theirs, 20))
    entries = {"s0": pair(0, 0.20, 0.16), "s1": pair(1, 0.18, 0.14), "smoke": dict(pair(2, 0.1, 0.3), max_epochs=1)}
    (tmp_path / "bench" / "recbole_sequential.json").write_text(json.dumps(entries))
    t = report.reference_comparison(tmp_path)
    assert t.seeds.tolist() == ["2 / 2", "1 / 1"] and t.epochs.tolist() == ["50 / 20", "50 / 20 (capped)"]
    assert t["Recall@10 ours"].round(4).tolist() == [0.19, 0.1] and t["Recall@10 RecBole"].round(4).tolist()[0] == 0.15
    said = report.reference_seed_noise(tmp_path)  # gap 0.04, spreads 0.02 and 0.02; the smoke check is left out
    assert "seeds 0 and 1: ours' Recall@10 0.2000, 0.1800 (spread 0.0200), RecBole's 0.1600, 0.1400" in said
    assert said.endswith("+0.0400, is 2.0 times the larger spread: outside the seed noise these seeds show.")
    entries["s2"] = pair(2, 0.15, 0.155)  # ours now spreads by 0.05 > the gap
    (tmp_path / "bench" / "recbole_sequential.json").write_text(json.dumps(entries))
    said = report.reference_seed_noise(tmp_path)
    assert "seeds 0, 1 and 2" in said and said.endswith("inside the seed noise.")


def test_sasrec_variants_sit_between_ours_and_recbole_with_the_gap_they_close(tmp_path):
    import json

    assert report.sasrec_variants(tmp_path).empty  # no variant run: nothing shown
    (tmp_path / "bench").mkdir()
    side = lambda r, e: dict(epochs_run=e, best_epoch=e - 5,  # noqa: E731
                             test_with_history={"Recall@10": r, "NDCG@10": r / 2, "n_samples": 5376})
    (tmp_path / "bench" / "recbole_sequential.json").write_text(json.dumps({
        "ml-100k/temporal/SASRec/s0/ours-prefixes": dict(model="SASRec", dataset="ml-100k", split="temporal", seed=0,
                                                         ours=side(0.20, 53), recbole=side(0.16, 17))}))
    off = dict.fromkeys(report.SASREC_SWITCHES, False)
    variant = lambda r, **on: dict(dataset="ml-100k", split="temporal", seed=0, switches=dict(off, **on),  # noqa: E731
                                   test_with_history={"Recall@10": r, "NDCG@10": r / 2}, epochs_run=20, best_epoch=15)
    (tmp_path / "sasrec_variants.json").write_text(json.dumps({
        "all": variant(0.17, post_ln=True, bpr=True, start_positions=True, select_full=True),
        "bpr": variant(0.19, bpr=True)}))
    t = report.sasrec_variants(tmp_path)
    assert t.run.tolist() == ["ours (SASRec's choices)", "ours + 4 choices", "ours + BPR",
                              "RecBole 1.2.1"]
    assert t[report.CHOICES].tolist() == ["", "post-LN, BPR, positions, selection", "BPR", ""]
    assert t["Recall@10"].tolist() == [0.20, 0.17, 0.19, 0.16] and t.epochs.tolist()[0] == "53 (48)"
    said = report.sasrec_variants_summary(t)
    assert "reaches Recall@10 0.2000 and RecBole's 0.1600" in said
    assert "positions from the oldest item and full-ranking selection together give 0.1700 (75% of the gap closed)" in said
    assert "; BPR loss gives 0.1900 (25% of the gap closed)." in said
    assert "With the most choices switched on, 25% of the gap remains" in said and "one seed" in said
    pairs = json.loads((tmp_path / "bench" / "recbole_sequential.json").read_text())
    pairs["ml-100k/temporal/SASRec/s1/ours-prefixes"] = dict(pairs["ml-100k/temporal/SASRec/s0/ours-prefixes"], seed=1,
                                                             ours=side(0.19, 40), recbole=side(0.155, 20))
    (tmp_path / "bench" / "recbole_sequential.json").write_text(json.dumps(pairs))
    t = report.sasrec_variants(tmp_path)
    assert t["Recall@10"].tolist() == [0.20, 0.17, 0.19, 0.16]  # the variants' seed: another seed adds no row
    said = report.sasrec_variants_summary(t)  # 0.01 remains; seeds spread by 0.01 and 0.005
    assert "spreads by 0.0100 and RecBole's by 0.0050, so what remains is inside the seed noise." in said
    pairs["ml-100k/temporal/SASRec/s1/ours-prefixes"]["ours"] = side(0.205, 40)  # spreads 0.005: 0.01 is outside
    (tmp_path / "bench" / "recbole_sequential.json").write_text(json.dumps(pairs))
    said = report.sasrec_variants_summary(report.sasrec_variants(tmp_path))
    assert "Over seeds 0 and 1 ours' Recall@10 spreads by 0.0050" in said and "larger than the seed noise" in said
    runs = json.loads((tmp_path / "sasrec_variants.json").read_text())
    runs["all-s1"] = dict(runs["all"], seed=1, test_with_history={"Recall@10": 0.162, "NDCG@10": 0.08})
    runs["bpr-s2"] = dict(runs["bpr"], seed=2)  # seed 2 has only a variant with fewer choices: not in the mean
    pairs["ml-100k/temporal/SASRec/s2/ours-prefixes"] = dict(pairs["ml-100k/temporal/SASRec/s1/ours-prefixes"], seed=2,
                                                             ours=side(0.21, 40), recbole=side(0.15, 20))
    (tmp_path / "bench" / "recbole_sequential.json").write_text(json.dumps(pairs))
    (tmp_path / "sasrec_variants.json").write_text(json.dumps(runs))
    t = report.sasrec_variants(tmp_path)  # the most-switched variant on seeds 0, 1: its mean against the means
    assert (t.seed == 1).sum() == 3 and len(t) == 10 and set(t.data) == {"ml-100k temporal"}
    said = report.sasrec_variants_summary(t)
    assert "On ml-100k temporal s1, our SASRec on prefixes reaches Recall@10 0.2050 and RecBole's 0.1550" in said
    assert ("Over seeds 0 and 1 on ml-100k temporal, ours averages 0.2025, RecBole's 0.1575 and ours with the most "
            "choices switched on 0.1660: 19% of the mean gap remains (0.0085 of Recall@10)") in said
    assert said.endswith("0.0050 (ours), 0.0050 (RecBole's) and 0.0080 (that variant), so what remains is 1.1 times "
                         "the largest spread: not in these choices, nor explained yet.")
    runs["all-s1"]["test_with_history"]["Recall@10"] = 0.15  # the variant now spreads by 0.02 > 0.0025 left
    (tmp_path / "sasrec_variants.json").write_text(json.dumps(runs))
    said = report.sasrec_variants_summary(report.sasrec_variants(tmp_path))
    assert said.endswith("0.0200 (that variant), so what remains is inside the seed noise.")


def test_reference_gaps_sorts_rows_by_the_tolerance_around_ratio_one():
    assert report.reference_gaps(pd.DataFrame()) == ""
    t = pd.DataFrame([dict(model="LightGCN", samples="all", ratio=0.5, epochs="10 / 10"),
                      dict(model="SASRec", samples="with history", ratio=1.05, epochs="18 / 17", **{"trained on": "sequences / prefixes"}),
                      dict(model="BERT4Rec", samples="with history", ratio=1.2, epochs="1 / 1 (capped)")])
    text = report.reference_gaps(t, tolerance=0.1)
    near, far = text.split("more than")
    assert "SASRec (with history, trained on sequences / prefixes): 1.05x" in near and "LightGCN" not in near
    assert "LightGCN (all): 0.50x" in far and "BERT4Rec (with history) (capped): 1.20x" in far
    tight = report.reference_gaps(t, tolerance=0.01)
    assert tight.startswith("More than 1% apart for") and "SASRec" in tight and "within" not in tight


def test_reference_speed_reads_the_ratios_timed_in_one_run(tmp_path):
    import json

    assert report.reference_speed(tmp_path).empty
    machine = dict(load_average_1min=1.9, torch_threads=1)
    rows = [dict(model="LightGCN", reference="RecBole LightGCN", dataset="ml-100k", split="temporal", ours_seconds=2.0,
                 reference_seconds=4.0, ratio=0.5, git_sha="abcdef0123", machine=machine),
            dict(model="SASRec", reference="RecBole SASRec", dataset="ml-100k", split="temporal", ours_train_on="prefixes",
                 reference_train_on="prefixes", ours_seconds=90.0, reference_seconds=60.0, ratio=1.5, git_sha="abc",
                 machine=machine)]
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "baselines.json").write_text(json.dumps({"epochs": [], "ratios_vs_recbole": rows}))
    t = report.reference_speed(tmp_path)
    assert t["s/epoch ours"].tolist() == [2.0, 90.0] and t["s/epoch RecBole"].tolist() == [4.0, 60.0]
    assert t["ratio"].tolist() == [0.5, 1.5] and t["trained on"].tolist() == ["", "prefixes / prefixes"]
    assert t.loc[0, "commit"] == "abcdef0" and t.loc[0, "load (1 min)"] == 1.9


def test_epoch_speed_says_whether_the_floor_rules_the_target_out(tmp_path):
    import json

    assert report.epoch_speed(tmp_path).empty
    (tmp_path / "bench").mkdir()

    def epoch(total, floor, optimizer, validation):
        steps = dict(data_seconds=1.0, forward_seconds=1.0, backward_seconds=1.0, optimizer_seconds=optimizer,
                     validation_seconds=validation)
        return dict(median_total_seconds=total, median_steps=steps, target_seconds=5.0, torch_threads=2,
                    git_sha="abcdef123", dense_floor=dict(epoch_seconds=floor, gemm_bound=dict(epoch_seconds=1.0),
                                                          floor_plus_optimizer_and_validation_seconds=floor + optimizer + validation))

    (tmp_path / "bench" / "dqrec.json").write_text(json.dumps({"epoch": {"fp32": epoch(10.0, 4.5, 0.4, 0.6),
                                                                         "bf16": epoch(4.8, 2.0, 0.4, 0.6)}}))
    speed = report.epoch_speed(tmp_path)
    assert list(speed.precision) == ["fp32", "bf16"] and list(speed["epoch s"]) == [10.0, 4.8]
    assert list(speed["floor + optimizer + validation s"]) == [5.5, 3.0]
    fp32, bf16 = report.epoch_speed_summary(speed).split(" In bf16")
    assert "misses the 5 s target" in fp32 and "free data step" in fp32
    assert "meets the 5 s target" in bf16 and "not ruled out" in bf16
    by_step = report.epoch_speed_by_step(speed).set_index("seconds")
    assert list(by_step.columns) == ["fp32", "bf16"] and by_step.loc["epoch s"].tolist() == ["10.0", "4.8"]


def test_plain_wraps_only_the_columns_asked_for():
    import re

    frame = pd.DataFrame({"model": ["SASRec"], "long_text": ["dim=64, max_len=50, n_blocks=2, n_heads=1"]})
    wrapped = re.findall(r"#T_\w+ td\.(col\d+) \{\s*overflow-wrap: anywhere", report.plain(frame, wrap=["long_text"]))
    assert wrapped == ["col1"]  # the long text column only, by a rule that outranks the table's "td"
    assert not re.findall(r"td\.col\d+", report.plain(frame))


def test_rank_claims_fall_back_to_the_data_sets_where_the_model_ran():
    """NCF has no ML-1M run: its claim is tested on ML-100K, follows NCF's rank there, and says so."""
    def rows(dataset, scores):
        return [dict(dataset=dataset, split="random", protocol="in_batch", model=m, metric=label.split("@")[0],
                     k=int(label.split("@")[1]), mean=v, std=0.0, count=1)
                for m, v in scores.items() for label in report.METRICS]

    def ncf_claim(ncf_score):
        summary = pd.DataFrame(rows("ml-1m", {"DQRec": 0.3, "DualTower": 0.2, "EASE": 0.25})
                               + rows("ml-100k", {"DQRec": 0.3, "DualTower": 0.2, "EASE": 0.25, "NCF": ncf_score}))
        claims = report.claims_table1(summary, pd.DataFrame(), paper_table("table1_overall"), "ml-1m", ["random"],
                                      {"Books": "not available here", "Netflix": "not available here"})
        return [c for c in claims if c.claim.startswith("NCF")]

    [low], [high] = ncf_claim(0.1), ncf_claim(0.5)
    assert low.verdict == "reproduced" and "ml-100k" in low.ours and "no ml-1m run" in low.why
    assert high.verdict == "not reproduced"
    summary = pd.DataFrame(rows("ml-1m", {"DQRec": 0.3, "DualTower": 0.2}))
    claims = report.claims_table1(summary, pd.DataFrame(), paper_table("table1_overall"), "ml-1m", ["random"], {})
    assert [c.verdict for c in claims if c.claim.startswith("Semantic-ID")] == ["not testable here"]


def test_main_claim_is_also_tested_where_the_papers_baselines_ran():
    def rows(dataset, scores):
        return [dict(dataset=dataset, split="random", protocol="in_batch", model=m, metric=label.split("@")[0],
                     k=int(label.split("@")[1]), mean=v, std=0.0, count=1)
                for m, v in scores.items() for label in report.METRICS]

    def claim(dqrec):
        summary = pd.DataFrame(rows("ml-1m", {"DQRec": 0.3, "EASE": 0.25})
                               + rows("ml-100k", {"DQRec": dqrec, "EASE": 0.25, "SASRec": 0.28, "BERT4Rec": 0.29}))
        return report.claim_best_elsewhere(summary, "ml-1m")

    assert claim(0.35).verdict == "reproduced"
    behind = claim(0.2)
    assert behind.verdict == "not reproduced" and "BERT4Rec 0.2900" in behind.ours and "ml-100k" in behind.claim
    assert report.claim_best_elsewhere(pd.DataFrame(rows("ml-100k", {"DQRec": 0.3, "EASE": 0.2})), "ml-1m") is None


def test_rekey_log_names_the_models_each_change_carried(tmp_path):
    """A failed check shows its difference and carries nothing; the models a change carried (read from the
    re-keyed runs) show on each of its checks; no log, no rows."""
    from dqrec import report

    assert report.rekey_log(tmp_path).empty
    (tmp_path / "runs").mkdir()
    for name, model in (("a_MF", "MF-BPR"), ("b_MF", "MF-BPR"), ("c_DQ", "DQRec w/o Lat.")):
        (tmp_path / "runs" / f"{name}.json").write_text(json.dumps({"model": model}))
    check = dict(date="2026-12-04", git_sha="0123456789ab", rev="x", seconds=1.0)
    log = [dict(check, **{"from": "m0", "to": "m1", "recomputed": "a_old.json", "agrees": False,
                          "difference": "per-sample ranks differ", "renamed": []}),
           dict(check, **{"from": "m0", "to": "m1", "recomputed": "a_old.json", "agrees": True, "difference": None,
                          "renamed": ["a_MF", "b_MF"]}),
           dict(check, **{"from": "d0", "to": "d1", "recomputed": "c_old.json", "agrees": True, "difference": None,
                          "renamed": ["c_DQ"]})]
    (tmp_path / "rekey.json").write_text(json.dumps(log))
    table = report.rekey_log(tmp_path)
    assert table["models"].tolist() == ["MF-BPR", "MF-BPR", "DQRec w/o Lat."]
    assert table["agrees"].tolist() == ["no: per-sample ranks differ", "yes", "yes"]
    assert table["runs re-keyed"].tolist() == [0, 2, 1] and table["run recomputed"][0] == "a_old"


def test_merged_claims_say_each_reason_once():
    """The parts of a claim (one per split) share their general reasons: the merged claim says each once."""
    from dqrec.report import Claim, merge_claims

    parts = [Claim("Table 1", "c", "ours a.", "not reproduced", "Judged by intervals. On the temporal split 10 ran.", "e"),
             Claim("Table 1", "c", "ours b.", "not reproduced", "Judged by intervals. On the random split 11 ran.", "e")]
    (merged,) = merge_claims(parts)
    assert merged.why == "Judged by intervals. On the temporal split 10 ran. On the random split 11 ran."


def test_baseline_order_claim_counts_pairs_in_the_papers_order():
    paper = paper_table("table1_overall")  # MovieLens Recall@10: NCF < NGCF < LightGCN < SimRec < HCCF
    same = summary_of({"NCF": 0.01, "NGCF": 0.02, "LightGCN": 0.03, "HCCF": 0.05}, dataset="ml-100k", split="temporal")
    c = report.claim_baseline_order(same, paper)
    assert c.verdict == "reproduced" and "6 of 6 pairs" in c.ours
    assert c.claim.index("NCF") < c.claim.index("NGCF") < c.claim.index("LightGCN") < c.claim.index("HCCF")
    flipped = summary_of({"NCF": 0.05, "NGCF": 0.04, "LightGCN": 0.03}, dataset="ml-1m", split="random")
    assert report.claim_baseline_order(flipped, paper).verdict == "not reproduced"
    both = report.claim_baseline_order(pd.concat([same, flipped]), paper)
    assert both.verdict == "partly reproduced" and "6 of 9 pairs" in both.why  # 6 + 0 of 6 + 3
    one = summary_of({"NCF": 0.05, "SASRec": 0.2}, dataset="ml-1m", split="temporal")
    assert report.claim_baseline_order(one, paper).verdict == "not testable here"


def test_coverage_summary_counts_runs_and_names_what_has_none():
    cov = pd.DataFrame(dict(model=["DQRec", "DQRec", "DuoRec", "DuoRec", "NGCF", "NGCF"],
                            dataset=["ml-1m", "ml-100k"] * 3, split="temporal",
                            done=[3, 3, 0, 0, 1, 0], planned=[3, 3, 3, 3, 3, 3]))
    text = report.coverage_summary(cov)
    assert "7 of the 18 runs planned" in text and "(39%)" in text
    assert "No run yet: DuoRec." in text and "NGCF (1 of 2)" in text and "DQRec (" not in text
    full = report.coverage_summary(cov.assign(done=cov.planned))
    assert "18 of the 18" in full and "No run yet" not in full and "missing" not in full.lower()


def test_why_not_run_names_the_reason_a_paper_data_set_has_no_runs(tmp_path, monkeypatch):
    from dqrec import data

    monkeypatch.setenv("DQREC_DATA_DIR", str(tmp_path / "mirror"))  # an empty mirror and cache: nothing loads
    monkeypatch.setenv("DQREC_CACHE_DIR", str(tmp_path / "cache"))
    assert report.why_not_run("Netflix", ["ml-1m"]).startswith("not in the data mirror or the download cache (")

    loaded = []
    monkeypatch.setattr(data, "load", lambda name, download=True: loaded.append((name, download)))
    assert report.why_not_run("MovieLens", ["ml-1m", "ml-100k"]) == ""
    assert "not among this profile's data sets ['ml-100k']" in report.why_not_run("MovieLens", ["ml-100k"])
    assert loaded == [("ml-1m", False), ("ml-1m", False)]  # the paper's MovieLens is our ml-1m, never downloaded


def test_table1_html_cuts_wide_blocks_and_marks_each_whole_row():
    models = [f"M{i}" for i in range(8)]  # 8 models: a block of 6 and one of 2
    s = pd.concat([summary_of({m: 0.1 + 0.01 * i for i, m in enumerate(models)}, protocol=p)
                   for p in ("in_batch", "full")], ignore_index=True)
    tables = report.table1_html(s, "ml-1m", ["random"], models)
    assert len(tables) == 4 and "ml-1m, random split, in_batch protocol" in tables[0]
    assert "full protocol" in tables[2] and "M7" in tables[1] and "M7" not in tables[0]
    assert "<b>0." not in tables[0] and tables[1].count("<b>0.") == len(report.METRICS)  # M7 holds each row's best

    beside = report.paper_beside_ours_html(summary_of({"DQRec": 0.1}), paper_table("table1_overall"), "ml-1m", "random")
    assert len(beside) == len(report.PAPER_GROUPS)
    assert all(f"{g}: paper (MovieLens) and ours (ml-1m, random split, in-batch)" in t
               for g, t in zip(report.PAPER_GROUPS, beside))


def test_differences_by_split_prepares_each_split_kind(monkeypatch):
    from dqrec import data

    monkeypatch.setattr(data, "load", lambda name: f"{name} data")
    monkeypatch.setattr(data, "prepare", lambda ds, split, seq_len, seed: (ds, split, seq_len, seed))
    calls = []
    monkeypatch.setattr(report, "differences", lambda cache, split, params, a, others, seeds: calls.append(
        (split, a, tuple(others), seeds)) or pd.DataFrame({"split": [split[1]]}))
    out = report.differences_by_split("cache", "ml-1m", ["temporal", "random"], {"seq_len": 20}, "DQRec", ["EASE"], [0, 1])
    assert out.split.tolist() == ["temporal", "random"]
    assert calls == [(("ml-1m data", "temporal", 20, 0), "DQRec", ("EASE",), [0, 1]),
                     (("ml-1m data", "random", 20, 0), "DQRec", ("EASE",), [0, 1])]


def test_runs_behind_tables_only_for_tables_of_model_runs(tmp_path):
    (tmp_path / "runs").mkdir()
    pd.DataFrame(dict(dataset="d", split="s", model=["A"], seed=[0], epochs_run=[3], git_sha=["abcdef123"])).to_csv(
        tmp_path / "table1.csv", index=False)
    pd.DataFrame(dict(side=["user"], value=[1.0])).to_csv(tmp_path / "dqvae_groups.csv", index=False)
    behind = report.runs_behind_tables(tmp_path, ["dqvae_groups", "table1"])
    assert list(behind) == ["table1"] and behind["table1"].loc[0, "epochs"] == "3"


def test_model_notes_name_vqrecs_text_encoder_and_llmrecs_reason():
    from dqrec.registry import make_model

    notes = report.model_notes(["DQRec", "VQRec", "LLMRec", "VQRec"]).splitlines()
    assert len(notes) == 2 and notes[0].startswith("- **VQRec**: ") and notes[1].startswith("- **LLMRec**: not run")
    assert make_model("VQRec").text_encoder == "tfidf-svd" and "TF-IDF + truncated SVD" in notes[0]
    assert report.model_notes(["DQRec"]) == ""
    claims = pd.DataFrame(dict(claim=["VQRec is ahead", "DQRec beats LLMRec"], why=["SASRec-like", "x"]))
    assert report.models_named(claims) == ["DQRec", "VQRec", "LLMRec"]  # "SASRec-like" names no model


def test_verdict_summary_says_how_the_models_it_names_ran():
    claims = pd.DataFrame(dict(section="Table 1", claim=["VQRec is ahead of the other baselines", "DQRec wins"],
                               verdict="not reproduced", evidence="04_table1"))
    text = report.verdict_summary(claims)
    assert text.index("| Table 1 | VQRec is ahead") < text.index("- **VQRec**: its item codes come from an offline")
    assert "How some of the models" not in report.verdict_summary(claims.iloc[1:])  # DQRec needs no note


def test_training_ended_table_counts_epochs_and_runs_the_cap_stopped():
    from dqrec.experiment import training_summary

    runs = [("DQRec", "ml-1m", 0, 7, 2, "patience", None), ("DQRec", "ml-1m", 1, 9, 4, "cap", None),
            ("DQRec", "ml-100k", 0, 12, 7, "patience", None), ("EASE", "ml-1m", 0, 0, 0, "", "l2=500.0"),
            ("MostPopular", "ml-1m", 0, 0, 0, "", None), ("SASRec", "ml-100k", 0, 30, 25, "patience", None)]
    results = pd.DataFrame([dict(model=m, dataset=d, split="random", seed=s, epochs_run=e, best_epoch=b, stopped_by=by,
                                 tuned=t) for m, d, s, e, b, by, t in runs])
    table = report.training_ended_table(training_summary(results), ["SASRec", "EASE", "MostPopular", "DQRec"])
    assert list(table.index) == ["SASRec", "EASE", "DQRec"] and list(table.columns) == ["ml-1m random", "ml-100k random"]
    assert table.loc["DQRec", "ml-1m random"] == "8 (7–9), best 3; 1 of 2 at the cap"
    assert table.loc["DQRec", "ml-100k random"] == "12, best 7"
    assert table.loc["EASE", "ml-1m random"] == "tuned: l2=500.0" and table.loc["SASRec", "ml-1m random"] == ""


def test_computed_on_summary_names_each_other_machine_and_its_cells():
    ended = pd.DataFrame([dict(dataset="ml-1m", split="random", model="DQRec", computed_on="NVIDIA H200 (16 cpus); cpu (2 cpus)"),
                          dict(dataset="ml-1m", split="random", model="EASE", computed_on="cpu (16 cpus)"),
                          dict(dataset="ml-100k", split="temporal", model="MF-BPR", computed_on="not recorded"),
                          dict(dataset="ml-100k", split="random", model="NCF", computed_on="cpu (2 cpus)")])
    text = report.computed_on_summary(ended)
    assert text == ("Every run was computed on this project's machine, a 2-core CPU, except some or all seeds of these: "
                    "on an NVIDIA H200 with 16 CPU cores, DQRec (ml-1m random); on a 16-core CPU, EASE (ml-1m random).")
    assert report.computed_on_summary(ended.iloc[2:]) == "Every run was computed on this project's machine, a 2-core CPU."


def test_baseline_epoch_seconds_reads_both_benchmarks_and_marks_estimates(tmp_path):
    import json

    assert report.baseline_epoch_seconds(tmp_path).empty
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "baselines.json").write_text(json.dumps({"epochs": [
        dict(model="LightGCN", dataset="ml-1m", train_seconds=32.43), dict(model="RecBole LightGCN", dataset="ml-100k",
                                                                            train_seconds=1.02),
        dict(model="MAERec", dataset="ml-100k", train_seconds=99.0)]}))
    (tmp_path / "bench" / "sequential_epoch.json").write_text(json.dumps({
        "ml-100k/MAERec": dict(model="MAERec", dataset="ml-100k", seconds_per_epoch=39.03, note="measured: epochs"),
        "ml-1m/DuoRec": dict(model="DuoRec", dataset="ml-1m", seconds_per_epoch=3187.8, note="estimated: steps"),
        "ml-100k/SASRec:prefixes": dict(model="SASRec:prefixes", dataset="ml-100k", seconds_per_epoch=124.3,
                                        note="measured: fit")}))
    t = report.baseline_epoch_seconds(tmp_path, models=["DuoRec", "SASRec", "LightGCN"]).set_index("model")
    assert list(t.index) == ["DuoRec", "SASRec (prefixes)", "LightGCN", "MAERec"]  # asked order, then the rest
    assert list(t.columns) == ["ml-100k", "ml-1m"]
    assert t.loc["DuoRec", "ml-1m"] == "3,187.8 (estimated)" and t.loc["LightGCN", "ml-1m"] == "32.4"
    assert t.loc["MAERec", "ml-100k"] == "39.0"  # the sequential benchmark's own epoch, not the other file's
    assert t.loc["SASRec (prefixes)", "ml-100k"] == "124.3" and t.loc["LightGCN", "ml-100k"] == ""


def test_missing_run_hours_prefers_the_models_own_runs_then_bench_times_epochs(tmp_path):
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "sequential_epoch.json").write_text(json.dumps({
        "ml-1m/DuoRec": dict(model="DuoRec", dataset="ml-1m", seconds_per_epoch=3600.0, note="estimated: steps"),
        "ml-100k/DuoRec": dict(model="DuoRec", dataset="ml-100k", seconds_per_epoch=1.0, note="measured: epochs")}))
    coverage = pd.DataFrame([("DuoRec", "ml-100k", "temporal", 1, 3), ("DuoRec", "ml-100k", "random", 0, 3),
                             ("DuoRec", "ml-1m", "temporal", 0, 3), ("DuoRec", "ml-1m", "random", 0, 3),
                             ("ICLRec", "ml-1m", "random", 0, 3), ("NCF", "ml-1m", "random", 3, 3)],
                            columns=["model", "dataset", "split", "done", "planned"])
    results = pd.DataFrame([dict(model="DuoRec", dataset="ml-100k", split="temporal", seed=0, fit_seconds=7000.0,
                                 eval_seconds=200.0, epochs_run=10, metric=m) for m in ("Recall", "NDCG")]
                           + [dict(model="NCF", dataset="ml-1m", split="random", seed=s, fit_seconds=60.0, eval_seconds=6.0,
                                   epochs_run=5, metric="Recall") for s in (0, 1, 2)])  # DuoRec has no ml-1m run: bench
    cost = report.missing_run_hours(coverage, results, tmp_path).set_index(["model", "dataset"])
    assert list(cost.index) == [("DuoRec", "ml-100k"), ("DuoRec", "ml-1m"), ("ICLRec", "ml-1m")]  # NCF is complete
    near = cost.loc[("DuoRec", "ml-100k")]
    assert near.missing == 5 and near.hours_each == 2.0 and near.hours == 10.0  # its own run, not the 1 s bench
    far = cost.loc[("DuoRec", "ml-1m")]
    assert far.missing == 6 and far.hours_each == 10.0 and far["from"].startswith("estimated epoch x 10")
    assert np.isnan(cost.loc[("ICLRec", "ml-1m")].hours)
    text = report.missing_run_summary(cost.reset_index())
    assert "14 runs" in text and "70 hours" in text and "60 h, is DuoRec on ml-1m" in text and "ICLRec on ml-1m" in text
    assert report.missing_run_summary(cost.iloc[:0].reset_index()).startswith("Every planned run")


def test_coverage_note_adds_the_missing_hours_chapter_04_wrote(tmp_path):
    assert report.coverage_note(tmp_path) == ""
    pd.DataFrame(dict(model=["DuoRec"], dataset=["ml-1m"], split="temporal", done=[0], planned=[3])).to_csv(
        tmp_path / "table1_coverage.csv", index=False)
    assert report.coverage_note(tmp_path).startswith("Table 1's verdicts stand on **0 of the 3 runs planned**")
    pd.DataFrame([dict(model="DuoRec", dataset="ml-1m", missing=3, hours_each=40.0, hours=120.0,
                       **{"from": "estimated epoch x 50 epochs"})]).to_csv(tmp_path / "table1_missing_hours.csv",
                                                                          index=False)
    note = report.coverage_note(tmp_path)
    assert "0 of the 3 runs" in note and "about **120 hours**" in note and "DuoRec on ml-1m (3 runs" in note
    rows = [dict(dataset="ml-100k", split="temporal", protocol=protocol, model=m, metric="Recall", k=10, seed=0,
                 value=v * (1.5 if patience == 20 else 1.0), fit_seconds=6.0, epochs_run=9, best_epoch=4, patience=patience,
                 stopped_by="patience")
            for m, v in (("DQRec", 0.3), ("SASRec", 0.2)) for patience in (5, 20) for protocol in ("full", "in_batch")]
    pd.DataFrame(rows).to_csv(tmp_path / "patience_check.csv", index=False)
    assert report.coverage_note(tmp_path) == note  # without the profile's patience, no patience sentence
    note = report.coverage_note(tmp_path, dict(patience=5, patience_check=20))
    assert "stop after 5 epochs" in note and "changed by a median of +50.0% over 2 models" in note

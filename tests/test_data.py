"""Loaders on small fixtures written in the original formats, splits, sequences, bad input."""
import gzip
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dqrec import data


def write_ml1m(folder):
    folder.mkdir(parents=True)
    (folder / "ratings.dat").write_text("1::10::5::978300760\n1::20::3::\n2::10::4::978300800\n2::30::2::\n"
                                        "3::20::5::978300900\n3::10::4::978300900\n")
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n")
    (folder / "movies.dat").write_bytes("10::Toy Story (1995)::Animation|Children's|Comedy\n"
                                        "20::Am\xe9lie (2001)::Comedy|Romance\n30::Heat (1995)::Action\n"
                                        .encode("latin-1"))


def test_ml1m_keeps_rows_without_timestamp(mirror):
    write_ml1m(mirror / "ml-1m")
    with pytest.warns(UserWarning, match="2 ratings have no timestamp"):
        ds = data.load("ml-1m", check_counts=False)  # a 6-row fixture, not the 1,000,209-row release
    assert len(ds.ratings) == 6 and ds.ratings.timestamp.isna().sum() == 2
    assert ds.items.loc[20, "title"] == "Am\xe9lie (2001)" and ds.items.loc[20, "year"] == 2001
    assert ds.users.loc[2, "gender"] == "M" and ds.users.loc[2, "age"] == "56"
    stats = ds.stats().set_index("subset")
    assert stats.loc["all", "interactions"] == 6 and stats.loc["positive", "interactions"] == 4
    assert stats.loc["all", "density_percent"] == pytest.approx(100 * 6 / 9)
    assert len(ds.checksum) == 64


def test_ml100k_parses_features(mirror):
    folder = mirror / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text("".join(f"{1 + r % 2}\t1\t{4 + r % 2}\t{881250949 + r}\n" for r in range(10))
                                   + "2\t2\t2\t881250999\n")  # 10 positives of item 1: every split part non-empty
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    flags = ["0"] * 19
    flags[1] = flags[5] = "1"
    (folder / "u.item").write_text(f"1|Toy Story (1995)|01-Jan-1995||http://x|{'|'.join(flags)}\n"
                                   f"2|Heat (1995)|15-Dec-1995||http://y|{'|'.join(['0'] * 18 + ['1'])}\n")
    ds = data.load("ml-100k", check_counts=False)
    assert ds.items.loc[1, "genres"] == "Action|Comedy" and ds.items.loc[2, "genres"] == "Western"
    assert list(ds.users.age) == ["18", "50"]  # bucketed as ML-1M
    split = data.prepare(ds)
    assert split.user_features.names == ["gender", "age", "occupation"]
    assert split.item_features.multi_names == ["Action", "Comedy"]  # genres of positive items only


def test_ml_latest_small_checks_pinned_file_hashes(mirror):
    folder = mirror / "ml-latest-small"
    folder.mkdir()
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n")
    (folder / "movies.csv").write_text("movieId,title,genres\n1,Toy Story (1995),Animation|Comedy\n")
    with pytest.raises(ValueError, match="sha256 .* does not match"):
        data.load("ml-latest-small")
    ds = data._parse_ml_latest_small(folder)  # the parser itself, on the fixture
    assert ds.items.loc[1, "year"] == 1995 and ds.ratings.rating.iloc[0] == 4.0


def test_amazon_books_2023_kcore_and_metadata(mirror):
    folder = mirror / "amazon-books-2023"
    folder.mkdir()
    rows = ["user_id,parent_asin,rating,timestamp"]
    for u in range(3):
        for i in range(3):
            rows.append(f"U{u},B{i},5.0,{1600000000000 + 1000 * (3 * u + i)}")
    rows.append("U9,B9,5.0,1600000000000")  # a user and item with one rating: filtered out
    with gzip.open(folder / "Books.csv.gz", "wt") as f:
        f.write("\n".join(rows) + "\n")
    with gzip.open(folder / "meta_Books.jsonl.gz", "wt") as f:
        for i in range(3):
            f.write(json.dumps(dict(parent_asin=f"B{i}", title=f"Book {i}", store="S",
                                    categories=["Books", "Fiction"], price=7.5)) + "\n")
    ds = data.load("amazon-books-2023", min_user=2, min_item=2)
    assert set(ds.ratings.user) == {"U0", "U1", "U2"} and len(ds.ratings) == 9
    assert ds.ratings.timestamp.iloc[0] == pytest.approx(1.6e9)  # milliseconds -> seconds
    assert ds.items.loc["B1", "category"] == "Fiction" and ds.items.loc["B1", "price"] == "5-10"


@pytest.mark.parametrize("layout", ["combined", "training_set"])
def test_netflix_original_formats(mirror, layout):
    folder = mirror / "netflix"
    blocks = {1: ["6,4,2005-09-06", "7,3,2005-05-13"], 2: ["6,5,2004-01-01"]}
    if layout == "combined":
        folder.mkdir()
        text = "".join(f"{m}:\n" + "".join(line + "\n" for line in lines) for m, lines in blocks.items())
        (folder / "combined_data_1.txt").write_text(text)
    else:
        (folder / "training_set").mkdir(parents=True)
        for m, lines in blocks.items():
            (folder / "training_set" / f"mv_{m:07d}.txt").write_text(f"{m}:\n" + "\n".join(lines) + "\n")
    (folder / "movie_titles.txt").write_text("1,2003,Dinosaur Planet\n2,2004,Isle of Man, TT 2004\n")
    ds = data.load("netflix")
    assert sorted(map(tuple, ds.ratings[["user", "item"]].to_numpy())) == [(6, 1), (6, 2), (7, 1)]
    assert ds.items.loc[2, "title"] == "Isle of Man, TT 2004" and ds.items.loc[2, "year"] == 2004
    assert ds.ratings.timestamp.min() == pd.Timestamp("2004-01-01").timestamp()
    assert data.load("netflix", n_users=1).ratings.user.nunique() == 1


def test_unknown_name_and_missing_files(mirror):
    with pytest.raises(ValueError, match="unknown dataset 'ml-2m'"):
        data.load("ml-2m")
    with pytest.raises(data.DataNotFoundError, match="netflix.*DQREC_DATA_DIR.*archive.org"):
        data.load("netflix")
    with pytest.raises(data.DataNotFoundError, match="u.data, u.item, u.user"):
        data.load("ml-100k", download=False)


def test_offline_download_error_names_url_and_variable(mirror, monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(data.pooch, "retrieve", offline)
    with pytest.raises(data.DataNotFoundError, match=r"files.grouplens.org.*ml-1m.zip.*DQREC_DATA_DIR"):
        data.load("ml-1m")


def test_checksum_mismatch_and_corrupted_archive(mirror, monkeypatch, tmp_path):
    def mismatch(*args, **kwargs):
        raise ValueError("MD5 hash of downloaded file does not match the known hash")

    monkeypatch.setattr(data.pooch, "retrieve", mismatch)
    with pytest.raises(ValueError, match="does not match the known hash"):
        data.load("ml-100k")
    bad = tmp_path / "ml-100k.zip"
    bad.write_bytes(b"this is not a zip file")
    monkeypatch.setattr(data.pooch, "retrieve", lambda *a, **k: str(bad))
    with pytest.raises(ValueError, match="not a valid zip"):
        data.load("ml-100k")


def test_download_extracts_into_cache_never_the_mirror(mirror, monkeypatch, tmp_path):
    archive = tmp_path / "ml-1m.zip"
    write_ml1m(tmp_path / "src" / "ml-1m")
    with zipfile.ZipFile(archive, "w") as z:
        for f in (tmp_path / "src" / "ml-1m").iterdir():
            z.write(f, f"ml-1m/{f.name}")
    monkeypatch.setattr(data.pooch, "retrieve", lambda *a, **k: str(archive))
    with pytest.warns(UserWarning):
        ds = data.load("ml-1m", check_counts=False)
    assert ds.source == str(tmp_path / "cache" / "ml-1m") and not any(mirror.iterdir())


def test_corrupted_file_gives_clear_error(mirror):
    write_ml1m(mirror / "ml-1m")
    (mirror / "ml-1m" / "ratings.dat").write_text("1::abc::5::97\n")
    with pytest.raises(ValueError, match="could not parse 'ml-1m'"):
        data.load("ml-1m")


# ----------------------------------------------------------------------------- splits
def interactions(n=1000, n_users=50, n_items=40, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"user": rng.integers(0, n_users, n), "item": rng.integers(0, n_items, n),
                         "timestamp": rng.integers(0, 300, n)})  # many ties


def test_temporal_split_orders_time_and_ratios():
    s = data.temporal_split(interactions(), (0.8, 0.1, 0.1))
    assert s.part.value_counts().to_dict() == {"train": 800, "valid": 100, "test": 100}
    t = s.groupby("part").timestamp.agg(["min", "max"])
    assert t.loc["train", "max"] <= t.loc["valid", "min"] and t.loc["valid", "max"] <= t.loc["test", "min"]
    assert s[["timestamp", "user", "item"]].apply(tuple, axis=1).is_monotonic_increasing  # deterministic ties
    shuffled = interactions().sample(frac=1, random_state=3)
    pd.testing.assert_frame_equal(data.temporal_split(shuffled), s)


def test_random_split_is_seeded():
    a, b = data.random_split(interactions(), seed=1), data.random_split(interactions(), seed=1)
    assert (a.part == b.part).all() and not (a.part == data.random_split(interactions(), seed=2).part).all()
    assert a.part.value_counts()["train"] == 800


@pytest.mark.parametrize("ratios", [(0.8, 0.1), (0.5, 0.5, 0.5), (-0.1, 0.6, 0.5), (0, 0.5, 0.5)])
def test_bad_ratios(ratios):
    with pytest.raises(ValueError, match="ratios must be three"):
        data.temporal_split(interactions(), ratios)


def test_bad_split_kind_and_length():
    with pytest.raises(ValueError, match="split must be"):
        data.prepare(data.Dataset("x", pd.DataFrame(dict(user=[1], item=[1], rating=[5.0], timestamp=[1.0])),
                                  pd.DataFrame(), pd.DataFrame()), split="future")
    with pytest.raises(ValueError, match="sequence length"):
        data.recent_sequences(np.zeros(3), np.zeros(3), np.zeros(3), 0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 6), st.integers(0, 8)), min_size=1, max_size=60),
       st.integers(1, 5))
def test_sequences_hold_exactly_the_latest_strictly_earlier_interactions(rows, length):
    owner, other, t = (np.array(c) for c in zip(*rows))
    seq = data.recent_sequences(owner, other, t, length)
    for r in range(len(rows)):
        earlier = sorted([(t[j], other[j]) for j in range(len(rows)) if owner[j] == owner[r] and t[j] < t[r]],
                         reverse=True)[:length]
        expected = [o for _, o in earlier] + [data.PAD] * (length - len(earlier))
        # Brute force: the `length` latest interactions strictly before t (ties in time ordered by `other`).
        assert sorted(seq[r]) == sorted(expected)


def test_prepare_sequences_never_see_the_future():
    ds = data.Dataset("toy", interactions(400, 10, 15).assign(rating=5.0, timestamp=lambda d: d.timestamp.astype(float)),
                      pd.DataFrame(), pd.DataFrame())
    split = data.prepare(ds, seq_len=8)
    s = split.samples
    time_of = {(u, i): t for u, i, t in s.groupby(["user", "item"]).timestamp.min().reset_index().to_numpy()}
    for r in range(len(s)):
        for i in split.user_seq[r][split.user_seq[r] >= 0]:
            assert time_of[(s.user[r], i)] < s.timestamp[r]
        for u in split.item_seq[r][split.item_seq[r] >= 0]:
            assert time_of[(u, s.item[r])] < s.timestamp[r]
    last = split.last_train_sample("user")
    train = split.train
    for u in range(split.n_users):
        if last[u] >= 0:
            assert last[u] == train[train.user == u].index.max()
    assert split.known().shape == (split.n_users, split.n_items)


def test_kcore_table_counts_each_core_and_the_raw_density():
    # users 0-2 rate items 0-2 positively; user 3 has one positive (item 3) and one negative rating
    rows = [(u, i, 5.0) for u in range(3) for i in range(3)] + [(3, 3, 5.0), (3, 0, 1.0)]
    ratings = pd.DataFrame(rows, columns=["user", "item", "rating"]).assign(timestamp=0.0)
    t = data.kcore_table(ratings, ks=[1, 2])
    assert t.loc[1, ["users", "items", "positives"]].tolist() == [4, 4, 10]  # the negative never counts
    assert t.loc[2, ["users", "items", "positives"]].tolist() == [3, 3, 9]
    assert t.loc[2, "raw_count_density"] == round(100 * 11 / 9, 2)  # every raw rating over the core's 3 x 3


def test_load_available_downloads_only_what_it_is_told(monkeypatch):
    asked = []

    def load(name, download=True):
        asked.append((name, download))
        if name == "netflix":
            raise data.DataNotFoundError("netflix is not here. Put it there.")
        return f"the {name} data"

    monkeypatch.setattr(data, "load", load)
    loaded, missing = data.load_available(["ml-100k", "netflix"], download=["ml-100k"])
    assert loaded == {"ml-100k": "the ml-100k data"} and missing == {"netflix": "netflix is not here"}
    assert asked == [("ml-100k", True), ("netflix", False)]

"""Issue 9: nothing wrong gets through silently. One small fixture per corruption or bad parameter.

Data files are written in the original formats into tmp_path (a mirror or a download cache); the
download function is monkeypatched (no network). Each test fails if its check is removed.
"""
import dataclasses
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dqrec import data

ROOT = Path(__file__).resolve().parent.parent


def no_download(*args, **kwargs):
    raise AssertionError("a download was attempted")


# ----------------------------------------------------------------------------- fixtures in the original formats
ML100K_ROWS = [f"{1 + r % 2}\t{1 + r % 3}\t{4 + r % 2}\t{881250949 + 100 * r}" for r in range(20)]


def write_ml100k(folder: Path, rows=None, users=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text("\n".join(ML100K_ROWS if rows is None else rows) + "\n")
    (folder / "u.user").write_text(users or "1|24|M|technician|85711\n2|53|F|other|94043\n")
    flags = "|".join(["0"] * 18 + ["1"])
    (folder / "u.item").write_text("".join(f"{i}|Movie {i} (1995)|01-Jan-1995||http://x|{flags}\n" for i in (1, 2, 3)))
    return folder


ML1M_ROWS = ["1::10::5::978300760", "1::20::3::", "2::10::4::978300800", "2::30::2::", "3::20::5::978300900",
             "3::10::4::978300901", "1::30::4::978301000", "2::20::5::978301100", "3::30::5::978301200",
             "1::20::5::978301300", "2::30::4::978301400", "3::10::5::978301500", "1::10::4::978301600"]


def write_ml1m(folder: Path, rows=None, users=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.dat").write_text("\n".join(ML1M_ROWS if rows is None else rows) + "\n")
    (folder / "users.dat").write_text(users or "1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n")
    (folder / "movies.dat").write_bytes("10::Toy Story (1995)::Animation|Children's|Comedy\n"
                                        "20::Am\xe9lie (2001)::Comedy|Romance\n30::Heat (1995)::Action\n"
                                        .encode("latin-1"))
    return folder


def load_quiet(name, **kw):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return data.load(name, check_counts=False, **kw)


def zip_folder(folder: Path, archive: Path, prefix: str, skip=()):
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(folder.iterdir()):
            if f.name not in skip:
                z.write(f, f"{prefix}/{f.name}")
    return archive


# ----------------------------------------------------------------------------- strict parsing, row-level errors
@pytest.mark.parametrize("last, problem", [
    ("2\t2\t5\t8812", "timestamp"),   # cut inside the timestamp: was a 1970 timestamp, first in the split
    ("2\t2\t5", "timestamp"),          # cut after the rating: was NaN
    ("2\t2", "rating"),                # cut after the item
])
def test_ml100k_cut_last_line_names_file_and_line(mirror, last, problem):
    write_ml100k(mirror / "ml-100k", ML100K_ROWS + [last])
    with pytest.raises(data.DataFormatError, match=rf"u\.data, line 21: the {problem}.*corrupted, truncated"):
        load_quiet("ml-100k")


@pytest.mark.parametrize("last, problem", [
    ("3::30::4::97830", "timestamp"),  # cut inside the timestamp
    ("3::30::5::", "timestamp"),       # an empty timestamp on a positive: never in our mirror
    ("3::30", "rating"),
    ("3::30::4::978301700::12", "line 14: 8 field separators"),  # extra fields, which the parser would drop
])
def test_ml1m_cut_or_garbled_line(mirror, last, problem):
    write_ml1m(mirror / "ml-1m", ML1M_ROWS + [last])
    with pytest.raises(data.DataFormatError, match=rf"ratings\.dat.*{problem}"):
        load_quiet("ml-1m")


def test_ml1m_empty_timestamp_accepted_only_on_ratings_up_to_3(mirror):
    write_ml1m(mirror / "ml-1m", ML1M_ROWS + ["3::30::3::"])
    with pytest.warns(UserWarning, match="3 ratings have no timestamp"):
        ds = data.load("ml-1m", check_counts=False)
    assert ds.ratings.timestamp.isna().sum() == 3 and (ds.ratings.rating[ds.ratings.timestamp.isna()] <= 3).all()
    write_ml1m(mirror / "ml-1m", ML1M_ROWS + ["3::30::3::abc"])  # not empty: garbage
    with pytest.raises(data.DataFormatError, match="line 14: the timestamp"):
        load_quiet("ml-1m")


def test_non_numeric_user_id_is_an_error_not_strings(mirror):
    rows = list(ML100K_ROWS)
    rows[4] = "x1\t1\t5\t881250949"
    write_ml100k(mirror / "ml-100k", rows)
    with pytest.raises(data.DataFormatError, match=r"u\.data, line 5: the user id is not a positive integer: 'x1"):
        load_quiet("ml-100k")
    write_ml100k(mirror / "ml-100k", users="1|24|M|technician|85711\nB|53|F|other|94043\n")
    with pytest.raises(data.DataFormatError, match=r"u\.user, line 2: the user id"):
        load_quiet("ml-100k")


@pytest.mark.parametrize("rating", ["99", "-5", "0", "4.5", "abc"])
def test_ratings_outside_the_scale(mirror, rating):
    rows = list(ML100K_ROWS)
    rows[7] = f"1\t1\t{rating}\t881250949"
    write_ml100k(mirror / "ml-100k", rows)
    with pytest.raises(data.DataFormatError, match=r"line 8: the rating is not one of 1, 2, 3, 4, 5"):
        load_quiet("ml-100k")


def test_ml_latest_small_half_star_scale_and_header_line_numbers(tmp_path):
    folder = tmp_path / "ml-latest-small"
    folder.mkdir()
    (folder / "movies.csv").write_text("movieId,title,genres\n1,Toy Story (1995),Animation\n2,\"Heat, The (1995)\",Action\n")
    good = "userId,movieId,rating,timestamp\n1,1,0.5,964982703\n1,2,4.5,964982704\n"
    (folder / "ratings.csv").write_text(good)
    assert data._parse_ml_latest_small(folder).ratings.rating.tolist() == [0.5, 4.5]
    (folder / "ratings.csv").write_text(good + "2,1,0.7,964982705\n")
    with pytest.raises(data.DataFormatError, match=r"ratings\.csv, line 4: the rating is not one of 0.5, 1, 1.5"):
        data._parse_ml_latest_small(folder)
    (folder / "ratings.csv").write_text(good + "2,3,4.0,964982705\n")  # movie 3 is not in movies.csv
    with pytest.raises(data.DataFormatError, match=r"ratings\.csv, line 4: the item is not listed in movies\.csv"):
        data._parse_ml_latest_small(folder)


@pytest.mark.parametrize("timestamp", ["0", "86400", "631151999", str(int(time.time()) + 30 * 86400), "1e300", ""])
def test_implausible_or_missing_timestamps(mirror, timestamp):
    rows = list(ML100K_ROWS)
    rows[2] = f"1\t3\t5\t{timestamp}"
    write_ml100k(mirror / "ml-100k", rows)
    with pytest.raises(data.DataFormatError, match=r"line 3: the timestamp is missing, or not between 1990-01-01 and now"):
        load_quiet("ml-100k")


def test_blank_line_is_a_bad_row_with_its_line_number(mirror):
    write_ml100k(mirror / "ml-100k", ML100K_ROWS[:5] + [""] + ML100K_ROWS[5:])
    with pytest.raises(data.DataFormatError, match=r"u\.data, line 6: the user id"):
        load_quiet("ml-100k")


def test_rating_of_unknown_user_or_movie(mirror):
    write_ml100k(mirror / "ml-100k", ML100K_ROWS + ["3\t1\t5\t881259999"])  # user 3 is not in u.user
    with pytest.raises(data.DataFormatError, match=r"u\.data, line 21: the user is not listed in u\.user"):
        load_quiet("ml-100k")
    write_ml1m(mirror / "ml-1m", ML1M_ROWS + ["3::40::5::978309999"])
    with pytest.raises(data.DataFormatError, match=r"ratings\.dat, line 14: the item is not listed in movies\.dat"):
        load_quiet("ml-1m")


def test_side_file_values(mirror):
    write_ml1m(mirror / "ml-1m", users="1::F::1::10::48067\n2::X::56::16::70072\n3::M::25::15::55117\n")
    with pytest.raises(data.DataFormatError, match=r"users\.dat, line 2: the gender is not M or F"):
        load_quiet("ml-1m")
    write_ml1m(mirror / "ml-1m", users="1::F::1::10::48067\n2::M::57::16::70072\n3::M::25::15::55117\n")
    with pytest.raises(data.DataFormatError, match=r"users\.dat, line 2: the age"):
        load_quiet("ml-1m")


def test_netflix_and_amazon_rows_are_checked(mirror):
    folder = mirror / "netflix"
    folder.mkdir()
    (folder / "movie_titles.txt").write_text("1,2003,Dinosaur Planet\n")
    (folder / "combined_data_1.txt").write_text("1:\n6,4,2005-09-06\n7,9,2005-05-13\n")
    with pytest.raises(data.DataFormatError, match=r"combined_data_1\.txt, line 3: the rating"):
        data.load("netflix")
    (folder / "combined_data_1.txt").write_text("1:\n6,4,2005-09-06\n7,3,2005-13-45\n")
    with pytest.raises(data.DataFormatError, match=r"combined_data_1\.txt, line 3: the timestamp"):
        data.load("netflix")
    (folder / "combined_data_1.txt").write_text("1:\n6,4,2005-09-06\nx7,3,2005-05-13\n")
    with pytest.raises(data.DataFormatError, match=r"line 3: the user id"):
        data.load("netflix")
    amazon = mirror / "amazon-2018-small"
    amazon.mkdir()
    (amazon / "Magazine_Subscriptions.csv").write_text("B1,A1,5.0,1005177600\nB1,,5.0,1005177600\n")
    with pytest.raises(data.DataFormatError, match=r"Magazine_Subscriptions\.csv, line 2: the user id is empty"):
        data.load("amazon-2018-small")
    (amazon / "Magazine_Subscriptions.csv").write_text("B1,A1,5.0,1005177600\nB1,A2,6.0,1005177600\n")
    with pytest.raises(data.DataFormatError, match="line 2: the rating"):
        data.load("amazon-2018-small")


@pytest.mark.parametrize("n_rows, expected, message", [
    (20, 21, r"has 20 ratings, the ml-100k release has 21; it ends after line 20: the file is truncated"),
    (20, 19, r"has 20 ratings, the ml-100k release has 19; it has extra rows from line 20 on"),
])
def test_published_row_counts(mirror, monkeypatch, n_rows, expected, message):
    monkeypatch.setitem(data.DATASETS, "ml-100k", dataclasses.replace(data.DATASETS["ml-100k"], n_ratings=expected))
    write_ml100k(mirror / "ml-100k")
    with pytest.raises(data.DataFormatError, match=r"u\.data " + message + r".*mirror \$DQREC_DATA_DIR"):
        data.load("ml-100k")
    assert len(data.load("ml-100k", check_counts=False).ratings) == n_rows


def test_published_counts_of_the_fixed_releases():
    counts = {n: data.DATASETS[n].n_ratings for n in ("ml-100k", "ml-1m", "ml-latest-small")}
    assert counts == {"ml-100k": 100_000, "ml-1m": 1_000_209, "ml-latest-small": 100_836}


def test_count_error_in_the_cache_says_clear_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("DQREC_DATA_DIR", raising=False)
    monkeypatch.setenv("DQREC_CACHE_DIR", str(tmp_path / "cache"))
    write_ml100k(tmp_path / "cache" / "ml-100k", ML100K_ROWS[:15])
    monkeypatch.setattr(data.pooch, "retrieve", no_download)
    with pytest.raises(data.DataFormatError, match=r"release has 100,000.*clear_cache\('ml-100k'\)"):
        data.load("ml-100k")


@pytest.mark.skipif(not (Path(os.environ.get("DQREC_DATA_DIR", "/nonexistent")) / "ml-1m" / "ratings.dat").exists(),
                    reason="needs the ML-1M mirror")
def test_the_real_ml1m_mirror_passes_every_check(monkeypatch):
    monkeypatch.setattr(data.pooch, "retrieve", no_download)
    with pytest.warns(UserWarning, match="337,147 ratings have no timestamp"):
        ds = data.load("ml-1m", download=False)
    assert len(ds.ratings) == 1_000_209 and ds.users.gender.notna().all()


# ----------------------------------------------------------------------------- downloads that recover
def test_corrupt_cached_archive_is_named_and_replaced(mirror, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "ml-100k.zip").write_bytes(b"PK\x03\x04 truncated")  # pinned md5 does not match
    monkeypatch.setattr(data.pooch, "retrieve", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("offline")))
    with pytest.raises(data.DataNotFoundError, match=r"ml-100k\.zip was corrupt \(its md5 does not match.*removed.*"
                                                     r"could not download"):
        data.load("ml-100k")
    assert not (cache / "ml-100k.zip").exists()
    good = zip_folder(write_ml100k(tmp_path / "src" / "ml-100k"), tmp_path / "good.zip", "ml-100k")

    def retrieve(url, known_hash, fname, path, progressbar):
        (Path(path) / fname).write_bytes(good.read_bytes())
        return str(Path(path) / fname)

    monkeypatch.setattr(data.pooch, "retrieve", retrieve)
    assert len(load_quiet("ml-100k").ratings) == 20  # the next attempt downloads and extracts afresh


def test_not_a_zip_is_removed_so_the_next_load_downloads_again(mirror, tmp_path, monkeypatch):
    bad = tmp_path / "cache" / "ml-latest-small.zip"
    bad.parent.mkdir()
    bad.write_bytes(b"<html>503 Service Unavailable</html>")
    monkeypatch.setattr(data.pooch, "retrieve", lambda *a, **k: str(bad))
    with pytest.raises(data.DataFormatError, match="not a valid zip archive.*has been removed"):
        data.load("ml-latest-small")
    assert not bad.exists() and not (tmp_path / "cache" / "ml-latest-small").exists()


def test_extraction_is_atomic_and_names_a_missing_file(mirror, tmp_path, monkeypatch):
    archive = zip_folder(write_ml100k(tmp_path / "src" / "ml-100k"), tmp_path / "ml-100k.zip", "ml-100k",
                         skip=("u.user",))
    monkeypatch.setattr(data.pooch, "retrieve", lambda *a, **k: str(archive))
    with pytest.raises(data.DataFormatError, match=r"lacks u\.user"):
        data.load("ml-100k")
    cache = tmp_path / "cache"
    assert not (cache / "ml-100k").exists() and not list(cache.glob(".ml-100k.extract-*"))
    # A half-extracted folder of an older version is replaced by a whole one, never completed in place.
    (cache / "ml-100k").mkdir()
    (cache / "ml-100k" / "u.data").write_text("stale\n")
    zip_folder(tmp_path / "src" / "ml-100k", archive, "ml-100k")
    ds = load_quiet("ml-100k")
    assert len(ds.ratings) == 20 and not list(cache.glob(".ml-100k.extract-*"))


def test_orphan_temporaries_are_cleaned(mirror, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    old, young, extract = cache / "tmpk2j3h4", cache / "tmpfresh", cache / ".ml-1m.extract-abc"
    for p in (old, young):
        p.write_bytes(b"partial download")
    extract.mkdir()
    stale = time.time() - 2 * data.ORPHAN_AGE_S
    for p in (old, extract):
        os.utime(p, (stale, stale))
    monkeypatch.setattr(data.pooch, "retrieve", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("offline")))
    with pytest.raises(data.DataNotFoundError):
        data.load("ml-1m")
    assert not old.exists() and not extract.exists() and young.exists()  # a running download is left alone


def test_clear_cache_removes_archive_folder_and_leftovers_never_the_mirror(mirror, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    write_ml100k(cache / "ml-100k")
    (cache / "ml-100k.zip").write_bytes(b"x")
    (cache / "tmpabc").write_bytes(b"x")
    os.utime(cache / "tmpabc", (time.time() - 120, time.time() - 120))
    write_ml100k(cache / "ml-1m")  # another dataset's cache: kept
    write_ml100k(mirror / "ml-100k")
    removed = data.clear_cache("ml-100k")
    assert set(removed) == {cache / "ml-100k", cache / "ml-100k.zip", cache / "tmpabc"}
    assert (cache / "ml-1m").exists() and (mirror / "ml-100k" / "u.data").exists()
    assert data.clear_cache("ml-100k") == []
    with pytest.raises(ValueError, match="unknown dataset"):
        data.clear_cache("ml-2m")
    assert "clear_cache" in (ROOT / "README.md").read_text()


def test_file_hash_mismatch_in_cache_points_to_clear_cache_which_works(tmp_path, monkeypatch):
    monkeypatch.delenv("DQREC_DATA_DIR", raising=False)
    monkeypatch.setenv("DQREC_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "ml-latest-small"
    folder.mkdir(parents=True)
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n")
    (folder / "movies.csv").write_text("movieId,title,genres\n1,Toy Story (1995),Animation\n")
    (tmp_path / "cache" / "ml-latest-small.zip").write_bytes(b"old release")
    with pytest.raises(data.DataFormatError, match=r"does not match the pinned.*clear_cache\('ml-latest-small'\)"):
        data.load("ml-latest-small")
    data.clear_cache("ml-latest-small")
    assert not folder.exists() and not (tmp_path / "cache" / "ml-latest-small.zip").exists()
    monkeypatch.setattr(data.pooch, "retrieve", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("offline")))
    with pytest.raises(data.DataNotFoundError, match="could not download"):  # i.e. it really tries again
        data.load("ml-latest-small")


def test_mirror_missing_a_file_says_which_and_does_not_download(mirror, monkeypatch):
    write_ml100k(mirror / "ml-100k")
    (mirror / "ml-100k" / "u.user").unlink()
    monkeypatch.setattr(data.pooch, "retrieve", no_download)
    with pytest.raises(data.DataNotFoundError, match=r"mirror folder .*ml-100k .*exists but lacks u\.user"):
        data.load("ml-100k")


# ----------------------------------------------------------------------------- prepare: empty parts
@pytest.mark.parametrize("n, ratios, empty", [(2, (0.8, 0.1, 0.1), "valid and test"),
                                              (3, (0.8, 0.1, 0.1), "test"),
                                              (40, (0.98, 0.01, 0.01), "test"),
                                              (40, (0.9, 0.0, 0.1), "valid"),
                                              (40, (0.9, 0.1, 0.0), "test")])
def test_prepare_rejects_an_empty_valid_or_test_part(n, ratios, empty):
    ratings = pd.DataFrame({"user": np.arange(n) % 4, "item": np.arange(n) % 7, "rating": 5.0,
                            "timestamp": 1e9 + np.arange(n, dtype=float)})
    ds = data.Dataset("tiny", ratings, pd.DataFrame(), pd.DataFrame())
    with pytest.raises(ValueError, match=rf"leaves the {empty} part\(s\) empty: {n} positives"):
        data.prepare(ds, ratios=ratios)
    with pytest.raises(ValueError, match="empty"):
        data.prepare(ds, split="random", ratios=ratios)


# ----------------------------------------------------------------------------- data identity from content
def test_content_checksum_same_for_mirror_and_download(mirror, tmp_path, monkeypatch):
    """The mirror (empty timestamps on ratings <= 3, extra files) and the GroupLens download (every
    timestamp, another row order) of one release share the content checksum and so the run keys."""
    write_ml1m(mirror / "ml-1m")
    (mirror / "ml-1m" / "SOURCE.md").write_text("where this copy came from\n")
    (mirror / "ml-1m" / "notes.txt").write_text("an extra file\n")
    download = [r if not r.endswith("::") else r + "978300123" for r in reversed(ML1M_ROWS)]
    archive = zip_folder(write_ml1m(tmp_path / "src" / "ml-1m", download), tmp_path / "ml-1m.zip", "ml-1m")
    a = load_quiet("ml-1m")
    monkeypatch.setenv("DQREC_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setattr(data.pooch, "retrieve", lambda *a, **k: str(archive))
    b = load_quiet("ml-1m")
    assert a.source != b.source and a.checksum != b.checksum and a.file_checksum == a.checksum
    assert a.content_checksum == b.content_checksum and len(a.content_checksum) == 64
    sa, sb = data.prepare(a), data.prepare(b)
    assert sa.params["checksum"] == sb.params["checksum"] == a.content_checksum
    assert data.prepare(a, threshold=4, ratios=(0.6, 0.2, 0.2)).params["checksum"] == a.content_checksum_at(4) != a.content_checksum


@pytest.mark.parametrize("change", ["positive", "time", "gender", "genre"])
def test_content_checksum_changes_with_the_data_used(change):
    ratings = pd.DataFrame({"user": [1, 1, 2, 2, 3] * 4, "item": [10, 20, 10, 30, 20] * 4, "rating": 5.0,
                            "timestamp": 1e9 + np.arange(20.0)})
    users = pd.DataFrame({"gender": ["F", "M", "M"]}, index=[1, 2, 3])
    items = pd.DataFrame({"title": ["a", "b", "c"], "genres": ["X", "Y", "X|Y"]}, index=[10, 20, 30])
    before = data.Dataset("d", ratings, users, items).content_checksum
    ratings, users, items = ratings.copy(), users.copy(), items.copy()
    if change == "positive":
        ratings.loc[0, "rating"] = 2.0
    elif change == "time":
        ratings.loc[0, "timestamp"] += 1
    elif change == "gender":
        users.loc[2, "gender"] = "F"
    else:
        items.loc[30, "genres"] = "X"
    assert data.Dataset("d", ratings, users, items).content_checksum != before
    shuffled = data.Dataset("d", ratings.sample(frac=1, random_state=0), users, items)
    assert shuffled.content_checksum == data.Dataset("d", ratings, users, items).content_checksum


# ----------------------------------------------------------------------------- parameters checked at construction
@pytest.mark.parametrize("l2", [0, 0.0, -1.0, float("nan"), float("inf"), "500", True, None])
def test_ease_rejects_a_non_positive_or_non_finite_l2(l2):
    from dqrec.baselines.ease import EASE
    with pytest.raises(ValueError, match=r"EASE: l2 \(the ridge penalty lambda\) must be a finite number > 0"):
        EASE(l2=l2)  # l2=0 used to kill Python in scipy.linalg.inv (segmentation fault)


def test_ease_accepts_good_parameters_and_rejects_a_bad_dtype():
    from dqrec.baselines.ease import EASE
    assert EASE(l2=1e-3).l2 == 1e-3 and EASE(l2=np.float32(2)).l2 == 2 and EASE(l2=5).l2 == 5
    for dtype in ("int64", "nonsense"):
        with pytest.raises(ValueError, match="dtype must be float32 or float64"):
            EASE(dtype=dtype)


@pytest.mark.parametrize("kwargs, name", [(dict(k=0), "k"), (dict(k=-3), "k"), (dict(k=2.5), "k"), (dict(k=True), "k"),
                                          (dict(chunk=0), "chunk"), (dict(chunk=None), "chunk")])
def test_itemknn_rejects_bad_k_and_chunk(kwargs, name):
    from dqrec.baselines.itemknn import ItemKNN
    with pytest.raises(ValueError, match=rf"ItemKNN: {name} .* must be an integer >= 1"):
        ItemKNN(**kwargs)
    assert ItemKNN(k=1, chunk=np.int64(8)).k == 1


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_layers=0), "n_layers must be an integer >= 1"),
    (dict(n_layers=2.0), "n_layers must be an integer >= 1"),
    (dict(codebook_size=1), "codebook_size must be an integer >= 2"),
    (dict(codebook_size="128"), "codebook_size must be an integer >= 2"),
    (dict(beta=-0.1), "beta must be a finite number >= 0"),
    (dict(beta=float("nan")), "beta must be a finite number >= 0"),
    (dict(fit_method="sgd"), "fit_method must be one of"),
    (dict(n_iter=0), "n_iter must be an integer >= 1"),
    (dict(adam_epochs=0), "adam_epochs must be an integer >= 1"),
    (dict(adam_lr=0.0), "adam_lr must be a finite number > 0"),
    (dict(batch_size=0), "batch_size must be an integer >= 1"),
    (dict(seed=-1), "seed must be an integer >= 0"),
    (dict(verbose="yes"), "verbose must be True or False"),
])
def test_dqvae_constructor_checks_types_and_ranges(kwargs, message):
    from dqrec.dqvae import DQVAE
    with pytest.raises(ValueError, match="DQVAE: " + message):
        DQVAE(**kwargs)  # at construction: no data needed, nothing computed


def test_dqvae_codebook_size_against_the_rows_in_the_users_terms():
    from dqrec.dqvae import DQVAE
    dq = DQVAE(n_layers=2, codebook_size=2000)
    with pytest.raises(ValueError, match=r"codebook_size=2000 exceeds the number of users with training samples "
                                         r"\(N=943\).*choose codebook_size <= 943"):
        dq.check_shape(943, 64, what="users with training samples")  # before any representation is trained
    with pytest.raises(ValueError, match=r"codebook_size=2000 exceeds the number of rows of Z \(N=100\)"):
        dq.fit(np.random.default_rng(0).standard_normal((100, 8)))
    dq.codebook_size = 1  # changed after construction: fit checks again
    with pytest.raises(ValueError, match="codebook_size must be an integer >= 2"):
        dq.fit(np.random.default_rng(0).standard_normal((100, 8)))


@pytest.fixture(scope="module")
def saved_dqvae(tmp_path_factory):
    from dqrec.dqvae import DQVAE
    path = tmp_path_factory.mktemp("dq") / "dq.npz"
    DQVAE(n_layers=2, codebook_size=4, seed=0).fit(np.random.default_rng(0).standard_normal((60, 4))).save(path)
    return path


@pytest.mark.parametrize("corruption", ["truncated", "garbage", "empty", "text", "wrong params", "wrong shape"])
def test_dqvae_load_of_a_corrupted_file(saved_dqvae, tmp_path, corruption):
    import json
    from dqrec.dqvae import DQVAE
    path, raw = tmp_path / "bad.npz", saved_dqvae.read_bytes()
    if corruption == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif corruption == "garbage":
        path.write_bytes(bytes(range(256)) * 8)
    elif corruption == "empty":
        path.write_bytes(b"")
    elif corruption == "text":
        path.write_text("n_layers=2\n")
    else:
        with np.load(saved_dqvae) as f:
            arrays = dict(f)
        if corruption == "wrong params":
            arrays["params"] = np.array(json.dumps(dict(json.loads(str(arrays["params"])), codebook_size=0)))
        else:
            arrays["codebooks"] = arrays["codebooks"][:, :3]
        np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"bad\.npz is (not a DQVAE file written by DQVAE\.save|corrupted)") as info:
        DQVAE.load(path)
    assert "allow_pickle" not in str(info.value)
    assert DQVAE.load(saved_dqvae).codebook_size == 4
    with pytest.raises(FileNotFoundError):
        DQVAE.load(tmp_path / "absent.npz")


# ----------------------------------------------------------------------------- build_book: failures fail
NB_HEADER = ("# ---\n# jupyter:\n#   jupytext:\n#     text_representation:\n#       extension: .py\n"
             "#       format_name: percent\n#   kernelspec:\n#     display_name: Python 3\n#     language: python\n"
             "#     name: python3\n# ---\n\n")


def load_build_book(monkeypatch, tmp_path, notebooks: dict):
    import importlib.util
    spec = importlib.util.spec_from_file_location("build_book_under_test", ROOT / "scripts" / "build_book.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    src = tmp_path / "notebooks"
    src.mkdir()
    for stem, cells in notebooks.items():
        (src / f"{stem}.py").write_text(NB_HEADER + "# %% tags=[\"parameters\"]\nprofile = 'quick'\n"
                                        + "".join(f"\n# %%\n{c}\n" for c in cells))
    monkeypatch.setattr(mod, "NOTEBOOKS", src)
    monkeypatch.setattr(mod, "BOOK", tmp_path / "book")
    monkeypatch.setenv("DQREC_RESULTS_DIR", str(tmp_path / "results"))
    rendered = []
    monkeypatch.setattr(mod, "render_book", lambda: rendered.append(mod.BOOK) or 0)
    return mod, rendered


def test_build_book_fails_naming_notebook_and_cell_and_renders_nothing(monkeypatch, tmp_path, capsys):
    mod, rendered = load_build_book(monkeypatch, tmp_path, {"01_ok": ["x = 1"], "02_bad": ["y = 2", "raise KeyError('ml100k')"],
                                                            "03_after": ["z = 3"]})
    out = tmp_path / "results" / "quick" / "notebooks"
    out.mkdir(parents=True)
    (out / "02_bad.ipynb").write_text("{}")  # a stale chapter of an earlier, successful run
    assert mod.main(["--profile", "quick"]) == 1
    err = capsys.readouterr().err
    assert "FAILED" in err and "02_bad.py: cell 3 " in err and "KeyError: 'ml100k'" in err and "raise KeyError" in err
    assert "book was not rendered" in err and rendered == []
    assert sorted(p.name for p in out.glob("[0-9][0-9]_*.ipynb")) == ["01_ok.ipynb"]  # nothing failed, nothing stale
    assert (out / "failed" / "02_bad.ipynb").exists() and not (out / "03_after.ipynb").exists()
    assert mod.main(["--profile", "quick", "--keep-going", "--no-build"]) == 1
    assert (out / "03_after.ipynb").exists() and not (out / "02_bad.ipynb").exists()


def test_build_book_renders_when_every_notebook_passes(monkeypatch, tmp_path):
    mod, rendered = load_build_book(monkeypatch, tmp_path, {"01_ok": ["x = 1"]})
    (tmp_path / "book").mkdir()
    assert mod.main(["--profile", "quick"]) == 0
    assert len(rendered) == 1 and "01_ok" in (tmp_path / "book" / "_toc.yml").read_text()
    import nbformat
    page = nbformat.read(tmp_path / "book" / "notebooks" / "01_ok.ipynb", as_version=4)
    code = [c for c in page.cells if c.cell_type == "code"]
    assert code and all("hide-input" in c.metadata.get("tags", []) for c in code)  # code hidden by default


def test_build_book_help_explains_every_option():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_book.py"), "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0
    for option, words in (("--profile", "paper"), ("--only", "stem"), ("--no-build", "render"),
                          ("--keep-going", "remaining")):
        assert option in done.stdout and words in done.stdout
    assert "exit" in done.stdout.lower() and "failed/" in done.stdout


def test_build_book_failure_outside_a_cell_leaves_no_stale_chapter(monkeypatch, tmp_path, capsys):
    mod, rendered = load_build_book(monkeypatch, tmp_path, {"01_ok": ["x = 1"]})
    out = tmp_path / "results" / "quick" / "notebooks"
    out.mkdir(parents=True)
    (out / "01_ok.ipynb").write_text("{}")  # an earlier run's chapter

    def dead_kernel(*args, **kwargs):
        raise RuntimeError("Kernel died before replying to kernel_info")

    monkeypatch.setattr(mod.papermill, "execute_notebook", dead_kernel)
    assert mod.main(["--profile", "quick"]) == 1
    err = capsys.readouterr().err
    assert "01_ok.py: before or outside any cell raised RuntimeError: Kernel died" in err
    assert rendered == [] and not list(out.glob("*.ipynb"))
    assert "traceback:" not in err and not (out / "failed").exists()  # the stale copy is not passed off as this run's

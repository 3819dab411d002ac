"""Datasets, positives, splits, recent sequences and side features (paper Sections 3, 6.1.1).

Everything starts from :func:`load`, which returns a :class:`Dataset` of raw ratings plus user and
item attributes, and :func:`prepare`, which turns it into a :class:`Split`: the positive
interactions (rating > 3) with contiguous indices, a train/valid/test assignment along the global
timeline (or at random), the recent sequences S_u and S_i of every sample, and encoded side features.

Files come from, in this order:

1. ``$DQREC_DATA_DIR/<name>/`` — a local mirror laid out as the extracted original archive (read
   only, nothing is ever written there);
2. the download cache (``$DQREC_CACHE_DIR`` or the user's cache dir), filled by :mod:`pooch` from the
   original source, with a pinned checksum where the source publishes one.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

with warnings.catch_warnings():  # pooch imports tqdm.auto, which warns in a kernel without ipywidgets
    warnings.filterwarnings("ignore", message="IProgress not found")
    import pooch

POSITIVE_THRESHOLD = 3  # a rating above this is a positive (paper Section 6.1.1)
PAD = -1  # padding value in sequence arrays


class DataNotFoundError(FileNotFoundError):
    """Raised when a dataset is neither in the mirror, nor in the cache, nor downloadable."""


class DataFormatError(ValueError):
    """A data file whose content is not what its format promises: a bad value, a cut line, a wrong row count,
    a corrupt archive. The message names the file, the first bad line and what to do."""


# Plausible timestamps: no public rating data set predates 1990-01-01 (the oldest MovieLens rating is from
# 1995); a timestamp after "now" is a corrupt value. A cut line turns e.g. 881250949 into 8812: caught here.
MIN_TIMESTAMP = 631152000.0  # 1990-01-01T00:00:00Z
ORPHAN_AGE_S = 3600  # a download temporary untouched for this long belongs to a killed download


def _max_timestamp() -> float:
    return time.time() + 86400.0


def _where_hint(path: Path) -> str:
    """What to do about a bad file, depending on where it lives (cache: clear it; mirror: replace it)."""
    path = Path(path).absolute()
    for root, kind in ((cache_dir(), "cache"), (data_dir(), "mirror")):
        if root is None:
            continue
        try:
            rel = path.relative_to(Path(root).absolute())
        except ValueError:
            continue
        name = rel.parts[0] if len(rel.parts) > 1 else path.stem
        if kind == "cache":
            return (f"It is in the download cache: run dqrec.data.clear_cache({name!r}) and load again to download "
                    "a fresh copy.")
        return (f"It is in the mirror $DQREC_DATA_DIR={root}, which dqrec never writes: replace it with an intact copy "
                f"of the release (or unset DQREC_DATA_DIR to download {name!r} into the cache).")
    return "Replace it with an intact copy of the release."


def _line_text(path: Path, line: int, limit: int = 80) -> str:
    """Line ``line`` (1-based) of a text file, shortened, or '' if the file has fewer lines."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if n == line:
                text = raw.decode("latin-1").rstrip("\r\n")
                return text if len(text) <= limit else text[:limit] + "..."
    return ""


def _fail_rows(path: Path, checks, header_lines: int = 0, line_of=None) -> None:
    """Raise DataFormatError at the first row flagged by any ``(mask, problem)`` of ``checks``.

    Row r of the frame is line ``r + 1 + header_lines`` of the file (blank lines are read as rows), or
    ``line_of[r]`` when given. Only called once something is known to be wrong, so it may be slow.
    """
    masks = [(np.asarray(m, bool), problem) for m, problem in checks]
    bad = np.zeros(len(masks[0][0]), bool)
    for m, _ in masks:
        bad |= m
    first = int(np.argmax(bad))
    problem = next(p for m, p in masks if m[first])
    line = int(line_of[first]) if line_of is not None else first + 1 + header_lines
    n_bad = int(bad.sum())
    more = f" ({n_bad:,} rows are bad in all)" if n_bad > 1 else ""
    raise DataFormatError(f"{path}, line {line}: {problem}: {_line_text(path, line)!r}{more}. The file is corrupted, "
                          f"truncated or in another format. {_where_hint(path)}")


def _as_int_ids(col: pd.Series, minimum: int = 1):
    """(int64 values or None, mask of rows that are not integers >= minimum). Fast when the column is int."""
    if pd.api.types.is_integer_dtype(col.dtype) and not isinstance(col.dtype, pd.BooleanDtype):
        values = col.to_numpy(np.int64)
        bad = values < minimum
        return values, bad
    num = pd.to_numeric(col, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(num) & (num == np.floor(num)) & (num >= minimum))
    return (None if bad.any() else num.astype(np.int64)), bad


def _as_float(col: pd.Series) -> np.ndarray:
    return pd.to_numeric(col, errors="coerce").to_numpy(np.float64, na_value=np.nan)


def _string_ids(col: pd.Series):
    """String ids (Amazon): bad where empty or missing."""
    s = col if pd.api.types.is_string_dtype(col.dtype) else col.astype("string")
    return s, (s.isna() | (s.str.strip() == "")).to_numpy(bool)


def check_ratings(path: Path, df: pd.DataFrame, scale, header_lines: int = 0, id_kind: str = "int",
                  missing_time_max_rating: float | None = None, line_of=None) -> pd.DataFrame:
    """Validate and type raw rating rows ``user, item, rating, timestamp`` read from ``path``.

    ids: integers >= 1 (``id_kind="int"``) or non-empty strings (``"str"``); rating: one of ``scale``;
    timestamp: Unix seconds in [1990-01-01, now], never missing, except (the ML-1M mirror) on ratings
    <= ``missing_time_max_rating`` where an *empty* field is allowed. Vectorised; on failure raises
    DataFormatError naming the first bad line. Returns the typed frame.
    """
    checks, out = [], {}
    for c in ("user", "item"):
        if id_kind == "int":
            values, bad = _as_int_ids(df[c])
            checks.append((bad, f"the {c} id is not a positive integer"))
        else:
            values, bad = _string_ids(df[c])
            checks.append((bad, f"the {c} id is empty"))
        out[c] = values.array if isinstance(values, pd.Series) else values
    rating = _as_float(df["rating"])
    checks.append((~np.isin(rating, np.asarray(scale, np.float64)),
                   f"the rating is not one of {', '.join(f'{s:g}' for s in scale)}"))
    raw_t = df["timestamp"]
    t = _as_float(raw_t)
    with np.errstate(invalid="ignore"):
        bad_t = ~((t >= MIN_TIMESTAMP) & (t <= _max_timestamp()))
    if missing_time_max_rating is not None:
        empty = raw_t.isna().to_numpy(bool)  # an empty field, not a garbled one
        bad_t &= ~(empty & (rating <= missing_time_max_rating))
        checks.append((bad_t, f"the timestamp is missing, or not between 1990-01-01 and now (only ratings <= "
                              f"{missing_time_max_rating:g} may have an empty timestamp)"))
    else:
        checks.append((bad_t, "the timestamp is missing, or not between 1990-01-01 and now"))
    if any(m.any() for m, _ in checks):
        _fail_rows(path, checks, header_lines, line_of)
    return pd.DataFrame({"user": out["user"], "item": out["item"], "rating": rating.astype(np.float32),
                         "timestamp": t})


def _check_separators(path: Path, sep: bytes, per_line: int, n_rows: int, header_lines: int = 0) -> None:
    """Every line has exactly ``per_line`` separators: a byte count (fast); the line is located only on failure.

    Catches what the parser would silently drop, e.g. extra fields after the columns it reads.
    """
    raw = path.read_bytes()
    if raw.count(sep) == per_line * (n_rows + header_lines):  # a header has the same separators
        return
    for n, line in enumerate(raw.split(b"\n"), 1):
        if n > header_lines and line.strip(b"\r") and line.count(sep) != per_line:
            raise DataFormatError(f"{path}, line {n}: {line.count(sep)} field separators {sep.decode()!r}, the format "
                                  f"has {per_line}: {_line_text(path, n)!r}. The file is corrupted, truncated or in "
                                  f"another format. {_where_hint(path)}")


def _read_table(path: Path, **kwargs) -> pd.DataFrame:
    """pd.read_csv keeping blank lines as rows (so row r is a known line) and naming the file on a parse error."""
    kwargs.setdefault("skip_blank_lines", False)
    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataFormatError(f"{path}: {type(err).__name__}: {str(err).strip()}. The file is corrupted, truncated or "
                              f"in another format. {_where_hint(path)}") from err
    except pd.errors.EmptyDataError as err:
        raise DataFormatError(f"{path} is empty. {_where_hint(path)}") from err


def _check_ids(path: Path, ids: pd.Series, what: str, header_lines: int = 0) -> np.ndarray:
    """Integer ids of a side file (users, items), unique; DataFormatError at the first bad line."""
    values, bad = _as_int_ids(ids)
    if bad.any():
        _fail_rows(path, [(bad, f"the {what} id is not a positive integer")], header_lines)
    dup = pd.Series(values).duplicated().to_numpy()
    if dup.any():
        _fail_rows(path, [(dup, f"the {what} id appears twice")], header_lines)
    return values


def _check_known(path: Path, ratings: pd.DataFrame, col: str, known, side_file: str, header_lines: int = 0):
    """Every rating's user (item) is listed in the side file, else its features would silently be missing."""
    unknown = ~np.isin(ratings[col].to_numpy(), np.asarray(known))
    if unknown.any():
        _fail_rows(path, [(unknown, f"the {col} is not listed in {side_file}")], header_lines)


def _check_side_rows(path: Path, checks, header_lines: int = 0) -> None:
    if any(np.asarray(m).any() for m, _ in checks):
        _fail_rows(path, checks, header_lines)


# --------------------------------------------------------------------------------------------
# Dataset registry
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset comes from and which files of the extracted archive the parser reads."""

    name: str
    files: tuple[str, ...]  # files (relative to the dataset folder) that must exist
    parser: Callable[[Path], "Dataset"]
    url: str | None = None  # archive to download; None: the user supplies the files
    known_hash: str | None = None  # pooch hash of the archive ("md5:..."/"sha256:...")
    archive_folder: str | None = None  # folder inside the archive holding `files`
    file_hashes: dict = field(default_factory=dict)  # sha256 of extracted files, when published
    how_to_get: str = ""
    n_ratings: int | None = None  # published number of ratings of a fixed release
    ratings_file: str = ""  # the file holding them, and its header lines
    header_lines: int = 0


@dataclass
class Dataset:
    """Raw data of one dataset.

    ratings: DataFrame ``user, item, rating, timestamp`` with the source's ids; ``timestamp`` is
        Unix seconds (float, NaN where the source has none). All rows are kept, so counts are exact.
    users: DataFrame indexed by raw user id with categorical attribute columns (may have none).
    items: DataFrame indexed by raw item id: ``title`` and attributes (``genres`` as a
        ``|``-separated string, ``year``, ...).
    source: the folder the files were read from; checksum: sha256 over the bytes of the files read
        (also ``file_checksum``): it differs between the mirror and a download of the same release.
    content_checksum: sha256 of the data actually used (positives and side features, see
        :meth:`content_checksum_at`): equal for the mirror and a download of the same release. It is the
        ``checksum`` that :func:`prepare` puts in ``Split.params`` (and so in run keys).
    """

    name: str
    ratings: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    source: str = ""
    checksum: str = ""

    @property
    def file_checksum(self) -> str:
        """sha256 over the files read (the same as ``checksum``)."""
        return self.checksum

    @property
    def content_checksum(self) -> str:
        """sha256 of the positives (rating > 3) and side features: see :meth:`content_checksum_at`."""
        return self.content_checksum_at(POSITIVE_THRESHOLD)

    def content_checksum_at(self, threshold: float = POSITIVE_THRESHOLD) -> str:
        """sha256 of what :func:`prepare` uses at ``threshold``: the positive (user, item, timestamp) rows
        in the canonical time order, the raw ids, and the users' and items' attributes of those ids.

        Independent of file bytes, row order, extra files and the ratings <= threshold (whose timestamps
        our ML-1M mirror lacks), so the mirror and a fresh download of a release give the same value.
        """
        inter, user_ids, item_ids = _positive_interactions(self.ratings, threshold)
        inter = inter.sort_values(["timestamp", "user", "item"], kind="stable")
        return _content_digest(inter, user_ids, item_ids, self.users, self.items)

    def stats(self, threshold: float = POSITIVE_THRESHOLD) -> pd.DataFrame:
        """Users, items, interactions and density for all ratings and for positives (Table 2)."""
        rows = []
        for subset, r in (("all", self.ratings), ("positive", self.ratings[self.ratings.rating > threshold])):
            n_u, n_i = r.user.nunique(), r.item.nunique()
            rows.append(dict(dataset=self.name, subset=subset, users=n_u, items=n_i,
                             interactions=len(r), density_percent=100 * len(r) / max(n_u * n_i, 1)))
        return pd.DataFrame(rows)


def _sha256(paths) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _year_from_title(titles: pd.Series) -> pd.Series:
    return pd.to_numeric(titles.str.extract(r"\((\d{4})\)\s*$", expand=False), errors="coerce")


# ----------------------------------------------------------------------------- MovieLens parsers
ML_SCALE = (1.0, 2.0, 3.0, 4.0, 5.0)
ML_LATEST_SCALE = tuple(np.arange(1, 11) / 2.0)  # 0.5 .. 5 in half stars


def _require_columns(path: Path, df: pd.DataFrame, columns) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataFormatError(f"{path}: the header lacks the column(s) {missing} (found {list(df.columns)}). The file "
                              f"is corrupted or in another format. {_where_hint(path)}")


def _read_ml_ratings_dat(path: Path) -> pd.DataFrame:
    """``UserID::MovieID::Rating::Timestamp``, checked row by row (vectorised).

    An empty timestamp is kept as NaN only on ratings <= 3: our ML-1M mirror has exactly those (the
    GroupLens file has none); anything else empty or out of range is an error naming its line.
    """
    # Splitting on ":" lets the fast C parser read "::" files; fields 1, 3, 5 are empty.
    df = _read_table(path, sep=":", header=None, usecols=[0, 2, 4, 6], engine="c", quoting=3,
                     names=["user", "_a", "item", "_b", "rating", "_c", "timestamp"])
    df = check_ratings(path, df, ML_SCALE, missing_time_max_rating=POSITIVE_THRESHOLD)
    _check_separators(path, b":", 6, len(df))
    missing = int(df.timestamp.isna().sum())
    if missing:
        warnings.warn(f"{path}: {missing:,} ratings have no timestamp; they are kept for counts "
                      "but cannot take part in time-ordered splits", stacklevel=3)
    return df


def _parse_ml_1m(folder: Path) -> Dataset:
    ratings = _read_ml_ratings_dat(folder / "ratings.dat")
    path = folder / "users.dat"
    users = _read_table(path, sep=":", header=None, usecols=[0, 2, 4, 6], engine="c",
                        names=["user", "_a", "gender", "_b", "age", "_c", "occupation", "_d", "zip"],
                        dtype={"gender": str, "age": str, "occupation": str})
    users["user"] = _check_ids(path, users.user, "user")
    occupation = pd.to_numeric(users.occupation, errors="coerce")
    _check_side_rows(path, [(~users.gender.isin(["M", "F"]), "the gender is not M or F"),
                            (~users.age.isin([str(a) for a in ML1M_AGE_BUCKETS]),
                             f"the age is not one of ML-1M's codes {ML1M_AGE_BUCKETS}"),
                            (~occupation.between(0, 20), "the occupation is not a code 0-20")])
    users = users.set_index("user")
    path = folder / "movies.dat"
    items = _read_table(path, sep="::", header=None, engine="python", encoding="latin-1",
                        names=["item", "title", "genres"])
    items["item"] = _check_ids(path, items.item, "movie")
    _check_side_rows(path, [(items.title.isna(), "the title is missing")])
    items = items.set_index("item")
    items["year"] = _year_from_title(items.title)
    _check_known(folder / "ratings.dat", ratings, "user", users.index, "users.dat")
    _check_known(folder / "ratings.dat", ratings, "item", items.index, "movies.dat")
    return Dataset("ml-1m", ratings, users, items)


ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                 "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                 "Romance", "Sci-Fi", "Thriller", "War", "Western"]
ML1M_AGE_BUCKETS = [1, 18, 25, 35, 45, 50, 56]  # ML-1M's age codes: lower edge of each bucket


def _parse_ml_100k(folder: Path) -> Dataset:
    path = folder / "u.data"
    raw = _read_table(path, sep="\t", header=None, names=["user", "item", "rating", "timestamp"], quoting=3)
    ratings = check_ratings(path, raw, ML_SCALE)
    _check_separators(path, b"\t", 3, len(ratings))
    path = folder / "u.user"
    users = _read_table(path, sep="|", header=None, names=["user", "age", "gender", "occupation", "zip"],
                        dtype={"gender": str, "occupation": str})
    users["user"] = _check_ids(path, users.user, "user")
    age = pd.to_numeric(users.age, errors="coerce")
    _check_side_rows(path, [(~(age.between(1, 120) & (age == np.floor(age))), "the age is not a whole number 1-120"),
                            (~users.gender.isin(["M", "F"]), "the gender is not M or F"),
                            (users.occupation.isna(), "the occupation is missing")])
    users = users.set_index("user")
    # Bucket ages as ML-1M does so both datasets share one feature vocabulary.
    users["age"] = pd.Series(np.asarray(ML1M_AGE_BUCKETS)[np.searchsorted(ML1M_AGE_BUCKETS, age.to_numpy(), side="right") - 1],
                             index=users.index).astype(str)
    path = folder / "u.item"
    cols = ["item", "title", "release", "video", "url"] + ML100K_GENRES
    raw = _read_table(path, sep="|", header=None, names=cols, encoding="latin-1")
    raw["item"] = _check_ids(path, raw.item, "movie")
    flags = raw[ML100K_GENRES].apply(pd.to_numeric, errors="coerce")
    _check_side_rows(path, [(~flags.isin([0, 1]).all(axis=1), "a genre flag is not 0 or 1")])
    raw = raw.set_index("item")
    flags = flags.to_numpy(bool)
    genres = ["|".join(np.asarray(ML100K_GENRES)[row]) for row in flags]
    items = pd.DataFrame({"title": raw.title, "genres": genres,
                          "year": pd.to_datetime(raw.release, format="%d-%b-%Y", errors="coerce").dt.year},
                         index=raw.index)
    _check_known(folder / "u.data", ratings, "user", users.index, "u.user")
    _check_known(folder / "u.data", ratings, "item", items.index, "u.item")
    return Dataset("ml-100k", ratings, users[["gender", "age", "occupation"]], items)


def _parse_ml_latest_small(folder: Path) -> Dataset:
    path = folder / "ratings.csv"
    raw = _read_table(path, quoting=3)
    _require_columns(path, raw, ["userId", "movieId", "rating", "timestamp"])
    raw = raw.rename(columns={"userId": "user", "movieId": "item"})
    ratings = check_ratings(path, raw, ML_LATEST_SCALE, header_lines=1)
    _check_separators(path, b",", 3, len(ratings), header_lines=1)
    path = folder / "movies.csv"
    items = _read_table(path)
    _require_columns(path, items, ["movieId", "title", "genres"])
    items = items.rename(columns={"movieId": "item"})
    items["item"] = _check_ids(path, items.item, "movie", header_lines=1)
    items = items.set_index("item")
    items["genres"] = items.genres.replace("(no genres listed)", "")
    items["year"] = _year_from_title(items.title)
    _check_known(folder / "ratings.csv", ratings, "item", items.index, "movies.csv", header_lines=1)
    return Dataset("ml-latest-small", ratings, pd.DataFrame(index=pd.Index(sorted(ratings.user.unique()), name="user")), items)


# ----------------------------------------------------------------------------- Amazon parsers
def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def _first_existing(folder: Path, names) -> Path | None:
    return next((folder / n for n in names if (folder / n).exists()), None)


def _price_bucket(price: pd.Series) -> pd.Series:
    p = pd.to_numeric(price.astype(str).str.replace(r"[^0-9.]", "", regex=True), errors="coerce")
    return pd.cut(p, [0, 5, 10, 20, 50, np.inf], labels=["<5", "5-10", "10-20", "20-50", ">50"]).astype(str)


def kcore_filter(ratings: pd.DataFrame, min_user: int, min_item: int, max_rounds: int = 100) -> pd.DataFrame:
    """Drop users with < ``min_user`` and items with < ``min_item`` ratings, repeated until stable."""
    for _ in range(max_rounds):
        u, i = ratings.user.map(ratings.user.value_counts()), ratings.item.map(ratings.item.value_counts())
        keep = (u >= min_user) & (i >= min_item)
        if keep.all():
            return ratings
        ratings = ratings[keep]
    return ratings


AMAZON_SCALE = (1.0, 2.0, 3.0, 4.0, 5.0)


def kcore_table(ratings: pd.DataFrame, ks=range(1, 11)) -> pd.DataFrame:
    """Per k (index): the users, items and positives left in the k-core of the positives of ``ratings``
    (:func:`kcore_filter` with k on both sides), and the density in % the *raw* rating count would have
    over those users and items (how a paper's Table 2 may have been computed)."""
    pos = ratings[ratings.rating > POSITIVE_THRESHOLD]
    rows = []
    for k in ks:
        core = kcore_filter(pos, k, k)
        n_u, n_i = core.user.nunique(), core.item.nunique()
        rows.append(dict(k=k, users=n_u, items=n_i, positives=len(core),
                         raw_count_density=round(100 * len(ratings) / (n_u * n_i), 2)))
    return pd.DataFrame(rows).set_index("k")


def load_available(names, download=()) -> tuple[dict[str, "Dataset"], dict[str, str]]:
    """Load each of ``names`` from the mirror or the cache, downloading only those in ``download``:
    ({name: Dataset} of those at hand, {name: the first sentence of why not} of the others)."""
    loaded, missing = {}, {}
    for name in names:
        try:
            loaded[name] = load(name, download=name in download)
        except DataNotFoundError as err:
            missing[name] = str(err).split(".")[0]
    return loaded, missing


def _parse_amazon_books_2023(folder: Path, min_user: int = 30, min_item: int = 10) -> Dataset:
    """Amazon Reviews 2023 Books, rating-only CSV ``user_id,parent_asin,rating,timestamp`` (ms)."""
    path = _first_existing(folder, ["Books.csv.gz", "Books.csv"])
    raw = _read_table(path, dtype={"user_id": str, "parent_asin": str})
    _require_columns(path, raw, ["user_id", "parent_asin", "rating", "timestamp"])
    raw = pd.DataFrame({"user": raw.user_id, "item": raw.parent_asin, "rating": raw.rating,
                        "timestamp": _as_float(raw.timestamp) / 1000.0})  # milliseconds -> seconds
    ratings = check_ratings(path, raw, AMAZON_SCALE, header_lines=1, id_kind="str")
    ratings = ratings.drop_duplicates(["user", "item"], keep="last")
    ratings = kcore_filter(ratings, min_user, min_item).reset_index(drop=True)
    items = pd.DataFrame(index=pd.Index(ratings.item.unique(), name="item"))
    meta = _first_existing(folder, ["meta_Books.jsonl.gz", "meta_Books.jsonl"])
    if meta is not None:
        wanted = set(items.index)
        rows = []
        with _open_text(meta) as f:
            for n, line in enumerate(f, 1):
                try:
                    m = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataFormatError(f"{meta}, line {n}: not a JSON record ({err}). {_where_hint(meta)}") from err
                if m.get("parent_asin") in wanted:
                    cats = m.get("categories") or []
                    rows.append(dict(item=m["parent_asin"], title=m.get("title", ""),
                                     category=cats[1] if len(cats) > 1 else (cats[0] if cats else ""),
                                     store=m.get("store") or "", price=m.get("price")))
        meta_df = pd.DataFrame(rows, columns=["item", "title", "category", "store", "price"])
        meta_df = meta_df.drop_duplicates("item").set_index("item")
        meta_df["price"] = _price_bucket(meta_df.price)
        items = items.join(meta_df)
    return Dataset("amazon-books-2023", ratings, pd.DataFrame(index=pd.Index(ratings.user.unique(), name="user")), items)


def _parse_amazon_2018_ratings(folder: Path) -> Dataset:
    """Amazon Review Data 2018 'ratings only' CSV (no header): ``item,user,rating,timestamp``."""
    path = next(folder.glob("*.csv"))
    raw = _read_table(path, header=None, names=["item", "user", "rating", "timestamp"], dtype={"item": str, "user": str})
    ratings = check_ratings(path, raw, AMAZON_SCALE, id_kind="str")
    _check_separators(path, b",", 3, len(ratings))
    ratings = ratings.drop_duplicates(["user", "item"], keep="last").reset_index(drop=True)
    return Dataset(folder.name, ratings[["user", "item", "rating", "timestamp"]],
                   pd.DataFrame(index=pd.Index(ratings.user.unique(), name="user")),
                   pd.DataFrame(index=pd.Index(ratings.item.unique(), name="item")))


# ----------------------------------------------------------------------------- Netflix parsers
NETFLIX_SCALE = (1.0, 2.0, 3.0, 4.0, 5.0)


def _read_netflix_titles(folder: Path) -> pd.DataFrame:
    path = _first_existing(folder, ["movie_titles.txt", "movie_titles.csv", "movie-titles.csv"])
    if path is None:
        raise DataNotFoundError(f"{folder} lacks movie_titles.txt (or movie_titles.csv). {NETFLIX_HOWTO}")
    rows = []
    with open(path, encoding="latin-1") as f:
        for line in f:
            parts = line.rstrip("\n").split(",", 2)  # titles contain commas
            if parts[0].isdigit():
                if len(parts) < 3:
                    raise DataFormatError(f"{path}: the line {line.strip()!r} has no title. {_where_hint(path)}")
                rows.append((int(parts[0]), pd.to_numeric(parts[1], errors="coerce"), parts[2]))
    return pd.DataFrame(rows, columns=["item", "year", "title"]).set_index("item")


def _netflix_seconds(dates: pd.Series) -> pd.Series:
    """``YYYY-MM-DD`` -> Unix seconds (NaN where not a date: check_ratings names the line)."""
    return (pd.to_datetime(dates, format="%Y-%m-%d", errors="coerce") - pd.Timestamp(0)) / pd.Timedelta(seconds=1)


def _read_netflix_blocks(paths) -> pd.DataFrame:
    """Original Prize format: a ``MovieID:`` line, then ``CustomerID,Rating,Date`` lines."""
    frames = []
    for path in paths:
        df = _read_table(path, header=None, names=["user", "rating", "date"], dtype=str)
        is_movie = df.user.str.endswith(":").fillna(False).to_numpy(bool)
        movie = df.user.where(is_movie).str.rstrip(":")
        values, bad = _as_int_ids(movie[is_movie])
        if bad.any():
            _fail_rows(path, [(bad, "the MovieID line is not an integer followed by ':'")],
                       line_of=np.flatnonzero(is_movie) + 1)
        if len(df) and not is_movie[0]:
            _fail_rows(path, [(np.r_[True, np.zeros(len(df) - 1, bool)], "the file does not start with a MovieID line")])
        item = pd.Series(np.nan, index=df.index)
        item[is_movie] = values
        item = item.ffill()
        rows = np.flatnonzero(~is_movie)
        raw = pd.DataFrame({"user": df.user.to_numpy()[rows], "item": item.to_numpy()[rows],
                            "rating": df.rating.to_numpy()[rows], "timestamp": _netflix_seconds(df.date.iloc[rows]).to_numpy()})
        frames.append(check_ratings(path, raw, NETFLIX_SCALE, line_of=rows + 1))
    return pd.concat(frames, ignore_index=True)


def _parse_netflix(folder: Path, n_users: int | None = None, seed: int = 0) -> Dataset:
    """Netflix Prize from its original files (``combined_data_*.txt`` or ``training_set/mv_*.txt``).

    ``n_users``: keep a seeded random subset of users (the paper's subset has 5,808 users).
    """
    paths = sorted(folder.glob("combined_data_*.txt")) or sorted((folder / "training_set").glob("mv_*.txt"))
    ratings = _read_netflix_blocks(paths)
    if n_users is not None and ratings.user.nunique() > n_users:
        keep = np.random.default_rng(seed).choice(ratings.user.unique(), n_users, replace=False)
        ratings = ratings[ratings.user.isin(keep)].reset_index(drop=True)
    return Dataset("netflix", ratings, pd.DataFrame(index=pd.Index(ratings.user.unique(), name="user")),
                   _read_netflix_titles(folder))


def _parse_netflix_sample(folder: Path) -> Dataset:
    """Flattened Prize rows ``MovieID,UserID,Rating,Date`` (a 10k random sample, for format tests)."""
    path = folder / "netflix-user-ratings-10k.csv"
    df = _read_table(path, dtype={"Date": str})
    _require_columns(path, df, ["MovieID", "UserID", "Rating", "Date"])
    raw = pd.DataFrame({"user": df.UserID, "item": df.MovieID, "rating": df.Rating, "timestamp": _netflix_seconds(df.Date)})
    ratings = check_ratings(path, raw, NETFLIX_SCALE, header_lines=1)
    return Dataset("netflix-prize-sample", ratings, pd.DataFrame(index=pd.Index(ratings.user.unique(), name="user")),
                   _read_netflix_titles(folder))


GROUPLENS = "https://files.grouplens.org/datasets/movielens/"
AMAZON_2023 = "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_2023/"
NETFLIX_HOWTO = ("The Netflix Prize data is no longer distributed by Netflix. Get `training_set.tar` and "
                 "`movie_titles.txt` from the archive.org item 'nf_prize_dataset.tar.gz', or the Kaggle dataset "
                 "'netflix-inc/netflix-prize-data' (`combined_data_1..4.txt`, `movie_titles.csv`), and put them in "
                 "$DQREC_DATA_DIR/netflix/.")

DATASETS: dict[str, DatasetSpec] = {
    "ml-100k": DatasetSpec("ml-100k", ("u.data", "u.item", "u.user"), _parse_ml_100k, GROUPLENS + "ml-100k.zip",
                           "md5:0e33842e24a9c977be4e0107933c0723", "ml-100k",
                           n_ratings=100_000, ratings_file="u.data"),
    "ml-1m": DatasetSpec("ml-1m", ("ratings.dat", "users.dat", "movies.dat"), _parse_ml_1m, GROUPLENS + "ml-1m.zip",
                         "md5:c4d9eecfca2ab87c1945afe126590906", "ml-1m",
                         n_ratings=1_000_209, ratings_file="ratings.dat"),
    # ml-latest-small is re-issued over time and we have no verified archive checksum for it; we
    # pin the files of the 2018 release instead (sha256 of the extracted ratings.csv and movies.csv).
    "ml-latest-small": DatasetSpec(
        "ml-latest-small", ("ratings.csv", "movies.csv"), _parse_ml_latest_small, GROUPLENS + "ml-latest-small.zip",
        None, "ml-latest-small",
        {"ratings.csv": "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
         "movies.csv": "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07"},
        n_ratings=100_836, ratings_file="ratings.csv", header_lines=1),
    # The paper's Books set: users with >= 30 and items with >= 10 ratings. The files are large
    # (the rating-only CSV alone is ~1 GB) and UCSD publishes no checksum: the sha256 we read is
    # recorded in the Dataset's `checksum`.
    "amazon-books-2023": DatasetSpec(
        "amazon-books-2023", ("Books.csv.gz",), _parse_amazon_books_2023,
        AMAZON_2023 + "benchmark/0core/rating_only/Books.csv.gz",
        how_to_get="Optional item metadata: " + AMAZON_2023 + "raw/meta_categories/meta_Books.jsonl.gz"),
    "amazon-2018-small": DatasetSpec(
        "amazon-2018-small", ("Magazine_Subscriptions.csv",), _parse_amazon_2018_ratings,
        how_to_get="Amazon Review Data (2018) 'ratings only' files: https://nijianmo.github.io/amazon/"),
    "netflix": DatasetSpec("netflix", (), _parse_netflix, how_to_get=NETFLIX_HOWTO),
    "netflix-prize-sample": DatasetSpec("netflix-prize-sample", ("netflix-user-ratings-10k.csv", "movie-titles.csv"),
                                        _parse_netflix_sample, how_to_get=NETFLIX_HOWTO),
}


def data_dir() -> Path | None:
    """The offline mirror named by ``$DQREC_DATA_DIR`` (None when unset)."""
    d = os.environ.get("DQREC_DATA_DIR")
    return Path(d) if d else None


def cache_dir() -> Path:
    """Where downloads are cached: ``$DQREC_CACHE_DIR`` or the user's cache dir (never the mirror)."""
    return Path(os.environ.get("DQREC_CACHE_DIR") or pooch.os_cache("dqrec"))


def _missing_files(folder: Path, spec: DatasetSpec) -> list[str]:
    """The files of ``spec`` that ``folder`` lacks (alternatives written 'a or b')."""
    if spec.name == "netflix":
        ok = any(folder.glob("combined_data_*.txt")) or any((folder / "training_set").glob("mv_*.txt"))
        return [] if ok else ["combined_data_*.txt or training_set/mv_*.txt"]
    if spec.name == "amazon-books-2023":
        return [] if _first_existing(folder, ["Books.csv.gz", "Books.csv"]) is not None else ["Books.csv.gz or Books.csv"]
    return [f for f in spec.files if not (folder / f).exists()]


def _has_files(folder: Path, spec: DatasetSpec) -> bool:
    return folder.is_dir() and not _missing_files(folder, spec)


def _check_file_hashes(folder: Path, spec: DatasetSpec) -> None:
    for name, expected in spec.file_hashes.items():
        got = _sha256([folder / name])
        if got != expected:
            raise DataFormatError(f"{folder / name}: sha256 {got} does not match the pinned {expected}. The file is "
                                  f"corrupted or from another release. {_where_hint(folder / name)}")


def locate(name: str, download: bool = True) -> Path:
    """Folder holding the files of dataset ``name``: the mirror, else the cache, else a download.

    A mirror folder ``$DQREC_DATA_DIR/<name>/`` that exists but lacks a file is an error naming the file
    (nothing is downloaded behind the user's back).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    spec = DATASETS[name]
    mirror = data_dir()
    if mirror is not None and (mirror / name).is_dir():
        missing = _missing_files(mirror / name, spec)
        if missing:
            raise DataNotFoundError(
                f"the mirror folder {mirror / name} ($DQREC_DATA_DIR/{name}) exists but lacks {', '.join(missing)}. "
                f"Copy the missing file(s) there, or unset DQREC_DATA_DIR to use the download cache. "
                f"{spec.how_to_get}".strip())
        return mirror / name
    cached = cache_dir() / name
    if _has_files(cached, spec):
        return cached
    expected = ", ".join(spec.files) or "combined_data_*.txt or training_set/mv_*.txt, plus movie_titles"
    where = f"$DQREC_DATA_DIR={mirror}" if mirror is not None else "$DQREC_DATA_DIR is not set"
    if spec.url is None or not download:
        raise DataNotFoundError(f"dataset {name!r} not found: expected {expected} in {cached} or in "
                                f"$DQREC_DATA_DIR/{name}/ ({where}). {spec.how_to_get}".strip())
    return _download(spec, cached, expected, where)


def _archive(spec: DatasetSpec) -> Path:
    return cache_dir() / spec.url.rsplit("/", 1)[-1]


def _is_orphan(p: Path, min_age: float) -> bool:
    """A leftover of a killed download (pooch's ``tmp*`` files) or extraction (``.<name>.extract-*``)."""
    if not (p.name.startswith("tmp") or ".extract-" in p.name):
        return False
    try:
        return time.time() - p.stat().st_mtime >= min_age
    except FileNotFoundError:
        return False


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def _clean_orphans(folder: Path, min_age: float = ORPHAN_AGE_S) -> list[Path]:
    removed = []
    if folder.is_dir():
        for p in folder.iterdir():
            if _is_orphan(p, min_age):
                _remove(p)
                removed.append(p)
    return removed


def clear_cache(name: str) -> list[Path]:
    """Delete dataset ``name`` from the download cache: its archive, its extracted folder and leftovers of
    interrupted downloads. The next :func:`load` downloads it afresh. The mirror ($DQREC_DATA_DIR) is
    never touched. Returns the paths removed.

    >>> from dqrec import data
    >>> data.clear_cache("ml-1m")   # doctest: +SKIP
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    spec, cache = DATASETS[name], cache_dir()
    targets = [cache / name] + ([_archive(spec)] if spec.url else [])
    targets += sorted(cache.glob(f".{name}.extract-*")) if cache.is_dir() else []
    removed = [p for p in targets if p.exists() or p.is_symlink()]
    for p in removed:
        _remove(p)
    return removed + _clean_orphans(cache, min_age=60.0)


def _download(spec: DatasetSpec, target: Path, expected: str, where: str) -> Path:
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    _clean_orphans(cache)
    archive, note = _archive(spec), ""
    if archive.exists() and spec.known_hash and not _hash_matches(archive, spec.known_hash):
        # pooch would silently try to download over it; say what happened if that fails.
        archive.unlink()
        note = (f"The cached archive {archive} was corrupt (its {spec.known_hash.split(':')[0]} does not match the "
                f"published {spec.known_hash}) and has been removed. ")
    try:
        path = Path(pooch.retrieve(spec.url, known_hash=spec.known_hash, fname=archive.name, path=cache,
                                   progressbar=True))
    except ValueError as err:  # pooch's checksum mismatch of a fresh download: never retried silently
        raise DataFormatError(
            f"{note}the file downloaded from {spec.url} is not the published release: {err}. Nothing was kept; "
            f"try again later, or get the files by hand into $DQREC_DATA_DIR/{spec.name}/ ({where}).") from err
    except Exception as err:  # network errors of all kinds
        raise DataNotFoundError(
            f"{note}could not download {spec.url} ({type(err).__name__}: {err}). Offline, set DQREC_DATA_DIR to a "
            f"folder holding {spec.name}/ with {expected} ({where}). {spec.how_to_get}".strip()) from err
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}.extract-", dir=cache))
    try:
        if path.name.endswith(".zip"):
            _extract_zip(path, tmp, spec)
        else:
            os.replace(path, tmp / path.name)
        missing = _missing_files(tmp, spec)
        if missing:
            path.unlink(missing_ok=True)
            raise DataFormatError(f"the archive downloaded from {spec.url} lacks {', '.join(missing)} (another "
                                  f"layout or release?); it has been removed.")
        try:
            _check_file_hashes(tmp, spec)
        except DataFormatError as err:
            path.unlink(missing_ok=True)
            raise DataFormatError(f"{err} The archive {path} has been removed; the next load downloads it "
                                  "again.") from err
        if target.exists() or target.is_symlink():
            _remove(target)  # an incomplete folder of an older extraction
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _hash_matches(path: Path, known_hash: str) -> bool:
    alg, _, value = known_hash.partition(":")
    return pooch.file_hash(str(path), alg=alg).lower() == value.lower()


def _extract_zip(archive: Path, into: Path, spec: DatasetSpec) -> None:
    """Extract the files under ``spec.archive_folder`` of a zip into ``into``; a bad zip is removed."""
    try:
        with zipfile.ZipFile(archive) as z:
            bad = z.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(f"CRC error in member {bad}")
            for member in z.namelist():
                rel = Path(member).relative_to(spec.archive_folder) if spec.archive_folder else Path(member)
                if member.endswith("/") or str(rel) == ".":
                    continue
                if rel.is_absolute() or ".." in rel.parts:
                    raise zipfile.BadZipFile(f"unsafe member path {member!r}")
                (into / rel).parent.mkdir(parents=True, exist_ok=True)
                (into / rel).write_bytes(z.read(member))
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as err:
        archive.unlink(missing_ok=True)
        raise DataFormatError(f"{archive} is not a valid zip archive ({type(err).__name__}: {err}): a corrupt or "
                              "truncated download. It has been removed; load again to download it afresh.") from err


def load(name: str, download: bool = True, check_counts: bool = True, **options) -> Dataset:
    """Load dataset ``name`` (see ``DATASETS``); ``options`` go to its parser (e.g. ``n_users`` for Netflix).

    Every row is checked (ids, rating scale, plausible timestamps); a fixed release (ML-100K, ML-1M,
    ml-latest-small) must also have its published number of ratings unless ``check_counts=False``
    (for small fixtures in the original format). Any problem raises :class:`DataFormatError` naming the
    file, the first bad line and what to do (for the download cache: :func:`clear_cache`).
    """
    folder = locate(name, download=download)
    spec = DATASETS[name]
    _check_file_hashes(folder, spec)
    try:
        ds = spec.parser(folder, **options)
    except DataFormatError as err:
        raise DataFormatError(f"could not parse {name!r}: {err}") from err
    except (pd.errors.ParserError, ValueError, KeyError, UnicodeDecodeError, EOFError, OSError) as err:
        raise DataFormatError(f"could not parse {name!r} from {folder}: {type(err).__name__}: {err}. "
                              f"The files may be corrupted or in another format. {_where_hint(folder / 'x')}") from err
    if check_counts and spec.n_ratings is not None and len(ds.ratings) != spec.n_ratings:
        _count_error(folder / spec.ratings_file, len(ds.ratings), spec)
    read = [p for p in folder.rglob("*") if p.is_file() and not p.name.endswith((".md", "README"))]
    ds.name, ds.source, ds.checksum = name, str(folder), _sha256(read)
    return ds


def _count_error(path: Path, n: int, spec: DatasetSpec) -> None:
    first = spec.header_lines + min(n, spec.n_ratings) + 1
    what = (f"ends after line {spec.header_lines + n}: the file is truncated (line {first} onwards is missing)"
            if n < spec.n_ratings else f"has extra rows from line {first} on")
    raise DataFormatError(f"{path} has {n:,} ratings, the {spec.name} release has {spec.n_ratings:,}; it {what}. "
                          f"{_where_hint(path)} (load(..., check_counts=False) reads it anyway.)")


# --------------------------------------------------------------------------------------------
# Processing: positives, splits, sequences, features
# --------------------------------------------------------------------------------------------
@dataclass
class FeatureTable:
    """Encoded side features of the users (or items), one row per index.

    categorical: (n, F) int64 codes, 0 = unknown; cardinalities[f] includes the 0 code.
    multi_hot: (n, G) float32 0/1 matrix of a multi-valued field (genres), G may be 0.
    """

    categorical: np.ndarray
    cardinalities: list[int]
    names: list[str]
    multi_hot: np.ndarray
    multi_names: list[str]

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, ids: np.ndarray, categorical: list[str], multi: str | None = None):
        frame = frame.reindex(ids)
        cats, cards, names = [], [], []
        for col in categorical:
            if col not in frame:
                continue
            codes, uniques = pd.factorize(frame[col].astype("string"), sort=True)  # NaN -> -1
            cats.append(codes + 1)
            cards.append(len(uniques) + 1)
            names.append(col)
        cat = np.stack(cats, 1).astype(np.int64) if cats else np.zeros((len(ids), 0), np.int64)
        if multi is not None and multi in frame:
            dummies = frame[multi].fillna("").str.get_dummies(sep="|")
            mh, mnames = dummies.to_numpy(np.float32), list(dummies.columns)
        else:
            mh, mnames = np.zeros((len(ids), 0), np.float32), []
        return cls(cat, cards, names, mh, mnames)


USER_FEATURES = ["gender", "age", "occupation"]
ITEM_FEATURES = ["year", "category", "store", "price"]


@dataclass
class Split:
    """Positive interactions of one dataset, split into train/valid/test, with sequences.

    samples: DataFrame ``user, item, timestamp, part`` with contiguous int indices, one row per
        positive, sorted along the global timeline (ties broken by user, then item); ``part`` is
        ``"train"``, ``"valid"`` or ``"test"``. Row ``r`` is sample ``r`` everywhere below.
    user_seq: (N, S) int32, the items u interacted with strictly before t, most recent first, PAD=-1.
    item_seq: (N, S) int32, the users who interacted with i strictly before t, most recent first.
    user_ids / item_ids: raw id of each index. user_features / item_features: encoded attributes.
    """

    name: str
    kind: str
    samples: pd.DataFrame
    user_seq: np.ndarray
    item_seq: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    user_features: FeatureTable
    item_features: FeatureTable
    items: pd.DataFrame  # raw item attributes, aligned with the item index (titles for the book)
    params: dict = field(default_factory=dict)
    # The parts models fit on (``train``); ("train", "valid", "test") is the forensic "training on
    # evaluation data" cell, never a default.
    train_parts: tuple = ("train",)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def part(self, name: str) -> pd.DataFrame:
        return self.samples[self.samples.part == name]

    @property
    def train(self) -> pd.DataFrame:
        return self.samples[self.samples.part.isin(self.train_parts)]

    @property
    def valid(self) -> pd.DataFrame:
        return self.part("valid")

    @property
    def test(self) -> pd.DataFrame:
        return self.part("test")

    def matrix(self, parts=("train",)) -> sp.csr_matrix:
        """(n_users, n_items) binary CSR of the positives in ``parts``."""
        s = self.samples[self.samples.part.isin(parts)]
        m = sp.csr_matrix((np.ones(len(s), np.float32), (s.user.to_numpy(), s.item.to_numpy())),
                          shape=(self.n_users, self.n_items))
        m.data[:] = 1.0
        return m

    def known(self) -> sp.csr_matrix:
        """All known positives (train + valid + test), for excluding a user's other positives."""
        return self.matrix(("train", "valid", "test"))

    def last_train_sample(self, side: str = "user") -> np.ndarray:
        """(n_users,) or (n_items,) row of each entity's most recent training sample, -1 if none."""
        train = self.train
        n = self.n_users if side == "user" else self.n_items
        out = np.full(n, -1, np.int64)
        last = train.groupby(side, sort=False).tail(1)  # samples are time-sorted
        out[last[side].to_numpy()] = last.index.to_numpy()
        return out


def positives(ratings: pd.DataFrame, threshold: float = POSITIVE_THRESHOLD) -> pd.DataFrame:
    """Ratings above ``threshold`` with a timestamp (user, item, timestamp)."""
    pos = ratings[(ratings.rating > threshold)]
    if pos.timestamp.isna().any():
        n = int(pos.timestamp.isna().sum())
        warnings.warn(f"dropping {n:,} positives without a timestamp", stacklevel=2)
        pos = pos[pos.timestamp.notna()]
    return pos[["user", "item", "timestamp"]]


def _positive_interactions(ratings: pd.DataFrame, threshold: float):
    """Positives with contiguous indices: (DataFrame user, item, int64 timestamp; raw user ids; raw item ids)."""
    pos = positives(ratings, threshold)
    user_codes, user_ids = pd.factorize(pos.user, sort=True)
    item_codes, item_ids = pd.factorize(pos.item, sort=True)
    inter = pd.DataFrame({"user": user_codes.astype(np.int64), "item": item_codes.astype(np.int64),
                          "timestamp": pos.timestamp.to_numpy(np.float64).astype(np.int64)})
    return inter, user_ids, item_ids


def _canonical_bytes(values) -> bytes:
    """Integers as little-endian int64, anything else as its text, one value per line."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iub":
        return arr.astype("<i8").tobytes()
    return "\n".join(map(str, pd.Series(arr, dtype=object).fillna("<NA>").tolist())).encode("utf-8")


def _content_digest(samples: pd.DataFrame, user_ids, item_ids, users: pd.DataFrame, items: pd.DataFrame) -> str:
    """sha256 of interactions sorted by (timestamp, user, item) in index space, the raw ids and the attributes
    of those ids (user: USER_FEATURES, item: ITEM_FEATURES, genres and title), in a fixed byte layout."""
    h = hashlib.sha256(b"dqrec-content-v1")
    for col in ("user", "item", "timestamp"):
        h.update(col.encode() + b"\0" + np.ascontiguousarray(samples[col].to_numpy(np.int64), "<i8").tobytes())
    for tag, ids, frame, cols in (("users", user_ids, users, USER_FEATURES),
                                  ("items", item_ids, items, ITEM_FEATURES + ["genres", "title"])):
        ids = np.asarray(ids)
        h.update(b"\1" + tag.encode() + b"\0" + _canonical_bytes(ids))
        if len(frame.columns):
            sub = frame.reindex(ids)
            for col in cols:
                if col in sub:
                    h.update(b"\2" + col.encode() + b"\0" + _canonical_bytes(sub[col].astype("string")))
    return h.hexdigest()


def _check_ratios(ratios) -> np.ndarray:
    r = np.asarray(ratios, dtype=float)
    if r.shape != (3,) or (r < 0).any() or not np.isclose(r.sum(), 1.0) or r[0] == 0:
        raise ValueError(f"ratios must be three non-negative numbers (train, valid, test) summing to 1 "
                         f"with train > 0, got {tuple(ratios)}")
    return r


def _parts(n: int, ratios: np.ndarray) -> np.ndarray:
    """Label rows 0..n-1 train/valid/test by the cumulative ratios."""
    cut1, cut2 = int(round(n * ratios[0])), int(round(n * (ratios[0] + ratios[1])))
    parts = np.empty(n, dtype=object)
    parts[:cut1], parts[cut1:cut2], parts[cut2:] = "train", "valid", "test"
    return parts


def temporal_split(interactions: pd.DataFrame, ratios=(0.8, 0.1, 0.1)) -> pd.DataFrame:
    """Sort along the global timeline (ties: user, then item) and cut it at the cumulative ratios.

    interactions: DataFrame ``user, item, timestamp``. Returns it sorted with a ``part`` column and a
    fresh 0..N-1 index. Every valid sample is at or after every train sample, every test sample at
    or after every valid one.
    """
    r = _check_ratios(ratios)
    if len(interactions) == 0:
        raise ValueError("no interactions to split")
    df = interactions.sort_values(["timestamp", "user", "item"], kind="stable").reset_index(drop=True)
    return df.assign(part=_parts(len(df), r))


def random_split(interactions: pd.DataFrame, ratios=(0.8, 0.1, 0.1), seed: int = 0) -> pd.DataFrame:
    """A seeded uniform 8:1:1 assignment (rows still sorted by time so sequences can be built).

    A model trained on this split sees interactions that happen after the test ones.
    """
    r = _check_ratios(ratios)
    if len(interactions) == 0:
        raise ValueError("no interactions to split")
    df = interactions.sort_values(["timestamp", "user", "item"], kind="stable").reset_index(drop=True)
    perm = np.random.default_rng(seed).permutation(len(df))
    parts = np.empty(len(df), dtype=object)
    parts[perm] = _parts(len(df), r)
    return df.assign(part=parts)


def user_temporal_split(interactions: pd.DataFrame, ratios=(0.8, 0.1, 0.1)) -> pd.DataFrame:
    """Each user's positives in time order cut at the cumulative ratios (per-user chronological 8:1:1).

    A user's test samples follow their train samples, but other users' training samples may come
    later on the global timeline. Rows stay sorted along the global timeline.
    """
    r = _check_ratios(ratios)
    if len(interactions) == 0:
        raise ValueError("no interactions to split")
    df = interactions.sort_values(["timestamp", "user", "item"], kind="stable").reset_index(drop=True)
    rank = df.groupby("user").cumcount().to_numpy()
    n = df.groupby("user").user.transform("size").to_numpy()
    cut1, cut2 = np.round(n * r[0]).astype(np.int64), np.round(n * (r[0] + r[1])).astype(np.int64)
    return df.assign(part=np.where(rank < cut1, "train", np.where(rank < cut2, "valid", "test")).astype(object))


def leave_one_out_split(interactions: pd.DataFrame, min_positives: int = 3) -> pd.DataFrame:
    """Each user's last positive (global time order) is test and the one before it valid, for users
    with at least ``min_positives`` positives; everything else is train."""
    if len(interactions) == 0:
        raise ValueError("no interactions to split")
    df = interactions.sort_values(["timestamp", "user", "item"], kind="stable").reset_index(drop=True)
    from_end = df.groupby("user").cumcount(ascending=False).to_numpy()
    enough = df.groupby("user").user.transform("size").to_numpy() >= min_positives
    part = np.where(enough & (from_end == 0), "test", np.where(enough & (from_end == 1), "valid", "train"))
    return df.assign(part=part.astype(object))


SPLITS = ("temporal", "random", "user_temporal", "leave_one_out")
# What S_u / S_i of a sample at time t hold: "before" (ours: strictly before t), "at_or_before" (also
# the owner's other interactions in the same second), "with_target" (the sample's own interaction
# first, then strictly before t), "static" (the owner's last interactions over all data, future included).
SEQUENCE_RULES = ("before", "at_or_before", "with_target", "static")


def recent_sequences(owner: np.ndarray, other: np.ndarray, timestamp: np.ndarray, length: int,
                     rule: str = "before") -> np.ndarray:
    """For every row, the ``other`` values of the same ``owner`` strictly before its timestamp.

    owner, other, timestamp: (N,) arrays (e.g. user, item, time). Returns (N, length) int32, most
    recent first, padded with PAD. Rows tied in time with the sample are excluded, so no sample sees
    its own or a later interaction. Vectorised: one sort, no Python loop over rows.
    ``rule`` (forensics, see :data:`SEQUENCE_RULES`) builds the leaky variants instead.
    """
    if length < 1:
        raise ValueError(f"sequence length must be >= 1, got {length}")
    if rule not in SEQUENCE_RULES:
        raise ValueError(f"sequence rule must be one of {SEQUENCE_RULES}, got {rule!r}")
    n = len(owner)
    order = np.lexsort((other, timestamp, owner))  # by owner, then time
    o, t, x = owner[order], timestamp[order], other[order]
    new_owner = np.r_[True, o[1:] != o[:-1]]
    new_time = new_owner | np.r_[True, t[1:] != t[:-1]]
    owner_start = np.maximum.accumulate(np.where(new_owner, np.arange(n), 0))
    group_start = np.maximum.accumulate(np.where(new_time, np.arange(n), 0))  # first row at this time
    j = np.arange(length)[None, :]
    if rule == "before":
        idx = group_start[:, None] - 1 - j  # rows strictly earlier, latest first
    else:
        ends = lambda flag: np.minimum.accumulate(np.where(flag, np.arange(n) + 1, n)[::-1])[::-1]
        row = np.arange(n)[:, None]
        if rule == "at_or_before":  # rows up to the last one at this time, skipping the row itself
            top = ends(np.r_[new_time[1:], True])[:, None] - 1 - j
            idx = np.where(top <= row, top - 1, top)
        elif rule == "with_target":
            idx = np.where(j == 0, row, group_start[:, None] - j)
        else:  # static: the owner's last rows over all data
            idx = ends(np.r_[new_owner[1:], True])[:, None] - 1 - j
    valid = idx >= owner_start[:, None]
    seq_sorted = np.where(valid, x[np.clip(idx, 0, None)], PAD).astype(np.int32)
    out = np.empty_like(seq_sorted)
    out[order] = seq_sorted
    return out


def same_second_share(split: "Split") -> float:
    """Share of positives that share their timestamp with another positive of the same user."""
    return float(split.samples.duplicated(["user", "timestamp"], keep=False).mean())


def prepare(dataset: Dataset, split: str = "temporal", ratios=(0.8, 0.1, 0.1), seq_len: int = 20,
            threshold: float = POSITIVE_THRESHOLD, seed: int = 0, user_seq_rule: str = "before",
            item_seq_rule: str = "before") -> Split:
    """Positives -> contiguous indices -> split -> recent sequences S_u, S_i -> side features.

    split: one of :data:`SPLITS` ("temporal", ours; the rest for forensics: "random", per-user
    chronological "user_temporal", "leave_one_out", which ignores ``ratios``). user_seq_rule,
    item_seq_rule: how S_u and S_i are built (:data:`SEQUENCE_RULES`; "before" is leak-free).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    inter, user_ids, item_ids = _positive_interactions(dataset.ratings, threshold)
    samples = (temporal_split(inter, ratios) if split == "temporal" else random_split(inter, ratios, seed)
               if split == "random" else user_temporal_split(inter, ratios) if split == "user_temporal"
               else leave_one_out_split(inter))
    sizes = samples.part.value_counts()
    empty = [p for p in ("train", "valid", "test") if sizes.get(p, 0) == 0]
    if empty:
        raise ValueError(f"the {split} split of {dataset.name!r} with ratios {tuple(float(x) for x in ratios)} leaves "
                         f"the {' and '.join(empty)} part(s) empty: {len(samples):,} positives (rating > {threshold:g}) "
                         "are too few for these ratios. Use more data, a lower threshold or larger valid/test ratios.")
    u, i, t = (samples[c].to_numpy() for c in ("user", "item", "timestamp"))
    items = dataset.items.reindex(np.asarray(item_ids))
    rules = {k: v for k, v in (("user_seq_rule", user_seq_rule), ("item_seq_rule", item_seq_rule)) if v != "before"}
    return Split(
        name=dataset.name, kind=split, samples=samples,
        user_seq=recent_sequences(u, i, t, seq_len, user_seq_rule), item_seq=recent_sequences(i, u, t, seq_len,
                                                                                              item_seq_rule),
        user_ids=np.asarray(user_ids), item_ids=np.asarray(item_ids),
        user_features=FeatureTable.from_frame(dataset.users, np.asarray(user_ids), USER_FEATURES),
        item_features=FeatureTable.from_frame(dataset.items, np.asarray(item_ids), ITEM_FEATURES, multi="genres"),
        items=items,
        params=dict(split=split, ratios=tuple(float(x) for x in ratios), seq_len=seq_len, threshold=threshold,
                    seed=seed, checksum=_content_digest(samples, user_ids, item_ids, dataset.users, dataset.items),
                    **rules),
    )

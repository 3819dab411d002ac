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
import warnings
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


@dataclass
class Dataset:
    """Raw data of one dataset.

    ratings: DataFrame ``user, item, rating, timestamp`` with the source's ids; ``timestamp`` is
        Unix seconds (float, NaN where the source has none). All rows are kept, so counts are exact.
    users: DataFrame indexed by raw user id with categorical attribute columns (may have none).
    items: DataFrame indexed by raw item id: ``title`` and attributes (``genres`` as a
        ``|``-separated string, ``year``, ...).
    source: the folder the files were read from; checksum: sha256 over the files read.
    """

    name: str
    ratings: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    source: str = ""
    checksum: str = ""

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


def _unix_seconds(dates: pd.Series) -> pd.Series:
    """Dates (strings) -> Unix seconds as float, independent of pandas' datetime unit."""
    return (pd.to_datetime(dates) - pd.Timestamp(0)) / pd.Timedelta(seconds=1)


def _year_from_title(titles: pd.Series) -> pd.Series:
    return pd.to_numeric(titles.str.extract(r"\((\d{4})\)\s*$", expand=False), errors="coerce")


# ----------------------------------------------------------------------------- MovieLens parsers
def _read_ml_ratings_dat(path: Path) -> pd.DataFrame:
    """``UserID::MovieID::Rating::Timestamp``; an empty timestamp is kept as NaN."""
    # Splitting on ":" lets the fast C parser read "::" files; fields 1, 3, 5 are empty.
    df = pd.read_csv(path, sep=":", header=None, usecols=[0, 2, 4, 6], engine="c",
                     names=["user", "_a", "item", "_b", "rating", "_c", "timestamp"],
                     dtype={"user": np.int64, "item": np.int64, "rating": np.float32, "timestamp": np.float64})
    missing = int(df.timestamp.isna().sum())
    if missing:
        warnings.warn(f"{path}: {missing:,} ratings have no timestamp; they are kept for counts "
                      "but cannot take part in time-ordered splits", stacklevel=3)
    return df[["user", "item", "rating", "timestamp"]]


def _parse_ml_1m(folder: Path) -> Dataset:
    ratings = _read_ml_ratings_dat(folder / "ratings.dat")
    users = pd.read_csv(folder / "users.dat", sep=":", header=None, usecols=[0, 2, 4, 6], engine="c",
                        names=["user", "_a", "gender", "_b", "age", "_c", "occupation", "_d", "zip"],
                        dtype={"gender": str, "age": str, "occupation": str}).set_index("user")
    items = pd.read_csv(folder / "movies.dat", sep="::", header=None, engine="python", encoding="latin-1",
                        names=["item", "title", "genres"]).set_index("item")
    items["year"] = _year_from_title(items.title)
    return Dataset("ml-1m", ratings, users, items)


ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                 "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                 "Romance", "Sci-Fi", "Thriller", "War", "Western"]
ML1M_AGE_BUCKETS = [1, 18, 25, 35, 45, 50, 56]  # ML-1M's age codes: lower edge of each bucket


def _parse_ml_100k(folder: Path) -> Dataset:
    ratings = pd.read_csv(folder / "u.data", sep="\t", header=None, names=["user", "item", "rating", "timestamp"],
                          dtype={"rating": np.float32, "timestamp": np.float64})
    users = pd.read_csv(folder / "u.user", sep="|", header=None,
                        names=["user", "age", "gender", "occupation", "zip"]).set_index("user")
    # Bucket ages as ML-1M does so both datasets share one feature vocabulary.
    users["age"] = pd.Series(np.asarray(ML1M_AGE_BUCKETS)[np.searchsorted(ML1M_AGE_BUCKETS, users.age, side="right") - 1],
                             index=users.index).astype(str)
    cols = ["item", "title", "release", "video", "url"] + ML100K_GENRES
    raw = pd.read_csv(folder / "u.item", sep="|", header=None, names=cols, encoding="latin-1").set_index("item")
    flags = raw[ML100K_GENRES].to_numpy(bool)
    genres = ["|".join(np.asarray(ML100K_GENRES)[row]) for row in flags]
    items = pd.DataFrame({"title": raw.title, "genres": genres,
                          "year": pd.to_datetime(raw.release, format="%d-%b-%Y", errors="coerce").dt.year},
                         index=raw.index)
    return Dataset("ml-100k", ratings, users[["gender", "age", "occupation"]], items)


def _parse_ml_latest_small(folder: Path) -> Dataset:
    ratings = pd.read_csv(folder / "ratings.csv", dtype={"rating": np.float32, "timestamp": np.float64})
    ratings = ratings.rename(columns={"userId": "user", "movieId": "item"})
    items = pd.read_csv(folder / "movies.csv").rename(columns={"movieId": "item"}).set_index("item")
    items["genres"] = items.genres.replace("(no genres listed)", "")
    items["year"] = _year_from_title(items.title)
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


def _parse_amazon_books_2023(folder: Path, min_user: int = 30, min_item: int = 10) -> Dataset:
    """Amazon Reviews 2023 Books, rating-only CSV ``user_id,parent_asin,rating,timestamp`` (ms)."""
    path = _first_existing(folder, ["Books.csv.gz", "Books.csv"])
    ratings = pd.read_csv(path, dtype={"rating": np.float32, "timestamp": np.float64})
    ratings = ratings.rename(columns={"user_id": "user", "parent_asin": "item"})
    ratings["timestamp"] = ratings.timestamp / 1000.0
    ratings = ratings.drop_duplicates(["user", "item"], keep="last")
    ratings = kcore_filter(ratings, min_user, min_item).reset_index(drop=True)
    items = pd.DataFrame(index=pd.Index(ratings.item.unique(), name="item"))
    meta = _first_existing(folder, ["meta_Books.jsonl.gz", "meta_Books.jsonl"])
    if meta is not None:
        wanted = set(items.index)
        rows = []
        with _open_text(meta) as f:
            for line in f:
                m = json.loads(line)
                if m.get("parent_asin") in wanted:
                    cats = m.get("categories") or []
                    rows.append(dict(item=m["parent_asin"], title=m.get("title", ""),
                                     category=cats[1] if len(cats) > 1 else (cats[0] if cats else ""),
                                     store=m.get("store") or "", price=m.get("price")))
        meta_df = pd.DataFrame(rows).drop_duplicates("item").set_index("item")
        meta_df["price"] = _price_bucket(meta_df.price)
        items = items.join(meta_df)
    return Dataset("amazon-books-2023", ratings, pd.DataFrame(index=pd.Index(ratings.user.unique(), name="user")), items)


def _parse_amazon_2018_ratings(folder: Path) -> Dataset:
    """Amazon Review Data 2018 'ratings only' CSV (no header): ``item,user,rating,timestamp``."""
    path = next(folder.glob("*.csv"))
    ratings = pd.read_csv(path, header=None, names=["item", "user", "rating", "timestamp"],
                          dtype={"rating": np.float32, "timestamp": np.float64})
    ratings = ratings.drop_duplicates(["user", "item"], keep="last").reset_index(drop=True)
    return Dataset(folder.name, ratings[["user", "item", "rating", "timestamp"]],
                   pd.DataFrame(index=pd.Index(ratings.user.unique(), name="user")),
                   pd.DataFrame(index=pd.Index(ratings.item.unique(), name="item")))


# ----------------------------------------------------------------------------- Netflix parsers
def _read_netflix_titles(folder: Path) -> pd.DataFrame:
    path = _first_existing(folder, ["movie_titles.txt", "movie_titles.csv", "movie-titles.csv"])
    rows = []
    with open(path, encoding="latin-1") as f:
        for line in f:
            parts = line.rstrip("\n").split(",", 2)  # titles contain commas
            if parts[0].isdigit():
                rows.append((int(parts[0]), pd.to_numeric(parts[1], errors="coerce"), parts[2]))
    return pd.DataFrame(rows, columns=["item", "year", "title"]).set_index("item")


def _read_netflix_blocks(paths) -> pd.DataFrame:
    """Original Prize format: a ``MovieID:`` line, then ``CustomerID,Rating,Date`` lines."""
    frames = []
    for path in paths:
        df = pd.read_csv(path, header=None, names=["user", "rating", "date"], dtype=str)
        is_movie = df.user.str.endswith(":")
        movie = df.user.where(is_movie).str.rstrip(":").ffill().astype(np.int64)
        df = df[~is_movie].assign(item=movie[~is_movie])
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    return pd.DataFrame({"user": df.user.astype(np.int64), "item": df.item, "rating": df.rating.astype(np.float32),
                         "timestamp": _unix_seconds(df.date)})


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
    df = pd.read_csv(folder / "netflix-user-ratings-10k.csv")
    ratings = pd.DataFrame({"user": df.UserID, "item": df.MovieID, "rating": df.Rating.astype(np.float32),
                            "timestamp": _unix_seconds(df.Date)})
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
                           "md5:0e33842e24a9c977be4e0107933c0723", "ml-100k"),
    "ml-1m": DatasetSpec("ml-1m", ("ratings.dat", "users.dat", "movies.dat"), _parse_ml_1m, GROUPLENS + "ml-1m.zip",
                         "md5:c4d9eecfca2ab87c1945afe126590906", "ml-1m"),
    # ml-latest-small is re-issued over time and we have no verified archive checksum for it; we
    # pin the files of the 2018 release instead (sha256 of the extracted ratings.csv and movies.csv).
    "ml-latest-small": DatasetSpec(
        "ml-latest-small", ("ratings.csv", "movies.csv"), _parse_ml_latest_small, GROUPLENS + "ml-latest-small.zip",
        None, "ml-latest-small",
        {"ratings.csv": "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
         "movies.csv": "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07"}),
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


def _has_files(folder: Path, spec: DatasetSpec) -> bool:
    if spec.name == "netflix":
        return any(folder.glob("combined_data_*.txt")) or any((folder / "training_set").glob("mv_*.txt"))
    if spec.name == "amazon-books-2023":
        return _first_existing(folder, ["Books.csv.gz", "Books.csv"]) is not None
    return all((folder / f).exists() for f in spec.files)


def _check_file_hashes(folder: Path, spec: DatasetSpec) -> None:
    for name, expected in spec.file_hashes.items():
        got = _sha256([folder / name])
        if got != expected:
            raise ValueError(f"{folder / name}: sha256 {got} does not match the pinned {expected}. The file is "
                             "corrupted or from another release; delete it and download again.")


def locate(name: str, download: bool = True) -> Path:
    """Folder holding the files of dataset ``name``: the mirror, else the cache, else a download."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    spec = DATASETS[name]
    mirror = data_dir()
    if mirror is not None and _has_files(mirror / name, spec):
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


def _download(spec: DatasetSpec, target: Path, expected: str, where: str) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    fname = spec.url.rsplit("/", 1)[-1]
    try:
        archive = pooch.retrieve(spec.url, known_hash=spec.known_hash, fname=fname, path=cache_dir(), progressbar=True)
    except ValueError:  # pooch's checksum mismatch: never retried silently
        raise
    except Exception as err:  # network errors of all kinds
        raise DataNotFoundError(
            f"could not download {spec.url} ({type(err).__name__}: {err}). Offline, set DQREC_DATA_DIR to a folder "
            f"holding {spec.name}/ with {expected} ({where}). {spec.how_to_get}".strip()) from err
    if fname.endswith(".zip"):
        import zipfile

        try:
            with zipfile.ZipFile(archive) as z:
                for member in z.namelist():
                    rel = Path(member).relative_to(spec.archive_folder) if spec.archive_folder else Path(member)
                    if member.endswith("/") or str(rel) == ".":
                        continue
                    (target / rel).parent.mkdir(parents=True, exist_ok=True)
                    (target / rel).write_bytes(z.read(member))
        except zipfile.BadZipFile as err:
            raise ValueError(f"{archive} is not a valid zip archive; delete it and download again") from err
    else:
        os.replace(archive, target / fname)
    _check_file_hashes(target, spec)
    return target


def load(name: str, download: bool = True, **options) -> Dataset:
    """Load dataset ``name`` (see ``DATASETS``); ``options`` go to its parser (e.g. ``n_users`` for Netflix)."""
    folder = locate(name, download=download)
    spec = DATASETS[name]
    _check_file_hashes(folder, spec)
    try:
        ds = spec.parser(folder, **options)
    except (pd.errors.ParserError, ValueError, KeyError, UnicodeDecodeError, EOFError, OSError) as err:
        raise ValueError(f"could not parse {name!r} from {folder}: {type(err).__name__}: {err}. "
                         "The files may be corrupted or in another format.") from err
    read = [p for p in folder.rglob("*") if p.is_file() and not p.name.endswith((".md", "README"))]
    ds.name, ds.source, ds.checksum = name, str(folder), _sha256(read)
    return ds


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
        return self.part("train")

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


def recent_sequences(owner: np.ndarray, other: np.ndarray, timestamp: np.ndarray, length: int) -> np.ndarray:
    """For every row, the ``other`` values of the same ``owner`` strictly before its timestamp.

    owner, other, timestamp: (N,) arrays (e.g. user, item, time). Returns (N, length) int32, most
    recent first, padded with PAD. Rows tied in time with the sample are excluded, so no sample sees
    its own or a later interaction. Vectorised: one sort, no Python loop over rows.
    """
    if length < 1:
        raise ValueError(f"sequence length must be >= 1, got {length}")
    n = len(owner)
    order = np.lexsort((other, timestamp, owner))  # by owner, then time
    o, t, x = owner[order], timestamp[order], other[order]
    new_owner = np.r_[True, o[1:] != o[:-1]]
    new_time = new_owner | np.r_[True, t[1:] != t[:-1]]
    owner_start = np.maximum.accumulate(np.where(new_owner, np.arange(n), 0))
    group_start = np.maximum.accumulate(np.where(new_time, np.arange(n), 0))  # first row at this time
    idx = group_start[:, None] - 1 - np.arange(length)[None, :]  # rows strictly earlier, latest first
    valid = idx >= owner_start[:, None]
    seq_sorted = np.where(valid, x[np.clip(idx, 0, None)], PAD).astype(np.int32)
    out = np.empty_like(seq_sorted)
    out[order] = seq_sorted
    return out


def prepare(dataset: Dataset, split: str = "temporal", ratios=(0.8, 0.1, 0.1), seq_len: int = 20,
            threshold: float = POSITIVE_THRESHOLD, seed: int = 0) -> Split:
    """Positives -> contiguous indices -> split -> recent sequences S_u, S_i -> side features."""
    if split not in ("temporal", "random"):
        raise ValueError(f"split must be 'temporal' or 'random', got {split!r}")
    pos = positives(dataset.ratings, threshold)
    user_codes, user_ids = pd.factorize(pos.user, sort=True)
    item_codes, item_ids = pd.factorize(pos.item, sort=True)
    inter = pd.DataFrame({"user": user_codes.astype(np.int64), "item": item_codes.astype(np.int64),
                          "timestamp": pos.timestamp.to_numpy(np.float64).astype(np.int64)})
    samples = temporal_split(inter, ratios) if split == "temporal" else random_split(inter, ratios, seed)
    u, i, t = (samples[c].to_numpy() for c in ("user", "item", "timestamp"))
    items = dataset.items.reindex(np.asarray(item_ids))
    return Split(
        name=dataset.name, kind=split, samples=samples,
        user_seq=recent_sequences(u, i, t, seq_len), item_seq=recent_sequences(i, u, t, seq_len),
        user_ids=np.asarray(user_ids), item_ids=np.asarray(item_ids),
        user_features=FeatureTable.from_frame(dataset.users, np.asarray(user_ids), USER_FEATURES),
        item_features=FeatureTable.from_frame(dataset.items, np.asarray(item_ids), ITEM_FEATURES, multi="genres"),
        items=items,
        params=dict(split=split, ratios=tuple(float(x) for x in ratios), seq_len=seq_len, threshold=threshold,
                    seed=seed, checksum=dataset.checksum),
    )

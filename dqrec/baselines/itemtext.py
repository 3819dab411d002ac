"""Item text -> embeddings -> OPQ product-quantised codes: VQRec's "text => code" step (Hou et al., WWW 2023, Sec. 3.1).

* :func:`item_texts`: one string per item from its side information (title, genres, year);
* :class:`ItemTextEncoder`: text -> (n_items, d) float32. ``"tfidf-svd"`` (default, offline): TF-IDF over
  word unigrams and bigrams + truncated SVD (scikit-learn), fitted on the texts of *all* items: text is side
  information known for every item before any interaction, not an interaction, so no split is involved.
  Any other name is a ``sentence-transformers`` model (a hub name or a local folder; the optional extra
  ``pip install dqrec[text]``), which is where the paper's pre-trained language model (BERT) goes;
* :func:`opq_codes`: VQRec's ``OPQ{D},IVF1,PQ{D}x{log2 M}`` index (faiss, the authors' ``pq.py``): an OPQ
  rotation, then one coarse centroid (the mean) and a product quantiser of D groups of M codewords on the
  residuals. Fitted, as the authors' default ``strict`` mode, on the items seen in training only, then
  applied to every item.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

TFIDF_SVD = "tfidf-svd"


def item_texts(items: pd.DataFrame) -> list[str]:
    """One text per item row: ``"<title>. Genres: <g1>, <g2>. Year: <year>."`` (missing parts left out)."""
    texts = []
    for row in items.itertuples(index=False):
        parts = [str(getattr(row, "title", "") or "").strip()]
        genres = getattr(row, "genres", None)
        if isinstance(genres, str) and genres:
            parts.append("Genres: " + ", ".join(genres.split("|")))
        year = getattr(row, "year", None)
        if year is not None and not pd.isna(year):
            parts.append(f"Year: {int(year)}")
        texts.append(". ".join(p for p in parts if p) + ".")
    return texts


class ItemTextEncoder:
    """Item texts -> (n, dim) float32 embeddings.

    name: ``"tfidf-svd"`` (offline, scikit-learn) or a ``sentence-transformers`` model name/path;
    dim: output width of ``"tfidf-svd"`` (fewer SVD components when the vocabulary or the item count
    is smaller, zero-padded to ``dim``); a language model's width is its own.
    """

    def __init__(self, name: str = TFIDF_SVD, dim: int = 256, seed: int = 0):
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be 'tfidf-svd' or a sentence-transformers model name, got {name!r}")
        if int(dim) != dim or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        self.name, self.dim, self.seed = name, int(dim), seed

    def encode(self, texts: list[str]) -> np.ndarray:
        if self.name == TFIDF_SVD:
            return self._tfidf_svd(texts)
        return self._sentence_transformer(texts)

    def _tfidf_svd(self, texts: list[str]) -> np.ndarray:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        x = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit_transform(texts)
        k = min(self.dim, x.shape[1] - 1, x.shape[0] - 1)
        out = np.zeros((len(texts), self.dim), np.float32)
        if k >= 1:
            out[:, :k] = TruncatedSVD(k, algorithm="randomized", random_state=self.seed).fit_transform(x)
        return out

    def _sentence_transformer(self, texts: list[str]) -> np.ndarray:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as err:  # the optional extra
            raise ImportError(f"text encoder {self.name!r} needs sentence-transformers: pip install 'dqrec[text]' "
                              f"(or use the offline encoder {TFIDF_SVD!r})") from err
        model = SentenceTransformer(self.name, device="cpu")
        return np.asarray(model.encode(texts, batch_size=64, convert_to_numpy=True, show_progress_bar=False),
                          np.float32)

    def __repr__(self) -> str:
        return f"ItemTextEncoder(name={self.name!r}, dim={self.dim})"


def opq_codes(features: np.ndarray, fit_rows: np.ndarray, n_groups: int = 32, n_codewords: int = 256) -> np.ndarray:
    """(n, D) int64 codes in [0, M) of every row of ``features`` (n, d): OPQ + IVF1 + PQ fitted on ``fit_rows``.

    The feature width is zero-padded to a multiple of D. faiss's fixed k-means seeds and one OpenMP
    thread (several threads on a busy CPU were 10x slower here) make the codes a deterministic function
    of the input.
    """
    import faiss

    bits = int(np.log2(n_codewords))
    if n_codewords < 2 or 2 ** bits != n_codewords:
        raise ValueError(f"n_codewords must be a power of two >= 2, got {n_codewords}")
    fit_rows = np.asarray(fit_rows)
    if len(fit_rows) < n_codewords:
        raise ValueError(f"OPQ needs at least n_codewords={n_codewords} items to fit on, got {len(fit_rows)}")
    d = -(-features.shape[1] // n_groups) * n_groups
    x = np.zeros((len(features), d), np.float32)
    x[:, :features.shape[1]] = features

    def quantiser():  # as faiss's default, without the warning about few points per centroid
        pq = faiss.ProductQuantizer(d, n_groups, bits)
        pq.cp.min_points_per_centroid = 1
        return pq

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        opq = faiss.OPQMatrix(d, n_groups)
        opq.pq = opq_inner = quantiser()  # noqa: F841 (kept alive while OPQ trains)
        opq.train(np.ascontiguousarray(x[fit_rows]))
        rotated = opq.apply(x)
        centroid = rotated[fit_rows].mean(0)  # IVF1: the one coarse centroid of k-means with k=1
        pq = quantiser()
        pq.train(np.ascontiguousarray(rotated[fit_rows] - centroid))
    finally:
        faiss.omp_set_num_threads(threads)
    codewords = faiss.vector_to_array(pq.centroids).reshape(n_groups, n_codewords, -1)  # (D, M, d / D)
    residual = (rotated - centroid).reshape(len(x), n_groups, 1, -1)
    return ((residual - codewords) ** 2).sum(-1).argmin(-1).astype(np.int64)  # nearest codeword per group

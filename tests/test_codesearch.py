"""Exact search among semantic IDs (dqrec.codesearch) against brute force and against faiss."""
import faiss
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dqrec.codesearch import CodeSearch, distance_tables, union_rows
from dqrec.dqvae import DQVAE


def brute_force(tables, store, codes, k):
    """(N, k) store positions by a full scan, ties to the lower position, -1 padded."""
    dist = sum(tables[l][codes[:, l]][:, store[:, l]] for l in range(tables.shape[0]))
    found = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.pad(found, ((0, 0), (0, k - found.shape[1])), constant_values=-1)


def without(rows, exclude, k):
    """Each row of positions without its excluded entry, first k, -1 padded."""
    out = np.full((len(rows), k), -1)
    for i, (row, ex) in enumerate(zip(rows, exclude)):
        kept = [r for r in row if r >= 0 and r != ex][:k]
        out[i, :len(kept)] = kept
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(2, 6), st.integers(1, 40), st.integers(1, 120), st.integers(1, 8),
       st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_search_equals_brute_force(n_layers, size, n_store, n, k, k_latent, seed):
    """Few codes, so many identical tuples and exact ties: results match position for position."""
    rng = np.random.default_rng(seed)
    books = [rng.normal(size=(size, 3)) for _ in range(n_layers)]
    store = rng.integers(0, size, (n_store, n_layers))
    codes = rng.integers(0, size, (n, n_layers))
    latent = (codes + rng.integers(1, size, codes.shape)) % size  # a different code per layer
    exclude = rng.integers(-1, n_store, n)
    search = CodeSearch(books, store)
    explicit, lat = search.search(codes, latent, k, k_latent, exclude=exclude)
    tables = distance_tables(books)
    np.testing.assert_array_equal(explicit, without(brute_force(tables, store, codes, k + 1), exclude, k))
    for l in range(n_layers):
        swapped = codes.copy()
        swapped[:, l] = latent[:, l]
        want = without(brute_force(tables, store, swapped, k_latent + 1), exclude, k_latent)
        # lat is computed as base - T[a] + T[b]: near-ties of different tuples may swap, distances may not
        dist = lambda found: np.where(found >= 0, sum(tables[m][swapped[:, m][:, None], store[found.clip(0), m]]
                                                      for m in range(n_layers)), np.inf)
        np.testing.assert_allclose(dist(lat[:, l]), dist(want), rtol=1e-5, atol=1e-6)


def test_search_matches_faiss_on_decoded_representations():
    """The table distances are the distances between decoded z_hat: faiss on D(codes) agrees."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3000, 16)) * np.linspace(2, 0.5, 16)
    dq = DQVAE(n_layers=4, codebook_size=16, seed=0).fit(z[:600])
    codes, latent = dq.encode_with_latent(z)
    store = codes[:600]
    index = faiss.IndexFlatL2(16)
    index.add(dq.decode(store).astype(np.float32))
    explicit, lat = CodeSearch(dq.codebooks_, store).search(codes, latent, k=10, k_latent=2)
    queries = [(codes, explicit, 10)] + [(np.where(np.arange(4) == l, latent, codes), lat[:, l], 2) for l in range(4)]
    for q, got, k in queries:
        want_d, _ = index.search(dq.decode(q).astype(np.float32), k)
        got_d = ((dq.decode(q)[:, None, :] - dq.decode(store)[got]) ** 2).sum(-1)
        np.testing.assert_allclose(got_d, want_d, rtol=1e-4, atol=1e-4)


def test_labels_exclusion_and_small_store():
    books = [np.array([[0.0], [1.0], [3.0]])]
    search = CodeSearch(books, np.array([[0], [1], [2]]), labels=np.array([10, 11, 12]))
    explicit, lat = search.search(np.array([[0], [2]]), np.array([[1], [1]]), k=4, k_latent=1,
                                  exclude=np.array([10, -1]))
    assert explicit.tolist() == [[11, 12, -1, -1], [12, 11, 10, -1]]
    assert lat[:, 0].tolist() == [[11], [11]]  # code 1 itself, entity 11; row 0 may not return 10


def test_bad_input_is_refused():
    search = CodeSearch([np.eye(3)], np.array([[0], [1]]))
    with pytest.raises(ValueError, match="semantic IDs"):
        search.search(np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="must lie in"):
        search.search(np.array([[3]]))
    with pytest.raises(ValueError, match="k must be"):
        search.search(np.array([[0]]), k=0)
    with pytest.raises(ValueError, match="exclude"):
        search.search(np.array([[0]]), exclude=np.array([0, 1]))
    with pytest.raises(ValueError, match="labels"):
        CodeSearch([np.eye(3)], np.array([[0], [1]]), labels=np.array([-1, 2]))


def test_union_rows_keeps_first_appearance():
    first = np.array([[1, 2, -1], [3, -1, -1]], np.int32)
    second = np.array([[2, 4, 4], [-1, 3, 5]], np.int32)
    assert union_rows(first, second).tolist() == [[1, 2, 4, -1, -1, -1], [3, 5, -1, -1, -1, -1]]


def test_no_queries():
    explicit, lat = CodeSearch([np.eye(2)], np.array([[0], [1]])).search(np.zeros((0, 1), int), np.zeros((0, 1), int),
                                                                         k=3, k_latent=1)
    assert explicit.shape == (0, 3) and lat.shape == (0, 1, 1)

"""Augmentation (Eqs. 14-19), the DQRec / DualTower model and the representation model."""
import dataclasses

import numpy as np
import pandas as pd
import pytest

from dqrec import augment, data, leaks
from dqrec.sampling import NegativeSampler
from dqrec.model import DQRec, DualTower, ItemStateLookup
from dqrec.representation import RepresentationModel


def planted_split(n_users=120, n_items=60, per_user=25, seed=0, kind="temporal"):
    """Two user groups, each liking its own half of the items; attributes tell the groups apart."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        group = u % 2
        items = rng.choice(np.arange(group * n_items // 2, (group + 1) * n_items // 2), per_user, replace=False)
        times = np.sort(rng.integers(0, 10_000, per_user))
        rows += [(u, i, 5.0, float(t)) for i, t in zip(items, times)]
    ratings = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    users = pd.DataFrame({"gender": ["F" if u % 2 else "M" for u in range(n_users)]}, index=pd.Index(range(n_users)))
    items = pd.DataFrame({"genres": ["A" if i < n_items // 2 else "B" for i in range(n_items)],
                          "title": [f"item {i}" for i in range(n_items)]}, index=pd.Index(range(n_items)))
    return data.prepare(data.Dataset("planted", ratings, users, items), split=kind, seq_len=8)


def test_item_state_lookup_is_strictly_before():
    samples = pd.DataFrame({"item": [0, 0, 1, 0], "timestamp": [5, 10, 7, 10]}, index=[10, 11, 12, 13])
    lookup = ItemStateLookup(samples)
    got = lookup.latest_before(np.array([0, 0, 0, 1, 1, 2]), np.array([5, 6, 11, 7, 8, 100]))
    assert got[[0, 1, 3, 4, 5]].tolist() == [-1, 10, -1, 12, -1]
    assert got[2] in (11, 13)  # two samples of item 0 at t=10: either is the latest before 11


def test_sample_negatives_avoid_train_positives():
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(5), 200)
    keys = np.sort(np.array([u * 10 + i for u in range(5) for i in range(8)]))  # each user likes items 0..7
    neg = NegativeSampler(keys // 10, keys % 10, 10).sample(users, rng)
    assert set(neg) <= {8, 9}


def test_store_holds_only_strictly_earlier_training_states():
    split = planted_split()
    store = augment.store_rows(split, "user")
    first_valid = split.valid.timestamp.min()
    held = store[store >= 0]
    assert (split.samples.part.to_numpy()[held] == "train").all()
    assert (split.samples.timestamp.to_numpy()[held] < first_valid).all()


def test_representation_separates_planted_groups():
    split = planted_split()
    rep = RepresentationModel(dim=16, hidden=32, epochs=8, batch_size=256, progress=False).fit(split)
    assert rep.loss_history_[-1] < rep.loss_history_[0]
    z = rep.entity_embeddings(split, "user")
    has = ~np.isnan(z[:, 0])
    group = np.arange(split.n_users) % 2
    centroid = [z[has & (group == g)].mean(0) for g in (0, 1)]
    nearest = np.argmin([((z[has] - c) ** 2).sum(1) for c in centroid], axis=0)
    assert (nearest == group[has]).mean() > 0.9
    with pytest.raises(ValueError, match="side must be"):
        rep.embed(split, np.arange(3), "both")


def test_augment_side_shapes_no_self_no_future():
    split = planted_split()
    rep = RepresentationModel(dim=16, hidden=32, epochs=3, batch_size=256, progress=False).fit(split)
    emb = rep.sample_embeddings(split, "user")
    aug = augment.augment_side(split, emb, "user", n_layers=2, codebook_size=8, k=5, k_latent=2)
    n = len(split.samples)
    assert aug.codes.shape == (n, 2) and aug.explicit.shape == (n, 5) and aug.latent.shape == (n, 4)
    users = split.samples.user.to_numpy()
    checks = leaks.augmentation(split, aug)
    assert checks == dict.fromkeys(checks, True) and len(checks) == 4
    # each check catches its leak: a stored test state, a neighbour outside the store, a self-link
    test_row = int(np.flatnonzero(split.samples.part == "test")[0])
    leaky = dataclasses.replace(aug, store=np.where(np.arange(len(aug.store)) == users[test_row], test_row, aug.store))
    assert not leaks.augmentation(split, leaky)["store holds training samples only"]
    assert not leaks.augmentation(split, leaky)["store before validation"]
    dropped = aug.store.copy()
    dropped[aug.neighbours[aug.neighbours >= 0][0]] = -1  # a neighbour's entity no longer in the store
    assert not leaks.augmentation(split, dataclasses.replace(aug, store=dropped))["neighbours from the store"]
    selfish = aug.neighbours.copy()
    selfish[1, 0] = users[1]
    assert not leaks.augmentation(split, dataclasses.replace(aug, neighbours=selfish))["no self-links"]
    # Explicit neighbours are the nearest by quantised representation: planted groups mostly agree.
    group = users % 2
    nb = aug.explicit
    same = (nb >= 0) & ((nb % 2) == group[:, None])
    assert same.sum() / (nb >= 0).sum() > 0.8
    with pytest.raises(ValueError, match="one embedding per sample"):
        augment.augment_side(split, emb[:10], "user")


def test_dqrec_and_dualtower_train_and_score():
    split = planted_split()
    kw = dict(dim=16, hidden=32, epochs=3, patience=5, batch_size=256, progress=False)
    sem = dict(n_layers=2, codebook_size=8, k=5, k_latent=1, representation_epochs=2)
    for model in (DQRec(**kw, **sem), DualTower(**kw)):
        model.fit(split)
        test = split.test
        scores = model.score(test.iloc[:7], np.arange(split.n_items))
        assert scores.shape == (7, split.n_items) and np.isfinite(scores).all()
        assert len(model.history_) == 3 and model.trainer_.summary()["stopped_by"] == "max_epochs"
    assert DualTower(**kw).uses_semantic_ids is False and DQRec(**kw).uses_semantic_ids is True


def test_dqrec_is_deterministic():
    split = planted_split()
    kw = dict(dim=16, hidden=32, epochs=2, n_layers=2, codebook_size=8, k=5, k_latent=1,
              representation_epochs=1, batch_size=256, progress=False, seed=3)
    a, b = DQRec(**kw).fit(split), DQRec(**kw).fit(split)
    batch = split.test.iloc[:5]
    np.testing.assert_allclose(a.score(batch, np.arange(10)), b.score(batch, np.arange(10)), rtol=1e-5)


def test_neighbours_are_exact_nearest_by_quantised_representation():
    """Explicit (Eq. 15) and latent (Eq. 18) neighbours equal a brute-force search over the store."""
    split = planted_split()
    z = np.random.default_rng(0).normal(size=(len(split.samples), 8))
    aug = augment.augment_side(split, z, "user", n_layers=2, codebook_size=6, k=4, k_latent=2)
    dq, in_store = aug.quantizer, np.flatnonzero(aug.store >= 0)
    store_z = dq.decode(aug.codes[aug.store[in_store]])
    _, latent_codes = dq.encode_with_latent(z)
    users = split.samples.user.to_numpy()
    for row in range(0, len(z), 97):
        queries = [(dq.decode(aug.codes[row:row + 1])[0], aug.explicit[row], 4)]
        for layer in range(2):
            swapped = aug.codes[row:row + 1].copy()
            swapped[0, layer] = latent_codes[row, layer]
            queries.append((dq.decode(swapped)[0], aug.latent[row, 2 * layer:2 * layer + 2], 2))
        for q, got, k in queries:
            dist = ((store_z - q) ** 2).sum(1)
            dist[in_store == users[row]] = np.inf  # never the entity itself
            got_d = np.sort(dist[np.searchsorted(in_store, got)])
            np.testing.assert_allclose(got_d, np.sort(dist)[:k], rtol=1e-5, atol=1e-6)


def test_representation_without_user_attributes():
    """ml-latest-small has no user attributes: the user tower then sees only its sequence."""
    split = planted_split()
    split.user_features = data.FeatureTable.from_frame(pd.DataFrame(index=pd.Index([], name="user")),
                                                       split.user_ids, data.USER_FEATURES)
    assert split.user_features.categorical.shape == (split.n_users, 0)
    rep = RepresentationModel(dim=16, hidden=32, epochs=2, batch_size=256, progress=False).fit(split)
    z = rep.entity_embeddings(split, "user")
    has = ~np.isnan(z[:, 0])
    assert has.any() and np.isfinite(z[has]).all() and z[has].std(0).max() > 0  # not constant


def test_history_overlap_planted_groups():
    """Neighbours found from representations share more history than random users; no history: NaN."""
    split = planted_split()
    rep = RepresentationModel(dim=16, hidden=32, epochs=6, batch_size=256, progress=False).fit(split)
    aug = augment.augment_side(split, rep.sample_embeddings(split, "user"), "user", n_layers=2, codebook_size=8,
                               k=5, k_latent=1)
    rows = split.test.index.to_numpy()
    overlap = augment.history_overlap(split, aug, rows)
    assert list(overlap.columns) == ["explicit", "latent", "random"] and len(overlap) == len(rows)
    assert overlap.explicit.mean() > overlap.random.mean()
    no_history = split.train.user.value_counts().reindex(range(split.n_users)).isna().to_numpy()
    assert overlap[no_history[split.samples.user.to_numpy()[rows]]].isna().all().all()
    stats = augment.neighbour_stats(aug)
    assert stats["explicit"] == 5 and 0 <= stats["latent_already_explicit"] <= 1


def test_flat_search_agreement_on_planted_split():
    """Neighbours are never farther than faiss's exact flat search; a corrupted set is caught."""
    split = planted_split()
    z = np.random.default_rng(1).normal(size=(len(split.samples), 8))
    aug = augment.augment_side(split, z, "user", n_layers=2, codebook_size=6, k=4, k_latent=2)
    check = augment.flat_search_agreement(split, aug, z)
    assert check["samples"] == len(z) and check["share_farther_than_faiss"] == 0
    assert check["share_same_distances"] + check["share_nearer_than_faiss"] == 1
    aug.explicit[:, 0] = aug.explicit[:, -1]  # the nearest replaced by the 4th: farther on some rows
    assert augment.flat_search_agreement(split, aug, z, rows=np.arange(200))["share_farther_than_faiss"] > 0


@pytest.mark.parametrize("mode", ["mean", "sum"])
def test_bag_pooling_forward_and_gradient_are_embedding_bags(mode):
    """BagPool (the sparse-product backward of every pooled part of DQRec) gives F.embedding_bag's own
    forward and weight gradient, with empty bags and a row listed twice in one bag."""
    import torch
    from torch.nn import functional as F

    from dqrec.model import bags, pool

    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 6, 40)  # empty bags included
    parts = []
    for chunk in np.array_split(lengths, 3):
        values = rng.integers(0, 15, chunk.sum())  # a small table: the same row twice in a bag happens
        parts.append((values, np.cumsum(chunk) - chunk))
    tensors = bags(parts, 15, mode)
    # the transposed pooling matrix is scipy's canonical CSR of (row, bag, weight) triplets, bit for bit
    import scipy.sparse as sp
    values, offsets = tensors["values"].numpy(), tensors["offsets"].numpy()
    bag_lengths = np.diff(np.append(offsets, len(values)))
    owner = np.repeat(np.arange(len(offsets)), bag_lengths)
    weight = ((1.0 / np.maximum(bag_lengths, 1))[owner] if mode == "mean" else np.ones(len(values))).astype(np.float32)
    reference = sp.csr_matrix((weight, (values, owner)), shape=(15, len(offsets)))
    csr = tensors["pool_t"]
    assert csr.values().numel() < len(values)  # duplicates were summed into one entry
    np.testing.assert_array_equal(csr.crow_indices().numpy(), reference.indptr)
    np.testing.assert_array_equal(csr.col_indices().numpy(), reference.indices)
    np.testing.assert_array_equal(csr.values().numpy(), reference.data)
    table = torch.randn(15, 4).requires_grad_()
    grad_out = torch.randn(len(lengths), 4)
    ours = pool(table, tensors)
    (ours * grad_out).sum().backward()
    ours_grad, table.grad = table.grad.clone(), None
    theirs = F.embedding_bag(tensors["values"], table, tensors["offsets"], mode=mode)
    (theirs * grad_out).sum().backward()
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(ours_grad, table.grad)

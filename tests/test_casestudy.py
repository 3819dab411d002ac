"""The Fig. 4 case study: pairs of users by shared codes, history overlap and taste."""
import dataclasses

import numpy as np
import pandas as pd
import pytest

from dqrec import augment, casestudy
from dqrec.representation import RepresentationModel
from tests.test_augment_model import planted_split


@pytest.fixture(scope="module")
def planted():
    split = planted_split()
    rep = RepresentationModel(dim=16, hidden=32, epochs=6, batch_size=256, progress=False).fit(split)
    aug = augment.augment_side(split, rep.sample_embeddings(split, "user"), "user", n_layers=2, codebook_size=4,
                               k=5, k_latent=1)
    return split, aug


def test_genre_profiles_are_shares(planted):
    split, _ = planted
    profiles, genres = casestudy.genre_profiles(split)
    assert genres == ["A", "B"]
    has = profiles.sum(1) > 0
    np.testing.assert_allclose(profiles[has].sum(1), 1)
    group = np.arange(split.n_users) % 2  # group 0 likes the A half, group 1 the B half
    assert (profiles[has, 0] == (group[has] == 0)).all()


def test_pair_summary_counts_every_pair_once(planted):
    split, aug = planted
    summary = casestudy.pair_summary(split, aug, chunk=7)
    n = int((aug.store >= 0).sum())
    assert summary.pairs.sum() == n * (n - 1) // 2 and list(summary.shared_codes) == [0, 1, 2]
    assert summary[summary.pairs > 0].history_jaccard.between(0, 1).all()
    # planted groups: users sharing the whole ID are mostly in one group, so their tastes agree more
    # (a level with no pairs has no mean: compare the fewest shared codes that occur)
    seen = summary[summary.pairs > 0]
    assert len(seen) >= 2 and seen.genre_cosine.iloc[-1] > seen.genre_cosine.iloc[0]


def test_case_pair_shares_no_item(planted):
    split, aug = planted
    a, b = casestudy.case_pair(split, aug, min_items=5)
    x = augment.history_matrix(split)
    assert a != b and aug.store[a] >= 0 and aug.store[b] >= 0 and x[a].multiply(x[b]).sum() == 0
    table = casestudy.pair_profile(split, aug, (a, b))
    assert table.shape == (2, 2)


def test_case_study_needs_genres_and_users(planted):
    split, aug = planted
    with pytest.raises(ValueError, match="user-side"):
        casestudy.pair_summary(split, augment.SideAugmentation("item", *[None] * 7))
    no_genres = type("S", (), {"items": pd.DataFrame(index=range(3)), "name": "x"})()
    with pytest.raises(ValueError, match="no item genres"):
        casestudy.genre_profiles(no_genres)


def test_pair_summary_sd_and_counts_match_a_direct_computation(planted):
    split, aug = planted
    # mixed genres, so that the cosines within a level differ (the planted ones are all +-1)
    genres = np.random.default_rng(1).choice(["A", "B", "A|B", "C", "B|C"], len(split.items))
    split = dataclasses.replace(split, items=split.items.assign(genres=genres))
    summary = casestudy.pair_summary(split, aug, chunk=5).set_index("shared_codes")
    users = np.flatnonzero(aug.store >= 0)
    codes = aug.codes[aug.store[users]]
    g = casestudy.taste_vectors(split, users)
    x = augment.history_matrix(split)[users]
    i, j = np.triu_indices(len(users), 1)
    shared = (codes[i] == codes[j]).sum(1)
    cosine = (g[i] * g[j]).sum(1)
    none = np.asarray(x[i].multiply(x[j]).sum(1)).ravel() == 0
    assert summary.genre_cosine_sd.gt(0).any()
    for level, row in summary.iterrows():
        at = shared == level
        assert row.pairs_no_common_item == (at & none).sum()
        if at.sum() > 1:
            np.testing.assert_allclose(row.genre_cosine_sd, cosine[at].std(ddof=1), rtol=1e-6, atol=1e-9)
        if (at & none).sum() > 1:
            np.testing.assert_allclose(row.genre_cosine_no_common_item_sd, cosine[at & none].std(ddof=1), rtol=1e-6,
                                       atol=1e-9)

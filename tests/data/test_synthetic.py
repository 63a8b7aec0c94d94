"""The synthetic generator: deterministic, ML-1M-shaped, and carrying the structure it plants."""

import numpy as np
import pandas as pd
import pytest

from mlrec.core.constants import AGE, AGE_BUCKETS, GENDER, GENRES, ITEMID, OCCUPATION, RATING, TS, USERID
from mlrec.data import DataError, load_dataset
from mlrec.data.synthetic import MIN_RATINGS_PER_USER, SyntheticSpec, generate, prepare_synthetic

N = 60_000


@pytest.fixture(scope="module")
def data():
    return generate(SyntheticSpec(n_ratings=N, seed=7))


def auc(y: np.ndarray, s: np.ndarray) -> float:
    """Mann-Whitney AUC with average ranks for ties."""
    ranks = pd.Series(s).rank().to_numpy()
    pos = y == 1
    return float((ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum()))


def test_same_seed_same_data_other_seed_other_data(data):
    again = generate(SyntheticSpec(n_ratings=N, seed=7))
    for a, b in zip(data, again, strict=True):
        pd.testing.assert_frame_equal(a, b)
    other = generate(SyntheticSpec(n_ratings=N, seed=8))[2]
    assert not other[[ITEMID, RATING]].equals(data[2][[ITEMID, RATING]])


def test_shape_follows_the_scale(data):
    users, movies, ratings = data
    spec = SyntheticSpec(n_ratings=N)
    assert len(ratings) == N
    assert len(users) == spec.n_users == round(N / 165)
    assert len(movies) == spec.n_items == round(3700 * (N / 1e6) ** 0.5)
    assert SyntheticSpec(n_ratings=10_000_000).n_items < 10 * SyntheticSpec(n_ratings=1_000_000).n_items  # sub-linear
    assert ratings.dtypes.astype(str).tolist() == ["int32", "int32", "int8", "int64"]
    assert set(ratings[USERID]) == set(users[USERID]) and set(ratings[ITEMID]) <= set(movies[ITEMID])
    per_user = ratings.groupby(USERID).size()
    assert per_user.min() >= MIN_RATINGS_PER_USER
    assert per_user.max() > 3 * per_user.median()  # activity is skewed
    per_item = ratings.groupby(ITEMID).size().sort_values(ascending=False)
    assert per_item.iloc[: len(per_item) // 10].sum() > 0.2 * N  # top 10 % of items: twice their uniform share


def test_demographics_use_ml1m_vocabularies(data):
    users = data[0]
    assert set(users[GENDER]) == {"M", "F"} and 0.6 < (users[GENDER] == "M").mean() < 0.85
    assert set(users[AGE]) <= set(AGE_BUCKETS) and users[OCCUPATION].between(0, 20).all()


def test_no_duplicate_pairs_and_timestamps_increase_per_user(data):
    ratings = data[2]
    assert not ratings.duplicated([USERID, ITEMID]).any()
    same_user = ratings[USERID].diff().eq(0)
    assert ratings[USERID].is_monotonic_increasing
    assert (ratings[TS].diff()[same_user] > 0).all()
    assert ratings[TS].min() >= 956_703_932


def test_ratings_match_ml1m_label_share(data):
    ratings = data[2]
    assert ratings[RATING].between(1, 5).all() and set(ratings[RATING]) == {1, 2, 3, 4, 5}
    assert 0.52 < (ratings[RATING] > 3).mean() < 0.62


def test_planted_taste_is_learnable(data):
    _, movies, ratings = data
    df = ratings.merge(movies[[ITEMID, GENRES]], on=ITEMID)
    df["click"] = (df[RATING] > 3).astype(int)
    long = df.assign(genre=df[GENRES].str.split("|")).explode("genre")
    # each user's top genre by how often they rated it (no labels involved)
    top = long.groupby([USERID, "genre"]).size().reset_index(name="n").sort_values("n").groupby(USERID).tail(1)
    df = df.merge(top[[USERID, "genre"]], on=USERID)
    df["in_top"] = [g in gs.split("|") for g, gs in zip(df["genre"], df[GENRES], strict=True)]
    rate = df.groupby([USERID, "in_top"])["click"].mean().unstack().dropna()
    assert (rate[True] - rate[False]).mean() > 0.15
    assert (rate[True] > rate[False]).mean() > 0.8

    # and a model can use it: per-user genre click rates from the first 80 % predict the rest
    df = df.sort_values([USERID, TS])
    df["pos"] = df.groupby(USERID).cumcount() / df.groupby(USERID)[ITEMID].transform("size")
    train, test = df[df["pos"] < 0.8], df[df["pos"] >= 0.8]
    train_long = long.merge(train[[USERID, ITEMID]], on=[USERID, ITEMID])
    rate_ug = train_long.groupby([USERID, "genre"])["click"].mean().rename("r")
    test_long = long.merge(test[[USERID, ITEMID]], on=[USERID, ITEMID]).join(rate_ug, on=[USERID, "genre"])
    score = test_long.groupby([USERID, ITEMID]).agg(click=("click", "first"), s=("r", "mean")).fillna(0.5)
    assert auc(score["click"].to_numpy(), score["s"].to_numpy()) > 0.65


def test_gender_tilts_taste(data):
    users, movies, ratings = data
    romance = movies[GENRES].str.contains("Romance", regex=False)
    df = ratings.merge(users[[USERID, GENDER]], on=USERID)
    df["romance"] = df[ITEMID].map(dict(zip(movies[ITEMID], romance, strict=True)))
    share = df.groupby(GENDER)["romance"].mean()
    assert share["F"] > 1.1 * share["M"]


def test_too_small_scale_is_refused():
    with pytest.raises(DataError, match="--scale"):
        SyntheticSpec(n_ratings=100)


def test_written_files_load_back(tmp_path):
    prepare_synthetic(tmp_path / "synthetic", n_ratings=5_000, seed=3)
    users, movies, ratings = load_dataset(tmp_path / "synthetic")
    expected = generate(SyntheticSpec(n_ratings=5_000, seed=3))
    pd.testing.assert_frame_equal(ratings, expected[2])
    pd.testing.assert_frame_equal(users, expected[0].astype({GENDER: str}))
    assert movies[GENRES].tolist() == expected[1][GENRES].tolist()


def test_the_ml25m_shape_is_the_published_release():
    spec = SyntheticSpec.of_shape("ml-25m")
    assert (spec.n_ratings, spec.n_users, spec.n_items) == (25_000_095, 162_541, 62_423)
    with pytest.raises(DataError, match="unknown synthetic shape"):
        SyntheticSpec.of_shape("ml-99m")


def test_an_explicit_shape_gives_exactly_those_sizes():
    """Users and items given (as for ML-25M): every user rates, every rating is there, >= 20 per user."""
    users, movies, ratings = generate(SyntheticSpec(30_000, 3, users=400, items=2_000))
    assert (len(users), len(movies), len(ratings)) == (400, 2_000, 30_000)
    per_user = ratings.groupby(USERID).size()
    assert len(per_user) == 400 and per_user.min() >= MIN_RATINGS_PER_USER
    assert ratings[ITEMID].between(1, 2_000).all() and not ratings.duplicated([USERID, ITEMID]).any()
    with pytest.raises(DataError, match="cannot each have"):
        SyntheticSpec(5_000, users=400, items=2_000)


def test_a_shape_is_only_for_synthetic_data(tmp_path):
    from mlrec.core.paths import Paths
    from mlrec.data import prepare_dataset

    with pytest.raises(DataError, match="for the synthetic dataset"):
        prepare_dataset("ml-100k", Paths(tmp_path), shape="ml-25m")

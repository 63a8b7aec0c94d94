"""Feature engineering and the feature meta on a tiny fixture."""

import numpy as np
import pandas as pd
import pytest

from mlrec.core.constants import AGE, GENDER, GENRES, ISTEST, ITEMID, LABEL, OCCUPATION, TITLE, USERID, ZIPCODE
from mlrec.core.paths import FEATURES_SCRIPT
from mlrec.offline.feature_meta import Feature, FeatureMeta, FeatureMetaError
from mlrec.offline.features import ISVAL, build_features, write_features
from mlrec.offline.pit import item_genre_matrix, latest_counts, pit_counts

USERS = pd.DataFrame(
    {
        USERID: [1, 2, 3],
        GENDER: ["M", "F", "M"],
        AGE: [18, 25, 99],
        OCCUPATION: [0, 20, 7],
        ZIPCODE: ["1", "2", "3"],
    }
)
MOVIES = pd.DataFrame({ITEMID: [1, 2, 3], TITLE: ["a", "b", "c"], GENRES: ["Action|Comedy", "Comedy", "Drama"]})


def _inputs():
    rng = np.random.default_rng(1)
    rows = []
    for u in (1, 2, 3):
        for k in range(20):
            rows.append((u, int(rng.integers(1, 4)), int(rng.integers(0, 2)), 1 if k >= 16 else 0))
    offline = pd.DataFrame(rows, columns=[USERID, ITEMID, LABEL, ISTEST])
    genres = item_genre_matrix(MOVIES)
    return USERS, genres, offline, pit_counts(offline, genres), latest_counts(offline, genres)


@pytest.fixture
def tables():
    return build_features(*_inputs())


@pytest.mark.parametrize("chunk_rows", [7, 60, 1000])
def test_streamed_tables_equal_the_in_memory_ones(tables, tmp_path, chunk_rows):
    """The pipeline streams the tables in row chunks (one row group each); any chunking gives the same tables."""
    train_path, test_path = tmp_path / "train.parquet", tmp_path / "test.parquet"
    meta, n_train, n_test = write_features(*_inputs(), train_path, test_path, chunk_rows=chunk_rows)
    assert meta == tables.meta and (n_train, n_test) == (len(tables.train), len(tables.test))
    pd.testing.assert_frame_equal(pd.read_parquet(train_path), tables.train)
    pd.testing.assert_frame_equal(pd.read_parquet(test_path), tables.test)


def test_order_and_dropped_constants(tables):
    meta = tables.meta
    kinds = [f.kind for f in meta.features]
    assert kinds == sorted(kinds, key=["sparse_id", "sparse_side", "dense"].index)
    assert meta.names[:2] == [USERID, ITEMID]
    assert meta.names[2:5] == [GENDER, AGE, OCCUPATION]
    # only Action, Comedy, Drama vary; all other genre flags and counts are constant -> dropped
    assert [n for n in meta.names if n.startswith("item_g")] == ["item_g1", "item_g5", "item_g8"]
    assert {n for n in meta.names if n.startswith("user_g")} == {
        f"user_g{g}_{k}" for g in (1, 5, 8) for k in ("imp", "clk")
    }
    assert list(tables.train.columns) == [LABEL, ISVAL, *meta.names]
    assert list(tables.test.columns) == [LABEL, *meta.names]


def test_cardinalities_and_codes(tables):
    meta = tables.meta
    card = {f.name: f.cardinality for f in meta.features}
    assert card[USERID] == 4 and card[ITEMID] == 4 and card[GENDER] == 3 and card[AGE] == 8
    users = tables.users.set_index(USERID)
    assert users.loc[1, GENDER] == 1 and users.loc[2, GENDER] == 2
    assert users.loc[3, AGE] == 0  # 99 is not an ML-1M bucket -> unknown
    assert users.loc[2, OCCUPATION] == 21  # ML-1M code 20 shifted by one
    for f in meta.of_kind("sparse_side"):
        assert tables.train[f.name].between(0, f.cardinality - 1).all()


def test_dense_standardized_with_train_stats(tables):
    for f in tables.meta.of_kind("dense"):
        train = tables.train[f.name].to_numpy(np.float64)
        assert abs(train.mean()) < 1e-5 and abs(train.std(ddof=1) - 1) < 1e-4
        assert f.std > 0


def test_entity_tables_match_training_rows(tables):
    # the serving table holds the user's latest-window counts, scaled like training
    meta = tables.meta
    assert list(tables.users.columns) == [USERID] + [f.name for f in meta.of_owner("user") if f.kind != "sparse_id"]
    assert list(tables.items.columns) == [ITEMID] + [f.name for f in meta.of_owner("item") if f.kind != "sparse_id"]
    assert tables.items[ITEMID].tolist() == [1, 2, 3]


def test_validation_slice_is_each_users_latest_train_rows(tables):
    train = tables.train
    for _, grp in train.groupby(USERID, sort=False):
        flags = grp[ISVAL].tolist()
        assert flags == sorted(flags)  # all validation rows come after the fit rows
        assert 1 <= sum(flags) <= 2  # 16 train rows per user -> ceil(16*0.9)=15 -> 1 val row


def test_meta_round_trip(tables, tmp_path):
    path = tmp_path / "meta.json"
    tables.meta.save(path)
    loaded = FeatureMeta.load(path)
    assert loaded == tables.meta
    assert loaded.sparse_id_dims == [4, 4]
    assert loaded.dense_dim == len(tables.meta.of_kind("dense"))


def test_meta_errors(tmp_path):
    with pytest.raises(FeatureMetaError, match="feature meta not found") as err:
        FeatureMeta.load(tmp_path / "missing.json")
    assert err.value.hint == f"run `python {FEATURES_SCRIPT}` first"
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(FeatureMetaError, match=r"bad\.json"):
        FeatureMeta.load(tmp_path / "bad.json")
    with pytest.raises(FeatureMetaError, match="ordered"):
        FeatureMeta.from_dict(
            {
                "features": [
                    {"name": "d", "kind": "dense", "owner": "user"},
                    {"name": "u", "kind": "sparse_id", "owner": "user", "cardinality": 3},
                ]
            }
        )


def test_id_space_is_the_id_features_cardinality_or_the_metas_extra(tables):
    assert tables.meta.id_space("user") == 4 and tables.meta.id_space("item") == 4
    # the served meta has no id fields: the id spaces come from extra, even when it says otherwise
    no_ids = FeatureMeta(
        (
            Feature("gender", "sparse_side", "user", 3),
            Feature("item_pop", "dense", "item"),
            Feature("es_rank", "dense", "request"),
        ),
        extra={"n_users": 7, "n_items": "12"},
    )
    assert no_ids.id_space("user") == 7 and no_ids.id_space("item") == 12
    assert no_ids.sparse_id_dims == [] and [f.name for f in no_ids.of_owner("request")] == ["es_rank"]
    assert FeatureMeta.from_dict(no_ids.to_dict()) == no_ids
    with pytest.raises(FeatureMetaError, match="no item id feature and no n_items") as err:
        FeatureMeta(no_ids.features, extra={"n_users": 7}).id_space("item")
    assert FEATURES_SCRIPT in err.value.hint

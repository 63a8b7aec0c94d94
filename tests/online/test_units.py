"""Pure-Python pieces of the online path: encodings, query body, assembly, request parsing."""

import numpy as np
import pandas as pd
import pytest
from flask import Flask

from mlrec.core.constants import ISTEST, ITEMID, LABEL
from mlrec.offline.feature_meta import Feature, FeatureMeta
from mlrec.offline.popular import popular_items
from mlrec.online import es_index, redis_store
from mlrec.online.app import parse_request
from mlrec.online.assemble import FeatureAssembler
from mlrec.online.errors import BadRequest
from mlrec.online.recommender import StageTimer

META = FeatureMeta(
    features=(
        Feature("userid", "sparse_id", "user", 10),
        Feature("itemid", "sparse_id", "item", 6),
        Feature("gender", "sparse_side", "user", 3),
        Feature("item_g1", "sparse_side", "item", 2),
        Feature("user_g1_imp", "dense", "user", 0, 1.5, 2.0),
    )
)


def test_redis_encoding_round_trip():
    vec = np.arange(16, dtype=np.float32) / 7
    enc = redis_store.encode_user([1, 8], vec, np.array([3, 5, 9]))
    assert enc["term"] == b"1,8" and len(enc["vector"]) == 64 and len(enc["filter"]) == 12
    got = redis_store.decode_user(4, {k.encode(): v for k, v in enc.items()})
    assert got.terms == [1, 8] and np.array_equal(got.vector, vec) and got.seen.tolist() == [3, 5, 9]
    empty = redis_store.decode_user(4, {k.encode(): v for k, v in redis_store.encode_user([], vec, []).items()})
    assert empty.terms == [] and empty.seen.size == 0


def test_hybrid_query_excludes_seen_items_in_both_parts():
    body = es_index.hybrid_query([1, 5], np.ones(16), np.array([7, 9]), k=200)
    assert body["knn"]["k"] == 200 and body["knn"]["boost"] == 0.9 and body["size"] == 200
    assert body["knn"]["filter"]["bool"]["must_not"]["terms"]["itemid"] == [7, 9]
    assert body["query"]["bool"]["filter"]["bool"]["must_not"]["terms"]["itemid"] == [7, 9]
    assert body["query"]["bool"]["must"]["terms"] == {"genres": ["1", "5"], "boost": 0.1}
    assert "query" not in es_index.hybrid_query([], np.ones(16), np.array([]), k=10)


def test_assembler_puts_columns_in_meta_order():
    items = {"itemid": np.array([1, 2, 5]), "item_g1": np.array([1.0, 0.0, np.nan])}
    asm = FeatureAssembler(META, items)
    user = {"userid": np.array([3]), "gender": np.array([2.0]), "user_g1_imp": np.array([-0.25])}
    x = asm.build(3, asm.user_row(user), np.array([2, 1, 5, 99]))
    assert x.dtype == np.float32 and x.shape == (4, 5)
    assert x[:, 0].tolist() == [3, 3, 3, 3]
    assert x[:, 1].tolist() == [2, 1, 5, 0]  # 99 is outside the trained vocabulary -> unknown
    assert x[:, 2].tolist() == [2, 2, 2, 2]
    assert x[:, 3].tolist() == [0, 1, 0, 0]  # NaN (missing in the store) -> 0
    assert np.allclose(x[:, 4], -0.25)
    assert asm.build(42, asm.user_row(user), np.array([1]))[0, 0] == 0  # unknown user id -> 0


def test_popular_items_counts_train_clicks_only():
    off = pd.DataFrame({ITEMID: [1, 1, 2, 2, 2, 3, 3], LABEL: [1, 1, 1, 1, 0, 1, 1], ISTEST: [0, 0, 0, 0, 0, 1, 1]})
    ids, scores = popular_items(off)
    assert ids.tolist() == [1, 2] and np.allclose(scores, [0.5, 0.5])


@pytest.mark.parametrize(
    "body, field",
    [
        ("not json", "body"),
        ([1, 2], "body"),
        ({}, "userid"),
        ({"userid": "1"}, "userid"),
        ({"userid": 1.5}, "userid"),
        ({"userid": True}, "userid"),
        ({"userid": 0}, "userid"),
        ({"userid": 1, "size": 0}, "size"),
        ({"userid": 1, "size": 201}, "size"),
        ({"userid": 1, "size": "5"}, "size"),
    ],
)
def test_bad_requests_name_the_field(body, field):
    app = Flask(__name__)
    kwargs = {"data": body, "content_type": "text/plain"} if isinstance(body, str) else {"json": body}
    with app.test_request_context("/ml/rec", method="POST", **kwargs):
        from flask import request

        with pytest.raises(BadRequest) as err:
            parse_request(request)
    assert err.value.details["field"] == field and err.value.status == 400


def test_good_request_defaults_size():
    app = Flask(__name__)
    with app.test_request_context("/ml/rec", method="POST", json={"userid": 7}):
        from flask import request

        assert parse_request(request) == (7, 50)


def test_stage_timer_total_covers_stages():
    timer = StageTimer()
    with timer.stage("assemble"):
        sum(range(10000))
    ms = timer.finish()
    assert ms["total"] >= ms["assemble"] > 0

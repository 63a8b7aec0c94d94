"""Pure-Python pieces of the online path: encodings, the Elasticsearch client and query body, assembly.

Request parsing and the app factory are tested in test_app.py."""

import ssl

import numpy as np
import pandas as pd
import pytest
import urllib3

from mlrec.core.constants import ISTEST, ITEMID, LABEL
from mlrec.core.errors import MlrecError
from mlrec.core.settings import Settings
from mlrec.offline import channels
from mlrec.offline.channels import REQUEST_FEATURES, ChannelList
from mlrec.offline.feature_meta import Feature, FeatureMeta
from mlrec.offline.popular import popular_items
from mlrec.online import es_index, redis_store
from mlrec.online.assemble import FeatureAssembler, RequestFeaturesError
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
    enc = redis_store.encode_user([1, 8], vec, np.array([3, 5, 9]), np.array([9, 3]))
    assert enc["term"] == b"1,8" and len(enc["vector"]) == 64 and len(enc["filter"]) == 12
    assert len(enc["recent"]) == 8
    got = redis_store.decode_user(4, {k.encode(): v for k, v in enc.items()})
    assert got.terms == [1, 8] and np.array_equal(got.vector, vec) and got.seen.tolist() == [3, 5, 9]
    assert got.recent.tolist() == [9, 3]  # most recent first, order kept
    empty = redis_store.decode_user(4, {k.encode(): v for k, v in redis_store.encode_user([], vec, [], []).items()})
    assert empty.terms == [] and empty.seen.size == 0 and empty.recent.size == 0
    no_recent = {k.encode(): v for k, v in enc.items() if k != "recent"}  # a hash written before the field existed
    assert redis_store.decode_user(4, no_recent).recent.size == 0


def test_neighbour_encoding_drops_padding_and_round_trips():
    ids = np.array([[7, 3, 0, 0], [2, 9, 4, 1], [0, 0, 0, 0]], np.int32)
    weights = np.array([[0.5, 0.25, 0, 0], [0.9, 0.8, 0.7, 1e-8], [0, 0, 0, 0]], np.float32)
    rows = [redis_store.encode_neighbours(i, w) for i, w in zip(ids, weights, strict=True)]
    assert [len(r) for r in rows] == [16, 32, 0]  # 4 + 4 bytes per kept neighbour, no padding
    got_ids, got_weights = redis_store.decode_neighbours([*rows, None])  # None: an item HMGET did not find
    assert got_ids.dtype == np.int32 and got_weights.dtype == np.float32
    np.testing.assert_array_equal(got_ids, np.vstack([ids, np.zeros(4, np.int32)]))
    np.testing.assert_array_equal(got_weights, np.vstack([weights, np.zeros(4, np.float32)]))
    # short rows only: the width is the widest stored row, and scores equal those of the padded table
    short_ids, short_weights = redis_store.decode_neighbours([rows[0], None])
    assert short_ids.shape == short_weights.shape == (2, 2)
    for got, want in zip(
        channels.neighbour_scores(short_ids, short_weights),
        channels.neighbour_scores(ids[[0, 2]], weights[[0, 2]]),
        strict=True,
    ):
        np.testing.assert_array_equal(got, want)
    empty_ids, empty_weights = redis_store.decode_neighbours([])
    assert empty_ids.shape == empty_weights.shape == (0, 0)


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


REQUEST_META = FeatureMeta(
    features=(
        *META.features,
        # the union's columns in a different order, one dropped (constant on train): picked by name
        Feature("n_channels", "dense", "request", 0, 1.5, 0.5),
        Feature("seq_rank", "dense", "request", 0, 3.0, 2.0),
        Feature("es_score", "dense", "request", 0, 0.25, 4.0),
    )
)


def test_assembler_scales_request_features_by_name_in_meta_order():
    items = {"itemid": np.array([1, 2, 5]), "item_g1": np.array([1.0, 0.0, 1.0])}
    asm = FeatureAssembler(REQUEST_META, items)
    user = {"userid": np.array([3]), "gender": np.array([2.0]), "user_g1_imp": np.array([-0.25])}
    lists = {
        "es": ChannelList(np.array([5, 2]), np.array([2.25, 1.25], np.float32)),
        "seq": ChannelList(np.array([1, 5]), np.array([0.5, 0.1], np.float32)),
    }
    cands = channels.union(lists)
    x = asm.build(3, asm.user_row(user), cands.ids, request=cands.features)
    assert x.dtype == np.float32 and x.shape == (3, 8)
    raw = {name: cands.features[:, REQUEST_FEATURES.index(name)] for name in REQUEST_FEATURES}
    np.testing.assert_allclose(x[:, 5], (raw["n_channels"] - 1.5) / 0.5, rtol=1e-6)
    np.testing.assert_allclose(x[:, 6], (raw["seq_rank"] - 3.0) / 2.0, rtol=1e-6)
    np.testing.assert_allclose(x[:, 7], (raw["es_score"] - 0.25) / 4.0, rtol=1e-6)
    by_id = dict(zip(cands.ids.tolist(), x, strict=True))
    assert by_id[5][5] == (2 - 1.5) / 0.5 and by_id[2][5] == (1 - 1.5) / 0.5  # item 5 is in both channels
    assert by_id[1][6] == (np.log1p(0) - 3.0) / 2.0 and by_id[2][6] == np.float32((np.log1p(101) - 3.0) / 2.0)
    assert by_id[5][7] == (2.25 - 0.25) / 4.0 and by_id[1][7] == (0 - 0.25) / 4.0
    np.testing.assert_array_equal(x[:, :5], FeatureAssembler(META, items).build(3, asm.user_row(user), cands.ids))


def test_assembler_refuses_missing_or_misshapen_request_features():
    asm = FeatureAssembler(REQUEST_META, {"itemid": np.array([1]), "item_g1": np.array([1.0])})
    row = np.array([2.0, -0.25], np.float32)
    with pytest.raises(RequestFeaturesError, match="request features") as err:
        asm.build(3, row, np.array([1, 2]))
    assert isinstance(err.value, ValueError)
    with pytest.raises(RequestFeaturesError, match="shape"):
        asm.build(3, row, np.array([1, 2]), request=channels.absent_features(3))
    # a meta without request features needs none
    assert FeatureAssembler(META, {"itemid": np.array([1]), "item_g1": np.array([1.0])}).build(3, row, [1]).shape == (
        1,
        5,
    )
    with pytest.raises(RequestFeaturesError, match="does not compute"):
        FeatureAssembler(
            FeatureMeta(features=(*META.features, Feature("es_click", "dense", "request"))),
            {"itemid": np.array([1]), "item_g1": np.array([1.0])},
        )


def test_popular_items_counts_train_clicks_only():
    off = pd.DataFrame({ITEMID: [1, 1, 2, 2, 2, 3, 3], LABEL: [1, 1, 1, 1, 0, 1, 1], ISTEST: [0, 0, 0, 0, 0, 1, 1]})
    ids, scores = popular_items(off)
    assert ids.tolist() == [1, 2] and np.allclose(scores, [0.5, 0.5])


def test_stage_timer_total_covers_stages():
    timer = StageTimer()
    with timer.stage("assemble"):
        sum(range(10000))
    ms = timer.finish()
    assert ms["total"] >= ms["assemble"] > 0


def _es_node(settings: Settings):
    (node,) = es_index.connect(settings).transport.node_pool.all()
    return node


def test_es_client_over_https_verifies_certificates_against_the_configured_ca(tmp_path):
    ca = tmp_path / "http_ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")  # read only at the first request
    node = _es_node(Settings(es_scheme="https", es_ca_path=str(ca)))
    assert node.config.scheme == "https" and node.config.verify_certs is True
    assert isinstance(node.pool, urllib3.HTTPSConnectionPool)
    assert node.pool.cert_reqs == "CERT_REQUIRED" and node.pool.ca_certs == str(ca)
    assert node.pool.conn_kw["ssl_context"].verify_mode == ssl.CERT_REQUIRED


def test_es_client_over_https_without_a_ca_path_still_verifies():
    node = _es_node(Settings(es_scheme="https"))
    assert node.config.verify_certs is True and node.config.ca_certs is None
    assert node.pool.cert_reqs == "CERT_REQUIRED"


def test_es_client_over_http_is_plain():
    node = _es_node(Settings(es_scheme="http", es_ca_path="/ignored/for/http.crt"))
    assert node.config.scheme == "http" and node.config.ca_certs is None
    assert type(node.pool) is urllib3.HTTPConnectionPool  # no TLS at all


def test_es_client_refuses_a_ca_path_that_does_not_exist(tmp_path):
    with pytest.raises(MlrecError, match="MLREC_ES_CA_PATH") as err:
        es_index.connect(Settings(es_scheme="https", es_ca_path=str(tmp_path / "missing.crt")))
    assert "CA certificate" in err.value.hint

"""The whole chain on small planted synthetic data, against the real services (the session's
``chain`` fixture in conftest.py loads the session's offline artifacts into them and builds the Flask app).

The loaders check a sample of what they wrote and raise if it differs, so a report field they
return cannot fail here; these tests instead read each store back in full, independently, and
compare it with the offline artifacts. How well the models learned is checked on the same
artifacts, without services, in tests/offline/test_pipeline.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlrec.core import io
from mlrec.core.constants import GENRES, ITEMID, N_GENRES, RECALL_SIZE, RESPONSE_SIZE, USERID
from mlrec.core.contracts import FEAST_ITEM_SERVICE, FEAST_USER_SERVICE, STAGES, TOTAL
from mlrec.loaders.offline_scorer import OfflineScorer
from mlrec.offline import channels
from mlrec.offline.channels import CHANNEL_K, CHANNELS, NEIGHBOUR_CHANNELS, ChannelList
from mlrec.online import es_index, redis_store
from mlrec.online.feast_store import FeastClient
from mlrec.online.triton_ranker import TritonRanker
from mlrec_runtime import runtime
from mlrec_runtime.manager import start_service, wait_service


def _offline_popular(paths) -> tuple[np.ndarray, np.ndarray]:
    popular = pd.read_parquet(paths.popular)
    return popular[ITEMID].to_numpy(np.int64), popular["score"].to_numpy(np.float32)


def _offline_neighbours(paths, channel: str) -> tuple[np.ndarray, np.ndarray]:
    ids_path, weights_path = paths.neighbours(channel)
    return np.load(ids_path), np.load(weights_path)


def test_redis_holds_every_users_recall_inputs_the_neighbour_lists_and_the_popular_list(chain):
    settings, paths, _, _, _ = chain
    terms = io.read_id_lists(paths.user_term, "")
    vectors = io.read_npy(paths.user_vector, "")
    seen = io.read_id_lists(paths.user_filter, "")
    recent = io.read_id_lists(paths.user_recent, "")
    client = redis_store.connect(settings, timeout=10.0)
    try:
        keys = {k.decode() for k in client.scan_iter(match=f"{redis_store.USER_PREFIX}*", count=1000)}
        assert keys == {redis_store.user_key(u) for u in seen}
        for userid in seen:
            got = redis_store.read_user(client, userid)
            assert got is not None
            assert got.terms == terms.get(userid, np.zeros(0, np.int64)).tolist(), userid
            np.testing.assert_array_equal(got.vector, vectors[userid])
            np.testing.assert_array_equal(got.seen, seen[userid])
            np.testing.assert_array_equal(got.recent, recent[userid])
        for channel in NEIGHBOUR_CHANNELS:
            ids, weights = _offline_neighbours(paths, channel)
            with_neighbours = np.flatnonzero((ids != 0).any(axis=1))
            assert client.hlen(redis_store.neighbour_key(channel)) == len(with_neighbours) > 0
            got_ids, got_weights = redis_store.read_neighbours(client, channel, np.arange(len(ids) + 1))
            width = got_ids.shape[1]  # the widest stored row: the offline table minus its all-padding columns
            assert not ids[:, width:].any()
            np.testing.assert_array_equal(got_ids[:-1], ids[:, :width], err_msg=channel)
            np.testing.assert_array_equal(got_weights[:-1], weights[:, :width], err_msg=channel)
            assert not got_ids[-1].any()  # an item the table does not hold: an empty row
        ids, scores = redis_store.read_popular(client)
    finally:
        client.close()
    expected_ids, expected_scores = _offline_popular(paths)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_array_equal(scores, expected_scores)


def test_elasticsearch_holds_every_item_with_its_terms_and_vector(chain):
    settings, paths, _, _, _ = chain
    item_terms = io.read_id_lists(paths.item_term, "")
    vectors = io.read_npy(paths.item_vector, "")
    es = es_index.connect(settings, timeout=30)
    try:
        assert len(es.indices.get_alias(name=settings.es_index)) == 1  # the alias moved; no old index left
        hits = es.search(index=settings.es_index, query={"match_all": {}}, size=len(item_terms) + 10)["hits"]["hits"]
        docs = {int(h["_id"]): h["_source"] for h in hits}
        assert set(docs) == set(item_terms)
        for itemid, source in docs.items():
            assert source[ITEMID] == itemid
            assert sorted(source[GENRES]) == sorted(str(g) for g in item_terms[itemid]), itemid
            np.testing.assert_array_equal(np.array(source[es_index.VECTOR], dtype=np.float32), vectors[itemid])
        for genre in range(N_GENRES):
            expected = sum(1 for genres in item_terms.values() if genre in genres)
            assert es_index.term_hit_count(es, settings.es_index, genre) == expected, genre
    finally:
        es.close()


@pytest.mark.parametrize("service, key", [(FEAST_USER_SERVICE, USERID), (FEAST_ITEM_SERVICE, ITEMID)])
def test_feast_serves_the_offline_feature_tables(chain, service, key):
    settings, paths, _, _, _ = chain
    table = pd.read_parquet(paths.user_features if key == USERID else paths.item_features)
    sample = table.sample(n=min(40, len(table)), random_state=0)
    got = FeastClient(settings.feast_url, timeout_s=10.0).get(service, key, sample[key].to_numpy())
    assert set(got) == set(table.columns)
    np.testing.assert_array_equal(got[key], sample[key].to_numpy())
    for column in table.columns.drop(key):
        np.testing.assert_allclose(got[column], sample[column].to_numpy(np.float32), rtol=1e-6, err_msg=column)


def test_triton_scores_rows_like_the_pytorch_checkpoint(chain):
    """More rows than one Triton batch, so the chunking is exercised too."""
    settings, paths, _, _, _ = chain
    scorer = OfflineScorer(paths)
    examples = pd.read_parquet(paths.rank_examples, columns=scorer.meta.names)
    x = examples.to_numpy(np.float32, copy=True)[:3000]
    ranker = TritonRanker(settings.triton_grpc_url, settings.triton_model, timeout_s=30.0)
    try:
        assert len(x) > ranker.max_batch_size
        got = ranker.score(x)
    finally:
        ranker.close()
    np.testing.assert_allclose(got, scorer.score_features(x), atol=1e-5, rtol=0)


def test_recommendations_are_unique_unseen_sorted_and_equal_offline_scores(chain):
    _, paths, app, _, _ = chain
    client = app.test_client()
    recommender = app.extensions["recommender"]
    seen = io.read_id_lists(paths.user_filter, "")
    scorer = OfflineScorer(paths)
    users = sorted(seen)[:5]
    for userid in users:
        resp = client.post("/ml/rec", json={"userid": userid})
        assert resp.status_code == 200, resp.get_json()
        items = resp.get_json()["item_list"]
        ids = np.array([it["itemid"] for it in items])
        scores = np.array([it["score"] for it in items])
        assert len(items) == RESPONSE_SIZE and len(set(ids.tolist())) == RESPONSE_SIZE
        assert not set(ids.tolist()) & set(seen[userid].tolist())
        assert np.all(np.diff(scores) <= 0)
        recall = recommender.recall(userid)
        row = {itemid: r for r, itemid in enumerate(recall.candidates.ids.tolist())}
        assert set(ids.tolist()) <= set(row)  # served items are recall candidates
        request = recall.candidates.features[[row[i] for i in ids.tolist()]]
        np.testing.assert_allclose(scores, scorer.score(userid, ids, request), atol=1e-5, rtol=0)
        timing = resp.headers["Server-Timing"]
        assert all(f"{stage};dur=" in timing for stage in (*STAGES, TOTAL))


def test_recall_is_the_union_of_the_four_channels_computed_from_the_offline_artifacts(chain):
    """Each channel's list, recomputed here from the offline artifacts with the shared channel
    functions (Elasticsearch queried directly), equals the server's; so do the union's order and
    request features. And the ranker does serve items that only the item-to-item channels proposed."""
    settings, paths, app, _, _ = chain
    client = app.test_client()
    recommender = app.extensions["recommender"]
    terms = io.read_id_lists(paths.user_term, "")
    vectors = io.read_npy(paths.user_vector, "")
    seen = io.read_id_lists(paths.user_filter, "")
    recent = io.read_id_lists(paths.user_recent, "")
    neighbours = {c: _offline_neighbours(paths, c) for c in NEIGHBOUR_CHANNELS}
    pop_ids, pop_scores = _offline_popular(paths)
    es = es_index.connect(settings, timeout=30)
    users = np.random.default_rng(3).choice(sorted(seen), size=min(12, len(seen)), replace=False).tolist()
    served_by_item_to_item = 0
    try:
        for userid in users:
            es_ids, es_scores = es_index.hybrid_search(
                es,
                settings.es_index,
                terms.get(userid, np.zeros(0, np.int64)).tolist(),
                vectors[userid],
                seen[userid],
                k=CHANNEL_K[channels.ES],
            )
            lists = {channels.ES: ChannelList(es_ids, es_scores)}
            for channel, (ids, weights) in neighbours.items():
                nb_ids, nb_scores = channels.neighbour_scores(ids[recent[userid]], weights[recent[userid]])
                lists[channel] = channels.top_unseen(nb_ids, nb_scores, seen[userid], CHANNEL_K[channel])
            lists[channels.POPULAR] = channels.top_unseen(
                pop_ids, pop_scores, seen[userid], CHANNEL_K[channels.POPULAR]
            )
            expected = channels.union(lists)

            recall = recommender.recall(userid)
            assert recall is not None and set(recall.lists) == set(CHANNELS)
            for channel in CHANNELS:
                np.testing.assert_array_equal(recall.lists[channel].ids, lists[channel].ids, err_msg=channel)
                np.testing.assert_array_equal(recall.lists[channel].scores, lists[channel].scores, err_msg=channel)
            np.testing.assert_array_equal(recall.candidates.ids, expected.ids)
            np.testing.assert_array_equal(recall.candidates.features, expected.features)
            assert len(lists[channels.EASE].ids) > 0 and len(lists[channels.SEQ].ids) > 0, userid

            served = [it["itemid"] for it in client.post("/ml/rec", json={"userid": userid}).get_json()["item_list"]]
            item_to_item = set(lists[channels.EASE].ids.tolist()) | set(lists[channels.SEQ].ids.tolist())
            served_by_item_to_item += len((set(served) & item_to_item) - set(es_ids.tolist()))
    finally:
        es.close()
    assert served_by_item_to_item > 0  # the new channels reach the response, not only the candidate set
    assert recommender.recall(10_000_000) is None  # unknown user: no recall (the server falls back to popular)


def test_size_and_unknown_user_fallback(chain):
    _, paths, app, _, _ = chain
    client = app.test_client()
    assert len(client.post("/ml/rec", json={"userid": 1, "size": 7}).get_json()["item_list"]) == 7
    body = client.post("/ml/rec", json={"userid": 10_000_000}).get_json()
    popular, scores = _offline_popular(paths)
    assert body["fallback"] == "popular"
    assert [it["itemid"] for it in body["item_list"]] == popular[:RESPONSE_SIZE].tolist()  # the popular channel
    np.testing.assert_allclose([it["score"] for it in body["item_list"]], scores[:RESPONSE_SIZE], rtol=1e-6)
    assert client.post("/ml/rec", json={"userid": 1, "size": RECALL_SIZE + 1}).status_code == 400


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"data": "{not json", "content_type": "application/json"}, "body"),
        ({"json": {"user": 1}}, "userid"),
        ({"json": {"userid": "abc"}}, "userid"),
        ({"json": {"userid": 1, "size": -3}}, "size"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(chain, kwargs, field):
    _, _, app, _, _ = chain
    resp = app.test_client().post("/ml/rec", **kwargs)
    assert resp.status_code == 400 and resp.get_json()["field"] == field


def test_a_stopped_dependency_is_a_503_naming_it_then_recovers(chain):
    _, _, app, _, feast = chain
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    runtime.stop(feast.pid_path)  # the real feature server goes away mid-test
    try:
        resp = client.post("/ml/rec", json={"userid": 1})
        assert resp.status_code == 503
        assert resp.get_json()["dependency"] == "feast" and "Traceback" not in resp.get_data(as_text=True)
        health = client.get("/healthz")
        assert health.status_code == 503 and health.get_json()["dependencies"]["feast"] != "ok"
    finally:
        assert start_service(feast)
        wait_service(feast)
    assert client.post("/ml/rec", json={"userid": 1}).status_code == 200

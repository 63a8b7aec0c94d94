"""``POST /ml/event``: validation (fast), and on the session's real chain: an event changes the next
answer, a repeated event_id changes nothing, a bad batch changes nothing, a new user leaves the popular
fallback, the users' Feast rows follow their events, no worker is a 503 that applies nothing; and on a
Redis of its own, killed and restarted, no acknowledged event is lost."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest
import redis

from mlrec.core import io
from mlrec.core.constants import ITEMID, LABEL, TS, USERID
from mlrec.core.contracts import FEAST_USER_SERVICE
from mlrec.core.paths import TERMS_SCRIPT
from mlrec.models.als import fold_in
from mlrec.offline.candidates import USER_ACTIVITY
from mlrec.offline.feature_meta import FeatureMeta
from mlrec.offline.pit import genre_matrix
from mlrec.offline.user_state import states_after
from mlrec.online import event_worker, redis_store
from mlrec.online.errors import BadRequest, EventsNotApplied
from mlrec.online.event_worker import Catalogue, EventWorker, submit
from mlrec.online.events import MAX_EVENTS, MAX_FUTURE_S, Event, apply_events, parse_events
from mlrec.online.feast_store import FeastClient
from mlrec_runtime import runtime
from mlrec_runtime.manager import start_service, wait_service
from mlrec_runtime.redis_server import RedisServer

NOW = 1_700_000_000


def _is_item(itemid: int) -> bool:
    return itemid <= 100


def _field_of(body, now=NOW) -> str:
    with pytest.raises(BadRequest) as err:
        parse_events(body, _is_item, now)
    return err.value.details["field"]


# -- fast: the contract ----------------------------------------------------------------------------
def test_one_event_and_a_list_parse_with_defaults():
    (one,) = parse_events({"userid": 3, "itemid": 7, "rating": 4}, _is_item, NOW)
    assert (one.userid, one.itemid, one.rating, one.timestamp, one.label) == (3, 7, 4, NOW, 1)
    assert len(one.event_id) == 32  # generated
    many = parse_events(
        [
            {"userid": 3, "itemid": 7, "rating": 2, "timestamp": 5, "event_id": "a"},
            {"userid": 4, "itemid": 8.0, "rating": 5},
        ],
        _is_item,
        NOW,
    )
    first = many[0]
    assert (first.userid, first.itemid, first.timestamp, first.event_id, first.label) == (3, 7, 5, "a", 0)
    assert many[1].itemid == 8  # 8.0 is the integer 8 in JSON


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"itemid": 1, "rating": 5}, "userid"),
        ({"userid": 1, "itemid": 101, "rating": 5}, "itemid"),  # not in the catalogue
        ({"userid": 1, "itemid": 1, "rating": 6}, "rating"),
        ({"userid": 1, "itemid": 1, "rating": True}, "rating"),
        ({"userid": "1", "itemid": 1, "rating": 5}, "userid"),
        ({"userid": 0, "itemid": 1, "rating": 5}, "userid"),
        ({"userid": 1, "itemid": 1, "rating": 5, "timestamp": NOW + MAX_FUTURE_S + 1}, "timestamp"),
        ({"userid": 1, "itemid": 1, "rating": 5, "timestamp": -1}, "timestamp"),
        ({"userid": 1, "itemid": 1, "rating": 5, "event_id": ""}, "event_id"),
        ({"userid": 1, "itemid": 1, "rating": 5, "event_id": 7}, "event_id"),
        ([{"userid": 1, "itemid": 1, "rating": 5}, {"userid": 1, "itemid": 1, "rating": 0}], "events[1].rating"),
        ([{"userid": 1, "itemid": 1, "rating": 5}, 3], "events[1]"),
        ([], "events"),
        ([{"userid": 1, "itemid": 1, "rating": 5}] * (MAX_EVENTS + 1), "events"),
        ("click", "body"),
    ],
)
def test_a_bad_event_is_a_400_naming_its_field(body, field):
    assert _field_of(body) == field


# -- on the session's chain ------------------------------------------------------------------------
@pytest.fixture
def events_chain(chain, chain_redis_restored, event_worker) -> tuple:
    settings, paths, app, _, _ = chain
    return settings, paths, app, chain_redis_restored


def _rec(app, userid: int) -> dict:
    response = app.test_client().post("/ml/rec", json={"userid": userid})
    assert response.status_code == 200, response.json
    return response.json


def _post(app, body) -> tuple[int, dict]:
    response = app.test_client().post("/ml/event", json=body)
    return response.status_code, response.json


def _known_user(paths) -> int:
    return min(io.read_id_lists(paths.user_filter, TERMS_SCRIPT))


def test_an_event_removes_its_item_from_the_users_next_answer(events_chain):
    _, paths, app, client = events_chain
    user = _known_user(paths)
    top = _rec(app, user)["item_list"][0]["itemid"]
    status, body = _post(app, {"userid": user, "itemid": top, "rating": 5, "event_id": "e2e-1"})
    assert status == 200 and body["accepted"] == 1 and body["users"] == [user] and body["new_users"] == []
    after = [it["itemid"] for it in _rec(app, user)["item_list"]]
    assert top not in after
    state = redis_store.read_user(client, user)
    assert state is not None and top in state.seen and state.recent[0] == top and state.window[-1]["itemid"] == top
    assert redis_store.read_events(client)[-1] == {
        "userid": user,
        "itemid": top,
        "rating": 5,
        "timestamp": int(state.window[-1]["ts"]),
        "event_id": "e2e-1",
    }


def test_a_repeated_event_id_changes_nothing(events_chain):
    _, paths, app, client = events_chain
    user = _known_user(paths)
    event = {"userid": user, "itemid": 1, "rating": 2, "timestamp": 10, "event_id": "dup-1"}
    assert _post(app, event)[1]["accepted"] == 1
    before = client.hgetall(redis_store.user_key(user)), client.xlen(redis_store.EVENTS_STREAM)
    status, body = _post(app, [event, {**event, "itemid": 2}])  # same id: the second is a repeat too
    assert status == 200 and (body["accepted"], body["duplicates"]) == (0, 2)
    assert (client.hgetall(redis_store.user_key(user)), client.xlen(redis_store.EVENTS_STREAM)) == before


def test_a_batch_with_one_bad_event_is_a_400_and_changes_nothing(events_chain):
    _, paths, app, client = events_chain
    user = _known_user(paths)
    before = client.hgetall(redis_store.user_key(user)), client.xlen(redis_store.EVENTS_STREAM)
    status, body = _post(app, [{"userid": user, "itemid": 1, "rating": 5}, {"userid": user, "itemid": 1, "rating": 9}])
    assert status == 400 and body["field"] == "events[1].rating"
    status, body = _post(app, {"userid": user, "itemid": 10**6, "rating": 5})
    assert status == 400 and body["field"] == "itemid"
    assert (client.hgetall(redis_store.user_key(user)), client.xlen(redis_store.EVENTS_STREAM)) == before


def test_a_new_user_leaves_the_popular_fallback_after_a_few_clicks(events_chain):
    """A user Redis never held: popular fallback; after five clicks a ranked answer without them, and a
    vector folded in from the clicked items against the offline item vectors and ALS constants."""
    _, paths, app, client = events_chain
    user = 10**9
    assert _rec(app, user).get("fallback") == "popular"
    popular = [it["itemid"] for it in _rec(app, user)["item_list"]]
    clicked = popular[:5]
    clicks = [{"userid": user, "itemid": i, "rating": 5, "timestamp": NOW + k} for k, i in enumerate(clicked)]
    status, body = _post(app, clicks)
    assert status == 200 and body["accepted"] == 5 and body["new_users"] == body["folded"] == [user]
    answer = _rec(app, user)
    assert "fallback" not in answer and answer["item_list"]
    assert not set(clicked) & {it["itemid"] for it in answer["item_list"]}
    y = io.read_npy(paths.item_vector, "").astype(np.float64)
    params = io.read_json(paths.retrieval_params, "")
    expected = fold_in(y[clicked], y.T @ y, params["regularization"], params["alpha"])
    got = redis_store.read_user(client, user)
    assert got is not None
    np.testing.assert_allclose(got.vector, expected, rtol=1e-3, atol=1e-4)
    # the next batch refolds from every item so far; a user loaded with a trained vector keeps it
    assert _post(app, {"userid": user, "itemid": popular[5], "rating": 1})[1]["folded"] == [user]
    assert _post(app, {"userid": _known_user(paths), "itemid": popular[0], "rating": 5})[1]["folded"] == []


def _feast_row(feast: FeastClient, user: int, until, timeout_s: float = 10.0) -> dict[str, float]:
    """The user's Feast row once ``until(row)`` holds (the worker pushes within its interval)."""
    deadline = time.monotonic() + timeout_s
    while True:
        row = {k: float(v[0]) for k, v in feast.get(FEAST_USER_SERVICE, USERID, [user]).items()}
        if until(row) or time.monotonic() > deadline:
            return row
        time.sleep(0.1)


def test_the_users_feast_row_follows_their_events(events_chain):
    """After events, Feast serves the row the offline functions compute from the user's Redis state
    (genre counts of the window, activity from the event count), for a known user (their static
    columns kept) and a new one (codes 0, as offline for a user without a users.dat row)."""
    settings, paths, app, client = events_chain
    feast = FeastClient(settings.feast_url, timeout_s=10.0)
    meta = FeatureMeta.load(paths.feature_meta)
    activity = next(f for f in meta.features if f.name == USER_ACTIVITY)
    known, new = _known_user(paths), 10**9 + 7
    before = _feast_row(feast, known, lambda row: True)
    n_known = redis_store.read_user(client, known).n_events
    genres = genre_matrix(io.read_id_lists(paths.item_genres, TERMS_SCRIPT))
    items = np.flatnonzero(genres.any(axis=1))[:3].tolist()
    events = [
        {"userid": u, "itemid": i, "rating": 5, "timestamp": NOW + k} for u in (known, new) for k, i in enumerate(items)
    ]
    assert _post(app, events)[1]["accepted"] == 6
    for user, n in ((known, n_known + 3), (new, 3)):
        scaled = (np.log1p(n) - activity.mean) / activity.std
        row = _feast_row(feast, user, lambda r, s=scaled: abs(r[USER_ACTIVITY] - s) < 1e-4)
        expected = Catalogue.load(paths).user_rows({user: redis_store.read_user(client, user)}).iloc[0]
        for name, value in row.items():
            assert value == pytest.approx(float(expected[name]), abs=1e-5), name
    assert all(row_ := _feast_row(feast, known, lambda r: True)) and all(
        row_[f.name] == before[f.name] for f in meta.features if f.owner == "user" and f.kind == "sparse_side"
    )


def test_without_a_worker_a_request_is_a_503_that_applied_nothing(chain, chain_redis_restored):
    """No worker took the request within the wait: it is taken back off the queue, nothing is logged."""
    client = chain_redis_restored
    length = client.xlen(redis_store.EVENTS_STREAM)
    with pytest.raises(EventsNotApplied) as err:
        submit(client, [Event(10**9 + 8, 1, 5, NOW, "no-worker-1")], wait_s=0.3)
    assert err.value.status == 503 and err.value.details["dependency"] == "event worker"
    assert "nothing was applied" in str(err.value.details["reason"]) and "s1_server.py" in err.value.hint
    assert client.llen(redis_store.EVENT_QUEUE) == 0 and client.xlen(redis_store.EVENTS_STREAM) == length
    assert redis_store.read_user(client, 10**9 + 8) is None


def test_concurrent_batches_over_shared_users_apply_every_event_once(events_chain):
    """Two clients post overlapping batches (the same new users) at once: every event is logged once,
    none is lost to a conflict, and each user's state is what the offline functions compute from all
    of that user's events."""
    _, paths, _, client = events_chain
    genres = genre_matrix(io.read_id_lists(paths.item_genres, TERMS_SCRIPT))
    items = np.flatnonzero(genres.any(axis=1))
    users = 10**9 + 100 + np.arange(8)
    rng = np.random.default_rng(5)
    batches = [
        [
            {
                "userid": int(u),
                "itemid": int(i),
                "rating": int(r),
                "timestamp": NOW + 1000 * b + k,
                "event_id": f"c{b}-{k}",
            }
            for k, (u, i, r) in enumerate(
                zip(rng.choice(users, 20), rng.choice(items, 20), rng.integers(1, 6, 20), strict=True)
            )
        ]
        for b in range(24)
    ]
    parsed = [parse_events(batch, lambda i: bool(genres[i].any()), NOW + 10**6) for batch in batches]
    results: list = []

    def worker(mine):
        for events in mine:
            results.append(apply_events(client, events, genres))

    threads = [threading.Thread(target=worker, args=(parsed[t::2],)) for t in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.accepted for r in results) == 24 * 20 and sum(r.duplicates for r in results) == 0
    logged = [e["event_id"] for e in redis_store.read_events(client)]
    assert sorted(logged) == sorted(f"c{b}-{k}" for b in range(24) for k in range(20))
    everything = [e for events in parsed for e in events]
    frame = pd.DataFrame(
        {
            USERID: [e.userid for e in everything],
            ITEMID: [e.itemid for e in everything],
            LABEL: [e.label for e in everything],
            TS: [e.timestamp for e in everything],
        }
    )
    expected = states_after({}, frame, genres, {})
    for u in users.tolist():
        got = redis_store.read_user(client, u)
        assert got is not None and got.terms == expected[u].terms
        assert np.array_equal(got.window, expected[u].window) and np.array_equal(got.recent, expected[u].recent)
        assert sorted(got.seen.tolist()) == sorted(expected[u].seen.tolist())


# -- durability on a Redis of its own --------------------------------------------------------------
def test_no_acknowledged_event_is_lost_when_redis_is_killed_and_restarted(services, free_port, tmp_path):
    """The project's Redis configuration (append-only file) on its own port: events applied, then
    SIGKILL (no shutdown, no save), then a restart: every acknowledged event and its state is there."""
    server = RedisServer(dataclasses.replace(services, redis_port=free_port, runtime_dir=tmp_path))
    settings = server.settings
    genres = genre_matrix({i: [1 + i % 5] for i in range(1, 101)})
    assert start_service(server)
    try:
        wait_service(server)
        client = redis_store.connect(settings, timeout=5.0)
        events = parse_events(
            [{"userid": 1 + k % 3, "itemid": 1 + k, "rating": 5, "timestamp": k} for k in range(50)], _is_item, NOW
        )
        for chunk in (events[:20], events[20:]):
            assert apply_events(client, chunk, genres).accepted == len(chunk)
        expected = {u: redis_store.read_user(client, u) for u in (1, 2, 3)}
        client.close()
        os.killpg(runtime.read_pid(server.pid_path), signal.SIGKILL)
        with pytest.raises(redis.ConnectionError):
            redis_store.connect(settings, timeout=1.0).ping()
        server.pid_path.unlink(missing_ok=True)
        assert start_service(server)
        wait_service(server)
        client = redis_store.connect(settings, timeout=5.0)
        # every event, each user's in the order posted (the log groups a request's events by user)
        logged = redis_store.read_events(client)
        assert sorted(e["event_id"] for e in logged) == sorted(e.event_id for e in events)
        for u in (1, 2, 3):
            assert [e["event_id"] for e in logged if e["userid"] == u] == [e.event_id for e in events if e.userid == u]
        for u, state in expected.items():
            got = redis_store.read_user(client, u)
            assert got is not None and state is not None
            assert np.array_equal(got.seen, state.seen) and np.array_equal(got.window, state.window)
        assert apply_events(client, events[:1], genres).duplicates == 1  # the ids survived too
        client.close()
    finally:
        runtime.stop(server.pid_path)


def test_a_worker_that_fails_to_apply_answers_503_and_applies_the_next_request(
    chain, chain_redis_restored, monkeypatch
):
    """An unexpected error fails only the requests of that batch; the worker then serves the next one."""
    _, paths, _, _, _ = chain
    client = chain_redis_restored
    worker = EventWorker(client, paths, feast=None)
    user = 10**9 + 9
    entry = {"request": "broken", "events": [[user, 1, 5, NOW, "w-1"]]}

    def boom(*_args, **_kwargs):
        raise ValueError("a bug")

    monkeypatch.setattr(event_worker, "apply_events", boom)
    assert worker.apply([json.dumps(entry).encode()]) == 0
    answer = json.loads(client.lpop(redis_store.EVENT_REPLY_PREFIX + "broken"))
    assert answer == {"error": "the event worker failed: ValueError"} and redis_store.read_user(client, user) is None
    monkeypatch.undo()
    assert worker.apply([json.dumps({**entry, "request": "fine"}).encode()]) == 1
    assert json.loads(client.lpop(redis_store.EVENT_REPLY_PREFIX + "fine"))["accepted"] == 1


def test_healthz_shows_whether_an_event_worker_runs_without_changing_its_status(chain, chain_redis_restored):
    _, paths, app, _, _ = chain
    client = chain_redis_restored
    client.delete(redis_store.EVENT_WORKER_HEARTBEAT)
    health = app.test_client().get("/healthz")
    assert health.status_code == 200 and "no event worker heartbeat" in health.get_json()["events"]
    EventWorker(client, paths, feast=None).step(block_s=0.01)  # one step of a worker beats once
    health = app.test_client().get("/healthz")
    assert health.status_code == 200 and health.get_json()["events"] == "ok"
    assert 0 < client.ttl(redis_store.EVENT_WORKER_HEARTBEAT) <= redis_store.HEARTBEAT_TTL_S


def test_a_failing_step_does_not_stop_the_worker(chain, chain_redis_restored, monkeypatch, caplog):
    _, paths, _, _, _ = chain
    worker = EventWorker(chain_redis_restored, paths, feast=None)
    calls = []

    def step(block_s):
        calls.append(block_s)
        if len(calls) == 1:
            raise FileNotFoundError("item_genres.parquet (make clean ran)")
        return 0

    monkeypatch.setattr(worker, "step", step)
    monkeypatch.setattr(event_worker.time, "sleep", lambda _s: None)
    worker.run(lambda: len(calls) >= 3, block_s=0.01)
    assert len(calls) == 3 and "worker_step_failed" in caplog.text

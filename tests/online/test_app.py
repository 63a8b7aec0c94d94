"""The Flask app factory and request handling, without services.

``create_app`` gets a tiny recommender double through ``test_config["RECOMMENDER"]`` (the factory's
hook for exactly this): these tests are about routing, parsing, limits, auth and the error handler,
which sit in front of the recommender. The real chain behind the same app is tested in test_e2e.py
and fuzzed in test_fuzz.py.
"""

from __future__ import annotations

import dataclasses
import io

import pytest
from flask import Flask, request

from mlrec.core.constants import GENRES, ITEMID, RECALL_SIZE, RESPONSE_SIZE
from mlrec.core.io import write_id_lists
from mlrec.core.paths import Paths
from mlrec.core.settings import Settings
from mlrec.offline.feature_meta import Feature, FeatureMeta
from mlrec.online import app as app_module
from mlrec.online import redis_store
from mlrec.online.app import create_app, json_depth, parse_request
from mlrec.online.errors import ApiError, BadRequest, DependencyUnavailable
from mlrec.online.openapi import MAX_JSON_DEPTH, REC_REQUEST
from mlrec.online.recommender import RecItem, Recommender, RecResult

TOKEN = "s3cret-admin-token"
LIMIT = 4096


class RecommenderDouble:
    """Answers like :class:`Recommender` and records what it was asked; ``fail`` is raised instead."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.calls: list[tuple[int, int]] = []
        self.refreshes = 0

    def recommend(self, userid: int, size: int) -> RecResult:
        if self.fail:
            raise self.fail
        self.calls.append((userid, size))
        return RecResult(userid, [RecItem(i, 1.0 / i) for i in range(1, size + 1)], timings_ms={"total": 0.5})

    def events_health(self) -> str:
        return "ok"

    def health(self) -> dict[str, str]:
        return {"redis": "ok", "elasticsearch": "ok", "feast": "ok", "triton": "ok"}

    def refresh_items(self) -> int:
        if self.fail:
            raise self.fail
        self.refreshes += 1
        return 42


@pytest.fixture
def make_app(tmp_path):
    def make(recommender=None, prefetch: bool = False, **settings_overrides) -> Flask:
        settings = Settings(max_body_bytes=LIMIT, data_dir=tmp_path, **settings_overrides)
        config = {
            "SETTINGS": settings,
            "PATHS": Paths(tmp_path),
            "RECOMMENDER": recommender or RecommenderDouble(),
            "PREFETCH_ITEMS": prefetch,
            "TESTING": True,
        }
        return create_app(config)

    return make


# -- the factory -----------------------------------------------------------------------------------
def test_factory_uses_the_given_settings_paths_and_recommender_without_reading_the_environment(
    make_app, tmp_path, monkeypatch
):
    monkeypatch.setenv("MLREC_MAX_BODY_BYTES", "not-a-number")  # Settings.from_env() would raise
    double = RecommenderDouble()
    app = make_app(double)
    assert app.config["SETTINGS"].max_body_bytes == LIMIT and app.config["MAX_CONTENT_LENGTH"] == LIMIT
    assert app.config["PATHS"] == Paths(tmp_path)
    assert app.extensions["recommender"] is double
    assert double.refreshes == 0  # PREFETCH_ITEMS=False


def test_prefetch_reads_item_features_once_and_a_dead_feast_does_not_stop_the_app(make_app, caplog):
    double = RecommenderDouble()
    make_app(double, prefetch=True)
    assert double.refreshes == 1
    dead = RecommenderDouble(fail=DependencyUnavailable("feast", "FeastUnreachable"))
    app = make_app(dead, prefetch=True)
    assert "prefetch_failed" in caplog.text
    assert app.test_client().get("/healthz").status_code == 200


def test_without_a_recommender_the_factory_builds_the_clients_from_settings_and_paths(tmp_path):
    meta = FeatureMeta(features=(Feature("userid", "sparse_id", "user", 10), Feature("itemid", "sparse_id", "item", 6)))
    paths = Paths(tmp_path)
    meta.save(paths.feature_meta)
    settings = Settings(es_index="alias_from_settings", triton_model="model_from_settings", data_dir=tmp_path)
    app = create_app({"SETTINGS": settings, "PATHS": paths, "PREFETCH_ITEMS": False})  # clients connect lazily
    rec = app.extensions["recommender"]
    assert isinstance(rec, Recommender)
    assert rec.meta == meta and rec.es_alias == "alias_from_settings" and rec.ranker.model == "model_from_settings"


def test_routes(make_app):
    rules = {r.rule: r.methods - {"HEAD", "OPTIONS"} for r in make_app().url_map.iter_rules() if r.endpoint != "static"}
    assert rules == {
        "/ml/rec": {"POST"},
        "/ml/event": {"POST"},
        "/healthz": {"GET"},
        "/metrics": {"GET"},
        "/openapi.json": {"GET"},
        "/admin/refresh-items": {"POST"},
    }


# -- one JSON error handler ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fail, method, url, kwargs, status",
    [
        (None, "post", "/ml/rec", {"json": {"userid": 0}}, 400),
        (None, "get", "/no/such/page", {}, 404),
        (None, "get", "/ml/rec", {}, 405),
        (None, "post", "/ml/rec", {"data": b"x" * (LIMIT + 1), "content_type": "application/json"}, 413),
        (RuntimeError("a bug with a secret in it"), "post", "/ml/rec", {"json": {"userid": 1}}, 500),
        (DependencyUnavailable("triton", "TritonError"), "post", "/ml/rec", {"json": {"userid": 1}}, 503),
    ],
)
def test_every_error_is_json_with_its_status(make_app, fail, method, url, kwargs, status):
    resp = getattr(make_app(RecommenderDouble(fail=fail)).test_client(), method)(url, **kwargs)
    assert resp.status_code == status and resp.mimetype == "application/json"
    body = resp.get_json()
    assert isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in resp.get_data(as_text=True) and "secret" not in resp.get_data(as_text=True)
    if status == 405:
        assert "POST" in resp.headers["Allow"]
    if status == 500:
        assert body == {"error": "internal error"}
    if status == 503:
        assert body["dependency"] == "triton"


def test_api_errors_are_mlrec_errors_with_status_and_body():
    err = BadRequest("size", "must be between 1 and 200")
    assert isinstance(err, ApiError) and err.status == 400
    assert err.to_dict() == {"error": "size: must be between 1 and 200", "field": "size"}
    assert DependencyUnavailable("redis", "ConnectionError").to_dict()["dependency"] == "redis"


# -- body limits -----------------------------------------------------------------------------------
@pytest.mark.parametrize("method, url", [("post", "/ml/rec"), ("get", "/healthz"), ("post", "/admin/refresh-items")])
def test_a_body_over_the_limit_is_413_on_every_route_before_anything_else(make_app, method, url):
    double = RecommenderDouble()
    client = make_app(double, admin_token=TOKEN).test_client()
    resp = getattr(client, method)(url, data=b"{" + b" " * LIMIT + b"}", content_type="application/json")
    assert resp.status_code == 413 and resp.get_json()["field"] == "body"
    assert str(LIMIT) in resp.get_json()["error"]
    assert double.calls == [] and double.refreshes == 0


def test_a_body_at_the_limit_is_read(make_app):
    body = b'{"userid": 3}'
    body += b" " * (LIMIT - len(body))
    resp = make_app().test_client().post("/ml/rec", data=body, content_type="application/json")
    assert resp.status_code == 200 and resp.get_json()["userid"] == 3


def test_a_streamed_body_without_content_length_is_cut_at_the_limit_with_413(make_app):
    client = make_app().test_client()
    chunked = {"headers": {"Transfer-Encoding": "chunked"}, "environ_overrides": {"wsgi.input_terminated": True}}
    big = b'{"userid": 1, "pad": "' + b"x" * LIMIT + b'"}'
    resp = client.post("/ml/rec", input_stream=io.BytesIO(big), content_type="application/json", **chunked)
    assert resp.status_code == 413 and resp.get_json()["field"] == "body"
    small = client.post(
        "/ml/rec", input_stream=io.BytesIO(b'{"userid": 1}'), content_type="application/json", **chunked
    )
    assert small.status_code == 200


# -- deep JSON -------------------------------------------------------------------------------------
def test_json_nested_5000_deep_is_a_400_naming_the_body(tmp_path):
    app = create_app(
        {"SETTINGS": Settings(data_dir=tmp_path), "RECOMMENDER": RecommenderDouble(), "PREFETCH_ITEMS": False}
    )  # the default body limit: the deep body is well inside it
    for deep in ("[" * 5000 + "]" * 5000, '{"userid": 1, "x": ' + "[" * 5000 + "]" * 5000 + "}"):
        assert len(deep) < app.config["MAX_CONTENT_LENGTH"]
        resp = app.test_client().post("/ml/rec", data=deep, content_type="application/json")
        assert resp.status_code == 400 and resp.get_json()["field"] == "body"
        assert str(MAX_JSON_DEPTH) in resp.get_json()["error"]


def test_depth_limit_is_exact_and_brackets_inside_strings_do_not_count(make_app):
    client = make_app().test_client()

    def post(extra: str):
        return client.post("/ml/rec", data='{"userid": 1, "x": ' + extra + "}", content_type="application/json")

    at_limit = "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)  # + the outer object = MAX_JSON_DEPTH
    assert post(at_limit).status_code == 200
    assert post("[" + at_limit + "]").status_code == 400
    assert post('"' + "[" * 1000 + '"').status_code == 200


@pytest.mark.parametrize(
    "text, depth",
    [
        (b"", 0),
        (b"17", 0),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"a": "[[[{{{"}', 1),
        (rb'{"a": "quote \" then [[[["}', 1),  # an escaped quote does not end the string
        (rb'{"a": "backslash \\", "b": [[]]}', 3),  # an escaped backslash does not escape the quote
        (rb'["\\\"[[", [[[]]]]', 4),
        (b"]]]", 0),
        ("[\u5b5b\u7b7b]".encode(), 1),  # multi-byte UTF-8 never contains bracket bytes
    ],
)
def test_json_depth(text, depth):
    assert json_depth(text) == depth


# -- request parsing -------------------------------------------------------------------------------
def _parse(**request_kwargs) -> tuple[int, int]:
    with Flask(__name__).test_request_context("/ml/rec", method="POST", **request_kwargs):
        return parse_request(request)


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
        ({"userid": 1, "size": RECALL_SIZE + 1}, "size"),
        ({"userid": 1, "size": "5"}, "size"),
        ({"userid": 1, "size": float("nan")}, "size"),
    ],
)
def test_bad_requests_name_the_field(body, field):
    kwargs = {"data": body, "content_type": "text/plain"} if isinstance(body, str) else {"json": body}
    with pytest.raises(BadRequest) as err:
        _parse(**kwargs)
    assert err.value.details["field"] == field and err.value.status == 400


@pytest.mark.parametrize(
    "data, content_type",
    [
        (b'{"userid": 1', "application/json"),
        (b'{"userid": 1}', "text/plain"),
        (b'{"userid": "\xff"}', "application/json"),
    ],
)
def test_bodies_that_are_not_utf8_json_name_the_body(data, content_type):
    with pytest.raises(BadRequest) as err:
        _parse(data=data, content_type=content_type)
    assert err.value.details["field"] == "body"


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"userid": 7}, (7, RESPONSE_SIZE)),
        ({"userid": 7, "size": RECALL_SIZE}, (7, RECALL_SIZE)),
        ({"userid": 7.0, "size": 3.0}, (7, 3)),  # JSON has one number type: 7.0 is the integer 7
        ({"userid": 7, "unknown": {"nested": [1]}}, (7, RESPONSE_SIZE)),
    ],
)
def test_good_requests(body, expected):
    assert _parse(json=body) == expected


def test_parsing_enforces_the_served_schema(monkeypatch):
    """The bounds come from REC_REQUEST (what /openapi.json serves), not from a second copy."""
    size = dict(REC_REQUEST["properties"]["size"], maximum=5, default=2)
    patched = {**REC_REQUEST, "properties": {**REC_REQUEST["properties"], "size": size}}
    monkeypatch.setattr(app_module, "REC_REQUEST", patched)
    assert _parse(json={"userid": 1}) == (1, 2)
    with pytest.raises(BadRequest, match="between 1 and 5"):
        _parse(json={"userid": 1, "size": 6})


def test_rec_response_shape_and_server_timing(make_app):
    double = RecommenderDouble()
    resp = make_app(double).test_client().post("/ml/rec", json={"userid": 9, "size": 3})
    assert resp.status_code == 200 and double.calls == [(9, 3)]
    assert resp.get_json() == {"userid": 9, "item_list": [{"itemid": i, "score": 1.0 / i} for i in (1, 2, 3)]}
    assert resp.headers["Server-Timing"] == "total;dur=0.50"


# -- /admin/* --------------------------------------------------------------------------------------
def test_admin_is_off_without_a_token_and_says_how_to_enable_it(make_app):
    double = RecommenderDouble()
    resp = make_app(double).test_client().post("/admin/refresh-items", headers={"Authorization": "Bearer "})
    assert resp.status_code == 404 and "MLREC_ADMIN_TOKEN" in resp.get_json()["hint"]
    assert double.refreshes == 0


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN, "Bearer é€"],
)
def test_admin_refuses_a_missing_or_wrong_token_with_401(make_app, authorization):
    double = RecommenderDouble()
    headers = {} if authorization is None else {"Authorization": authorization}
    resp = make_app(double, admin_token=TOKEN).test_client().post("/admin/refresh-items", headers=headers)
    assert resp.status_code == 401 and resp.mimetype == "application/json"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert double.refreshes == 0


@pytest.mark.parametrize("authorization", [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"  Bearer   {TOKEN} "])
def test_admin_accepts_the_token(make_app, authorization):
    double = RecommenderDouble()
    resp = (
        make_app(double, admin_token=TOKEN)
        .test_client()
        .post("/admin/refresh-items", headers={"Authorization": authorization})
    )
    assert resp.status_code == 200 and resp.get_json() == {"items": 42} and double.refreshes == 1


def test_admin_token_is_compared_in_constant_time(make_app, monkeypatch):
    compared = []

    def spy(a, b):
        compared.append((a, b))
        return a == b

    monkeypatch.setattr(app_module.hmac, "compare_digest", spy)
    client = make_app(admin_token=TOKEN).test_client()
    assert client.post("/admin/refresh-items", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert len(compared) == 1 and len(compared[0][0]) == len(compared[0][1])  # digests: equal lengths always


def test_the_token_comes_from_the_settings_in_use(make_app):
    app = make_app(admin_token=TOKEN)
    app.config["SETTINGS"] = dataclasses.replace(app.config["SETTINGS"], admin_token="")
    resp = app.test_client().post("/admin/refresh-items", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 404


# -- /openapi.json ---------------------------------------------------------------------------------
def test_openapi_is_served_and_carries_the_limits_of_this_app(make_app):
    spec = make_app().test_client().get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    size = spec["components"]["schemas"]["RecRequest"]["properties"]["size"]
    assert (size["minimum"], size["maximum"], size["default"]) == (1, RECALL_SIZE, RESPONSE_SIZE)
    rec = spec["paths"]["/ml/rec"]["post"]
    assert {"200", "400", "413", "503"} <= set(rec["responses"])
    assert str(LIMIT) in rec["requestBody"]["description"] and str(MAX_JSON_DEPTH) in rec["requestBody"]["description"]
    admin = spec["paths"]["/admin/refresh-items"]["post"]
    assert admin["security"] == [{"adminToken": []}]
    assert spec["components"]["securitySchemes"]["adminToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "The value of MLREC_ADMIN_TOKEN in the server's environment.",
    }


# -- POST /ml/event in front of a real Recommender whose Redis is down ------------------------------
def test_events_name_a_dead_redis_a_missing_catalogue_and_bad_input_before_any_service(make_app, tmp_path, free_port):
    genres = Paths(tmp_path).item_genres
    write_id_lists({1: [3], 2: [4, 5]}, genres, ITEMID, GENRES)
    dead_redis = redis_store.connect(Settings(redis_port=free_port), timeout=0.5)  # nothing listens there

    def recommender(item_genres):
        return Recommender(None, dead_redis, None, "alias", None, None, item_genres=item_genres)  # type: ignore[arg-type]

    client = make_app(recommender(genres)).test_client()
    resp = client.post("/ml/event", json={"userid": 1, "itemid": 2, "rating": 5})
    assert resp.status_code == 503 and resp.json["dependency"] == "redis"
    resp = client.post(
        "/ml/event", json=[{"userid": 1, "itemid": 2, "rating": 5}, {"userid": 1, "itemid": 3, "rating": 5}]
    )
    assert resp.status_code == 400 and resp.json["field"] == "events[1].itemid"  # checked before Redis is asked
    resp = (
        make_app(recommender(tmp_path / "missing.parquet"))
        .test_client()
        .post("/ml/event", json={"userid": 1, "itemid": 2, "rating": 5})
    )
    assert resp.status_code == 503 and resp.json["dependency"] == "catalogue" and "make offline" in resp.json["hint"]

"""The Flask application: ``POST /ml/rec``, ``POST /ml/event``, ``GET /healthz``, ``GET /metrics``,
``GET /openapi.json``, ``POST /admin/refresh-items``.

Built by :func:`create_app` (Flask's application-factory pattern): settings come from the
environment (:class:`~mlrec.core.settings.Settings`), tests pass overrides as ``test_config``, and the
clients for the four services are created once and kept in ``app.extensions["recommender"]``.

Hardening, all answered as JSON by the one error handler:
- bodies over ``Settings.max_body_bytes`` get 413 before they are read (Flask's ``MAX_CONTENT_LENGTH``
  also stops a body streamed without a ``Content-Length``);
- JSON nested deeper than :data:`~mlrec.online.openapi.MAX_JSON_DEPTH` gets 400 before it reaches the
  recursive parser (5,000 levels used to end in a ``RecursionError`` and a 500);
- ``/admin/*`` is off unless ``MLREC_ADMIN_TOKEN`` is set, and then needs it as a bearer token.

Run: ``flask --app mlrec.online.app run --port 5000`` (development) or
``gunicorn -w 2 --threads 4 -b 127.0.0.1:5000 'mlrec.online.app:create_app()'``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

import numpy as np
from flask import Blueprint, Flask, Request, Response, current_app, jsonify, request

from mlrec.core.contracts import ITEM_LIST
from mlrec.core.log import setup_logging
from mlrec.core.paths import Paths
from mlrec.core.settings import Settings
from mlrec.offline.feature_meta import FeatureMeta
from mlrec.online import es_index, metrics, redis_store
from mlrec.online.errors import (
    AdminDisabled,
    ApiError,
    BadRequest,
    InternalError,
    PayloadTooLarge,
    Unauthorized,
    as_api_error,
    checked_int,
)
from mlrec.online.events import parse_events
from mlrec.online.feast_store import FeastPool
from mlrec.online.openapi import MAX_JSON_DEPTH, REC_REQUEST, build_spec
from mlrec.online.recommender import Recommender, RecResult
from mlrec.online.triton_ranker import TritonPool

log = logging.getLogger(__name__)
bp = Blueprint("ml", __name__)
admin = Blueprint("admin", __name__, url_prefix="/admin")


def build_recommender(settings: Settings, paths: Paths) -> Recommender:
    """One client per service node, each with the per-call timeout from settings, and the request budget.

    Elasticsearch's client retries on another node (connection errors and timeouts), at most once per
    other node: with one node, a dead Elasticsearch fails within one timeout."""
    timeout = settings.timeout_s
    es_retries = len(settings.es_urls) - 1
    return Recommender(
        meta=FeatureMeta.load(paths.feature_meta),
        redis_client=redis_store.connect(settings, timeout),
        es=es_index.connect(settings, timeout=timeout).options(max_retries=es_retries, retry_on_timeout=True),
        es_alias=settings.es_index,
        feast=FeastPool(settings.feast_urls, timeout_s=timeout),
        ranker=TritonPool(settings.triton_grpc_urls, settings.triton_model, timeout_s=timeout),
        item_genres=paths.item_genres,
        event_wait_s=settings.event_wait_s,
        budget_s=settings.request_budget_s,
        timeout_s=timeout,
    )


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The app; ``test_config`` keys win: SETTINGS, PATHS, RECOMMENDER (skips building clients),
    PREFETCH_ITEMS (read item features from Feast at start), or any Flask setting.

    Settings and paths are read from the environment only when ``test_config`` does not bring them,
    and the body limit always follows the SETTINGS in use."""
    overrides = dict(test_config or {})
    settings: Settings = overrides.get("SETTINGS") or Settings.from_env()
    setup_logging(settings.log_level)
    app = Flask(__name__)
    app.config.from_mapping(
        SETTINGS=settings,
        PATHS=overrides.get("PATHS") or Paths.from_env(settings),
        PREFETCH_ITEMS=True,
    )
    app.config.update(overrides)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes  # one limit: enforced, and served in /openapi.json
    recommender = app.config.get("RECOMMENDER") or build_recommender(settings, app.config["PATHS"])
    app.extensions["recommender"] = recommender
    app.extensions["openapi"] = build_spec(settings.max_body_bytes, settings.max_event_body_bytes)
    if app.config["PREFETCH_ITEMS"]:
        try:
            recommender.refresh_items()
        except ApiError as exc:  # start anyway; /healthz shows it and the first request retries
            log.warning("event=prefetch_failed error=%s", exc.message)
    app.register_blueprint(bp)
    app.register_blueprint(admin)
    register_error_handlers(app)

    @app.before_request
    def _refuse_large_bodies() -> None:
        """413 from the declared length, before a byte of the body is read, on every route."""
        if request.endpoint == "ml.ml_event":
            request.max_content_length = settings.max_event_body_bytes
        limit = request.max_content_length
        if limit is not None and request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge(limit)

    @app.after_request
    def _count(resp: Response) -> Response:
        if request.endpoint == "ml.ml_rec":
            metrics.REQUESTS.labels(status=str(resp.status_code)).inc()
        return resp

    return app


def register_error_handlers(app: Flask) -> None:
    """The one place errors become HTTP responses: every error, ours or werkzeug's, as JSON."""

    @app.errorhandler(Exception)
    def _render(exc: Exception) -> Response:
        err = as_api_error(exc, app.config.get("MAX_CONTENT_LENGTH"))
        if isinstance(err, InternalError):
            log.exception("event=unhandled_error")
        elif err.status >= 500:
            log.warning("event=request_failed status=%s error=%s details=%s", err.status, err.message, err.details)
        resp = jsonify(err.to_dict())
        resp.status_code = err.status
        resp.headers.update(err.headers)
        return resp


# -- request parsing -------------------------------------------------------------------------------
_BRACKET_STEP = np.zeros(256, dtype=np.int8)
_BRACKET_STEP[[ord("["), ord("{")]] = 1
_BRACKET_STEP[[ord("]"), ord("}")]] = -1


def json_depth(data: bytes) -> int:
    """How deep arrays/objects nest in the UTF-8 JSON text ``data``, found without parsing it.

    Brackets inside strings do not count: a ``"`` opens or closes a string unless an odd number of
    backslashes comes right before it. For text the parser would reject part-way, the depth of the
    part it would read is still counted, so the answer never understates the parser's recursion.
    (UTF-8 never uses these bytes inside a multi-byte character.) Vectorized: one pass of numpy
    over the bytes, well under a millisecond for the 64 KiB default limit.
    """
    b = np.frombuffer(data, dtype=np.uint8)
    if b.size == 0:
        return 0
    idx = np.arange(b.size)
    backslash = b == ord("\\")
    last_plain = np.maximum.accumulate(np.where(backslash, -1, idx))  # last non-backslash at or before i
    run_before = np.zeros(b.size, dtype=np.int64)
    run_before[1:] = idx[:-1] - last_plain[:-1]  # backslashes right before i
    quote = (b == ord('"')) & (run_before % 2 == 0)
    in_string = (np.cumsum(quote) - quote) % 2 == 1  # an odd number of quotes before i
    depth = np.cumsum(np.where(in_string, 0, _BRACKET_STEP[b]))
    return max(int(depth.max()), 0)


def read_json_body(req: Request) -> object:
    """The parsed JSON body; 413 past the size limit, 400 (field ``body``) for anything not JSON or too deep."""
    if not req.is_json:
        raise BadRequest("body", 'must be JSON (Content-Type: application/json) like {"userid": 1}')
    data = req.get_data(cache=True)
    limit = req.max_content_length
    if limit is not None and req.content_length is None and len(data) >= limit:
        # streamed without a Content-Length (chunked): werkzeug stops reading at the limit without
        # an error, so a body that fills it is taken as cut off rather than parsed as if whole
        raise PayloadTooLarge(limit)
    if json_depth(data) > MAX_JSON_DEPTH:
        raise BadRequest("body", f"is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise BadRequest("body", f'is not valid UTF-8 JSON ({type(exc).__name__}); send e.g. {{"userid": 1}}') from exc


def _int_field(body: dict, name: str) -> int:
    """The integer field ``name`` checked against its schema in :data:`REC_REQUEST` (the served contract)."""
    spec = REC_REQUEST["properties"][name]
    if name not in body:
        if name in REC_REQUEST["required"]:
            raise BadRequest(name, "is required")
        return spec["default"]
    return checked_int(body[name], name, spec["minimum"], spec.get("maximum"))


def parse_request(req: Request) -> tuple[int, int]:
    """(userid, size) from the JSON body; every mistake names its field."""
    body = read_json_body(req)
    if not isinstance(body, dict):
        raise BadRequest("body", 'must be a JSON object like {"userid": 1}')
    return _int_field(body, "userid"), _int_field(body, "size")


def _response(result: RecResult) -> Response:
    body: dict[str, Any] = {
        "userid": result.userid,
        ITEM_LIST: [{"itemid": it.itemid, "score": it.score} for it in result.items],
    }
    if result.fallback:
        body["fallback"] = result.fallback
    resp = jsonify(body)
    resp.headers["Server-Timing"] = ", ".join(f"{k};dur={v:.2f}" for k, v in result.timings_ms.items())
    return resp


@bp.post("/ml/rec")
def ml_rec() -> Response:
    """Top items for one user: recall (Redis + Elasticsearch), then rank (Feast + Triton)."""
    userid, size = parse_request(request)
    result = current_app.extensions["recommender"].recommend(userid, size)
    metrics.observe(result.timings_ms)
    return _response(result)


@bp.post("/ml/event")
def ml_event() -> Response:
    """Log events durably and apply them to the users' recall state (:mod:`mlrec.online.events`)."""
    recommender = current_app.extensions["recommender"]
    events = parse_events(read_json_body(request), recommender.is_item)
    return jsonify(recommender.ingest(events).to_dict())


@bp.get("/metrics")
def prometheus_metrics() -> tuple[bytes, int, dict[str, str]]:
    """Prometheus exposition: mlrec_stage_seconds{stage} histograms, mlrec_requests_total{status}."""
    body, content_type = metrics.render()
    return body, 200, {"Content-Type": content_type}


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Each dependency's state; 200 only when all are ok. ``events`` (the event worker) is reported beside
    them without changing the status: ``/ml/rec`` answers without it."""
    recommender = current_app.extensions["recommender"]
    states = recommender.health()
    ok = all(v == "ok" for v in states.values())
    body = {"status": "ok" if ok else "degraded", "dependencies": states, "events": recommender.events_health()}
    return jsonify(body), 200 if ok else 503


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 description of this API (built once per app from its settings)."""
    return jsonify(current_app.extensions["openapi"])


def _digest(text: str) -> bytes:
    # hashed first so the comparison takes the same time whatever the lengths; surrogateescape
    # keeps any byte an environment variable or a latin-1 header can carry
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest()


@admin.before_request
def _require_admin_token() -> None:
    """``/admin/*``: off (404) without MLREC_ADMIN_TOKEN; with it, 401 unless the bearer token matches."""
    token = current_app.config["SETTINGS"].admin_token
    if not token:
        raise AdminDisabled()
    scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
    if not hmac.compare_digest(_digest(given.strip()), _digest(token)) or scheme.lower() != "bearer":
        raise Unauthorized()


@admin.post("/refresh-items")
def refresh_items() -> Response:
    """Re-read every item's features from Feast (after a new materialization)."""
    return jsonify({"items": current_app.extensions["recommender"].refresh_items()})

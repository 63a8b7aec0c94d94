"""The Flask application: ``POST /ml/rec``, ``GET /healthz``, ``POST /admin/refresh-items``.

Built by :func:`create_app` (Flask's application-factory pattern): settings come from the
environment (:class:`~mlrec.core.settings.Settings`), tests pass overrides as ``test_config``, and the
clients for the four services are created once and kept in ``app.extensions["recommender"]``.

Run: ``flask --app mlrec.online.app run --port 5000`` (development) or
``gunicorn -w 2 --threads 4 -b 127.0.0.1:5000 'mlrec.online.app:create_app()'``.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from mlrec.core.constants import RECALL_SIZE, RESPONSE_SIZE
from mlrec.core.log import setup_logging
from mlrec.core.paths import Paths
from mlrec.core.settings import Settings
from mlrec.offline.feature_meta import FeatureMeta
from mlrec.online import es_index, metrics, redis_store
from mlrec.online.errors import ApiError, BadRequest
from mlrec.online.feast_store import FeastClient
from mlrec.online.recommender import Recommender, RecResult
from mlrec.online.triton_ranker import TritonRanker

log = logging.getLogger(__name__)
bp = Blueprint("ml", __name__)


def build_recommender(settings: Settings, paths: Paths) -> Recommender:
    """One client per service, each with the per-call timeout from settings."""
    timeout = settings.timeout_s
    return Recommender(
        meta=FeatureMeta.load(paths.feature_meta),
        redis_client=redis_store.connect(settings, timeout),
        es=es_index.connect(settings, timeout=timeout).options(max_retries=0),
        es_alias=settings.es_index,
        feast=FeastClient(settings.feast_url, timeout_s=timeout),
        ranker=TritonRanker(settings.triton_grpc_url, settings.triton_model, timeout_s=timeout),
    )


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    setup_logging()
    app = Flask(__name__)
    app.config.from_mapping(SETTINGS=Settings.from_env(), PATHS=Paths.from_env(), PREFETCH_ITEMS=True)
    if test_config:
        app.config.update(test_config)
    recommender = app.config.get("RECOMMENDER") or build_recommender(app.config["SETTINGS"], app.config["PATHS"])
    app.extensions["recommender"] = recommender
    if app.config["PREFETCH_ITEMS"]:
        try:
            recommender.refresh_items()
        except ApiError as exc:  # start anyway; /healthz shows it and the first request retries
            log.warning("event=prefetch_failed error=%s", exc.message)
    app.register_blueprint(bp)
    register_error_handlers(app)

    @app.after_request
    def _count(resp):
        if request.endpoint == "ml.ml_rec":
            metrics.REQUESTS.labels(status=str(resp.status_code)).inc()
        return resp

    return app


def register_error_handlers(app: Flask) -> None:
    """The one place errors become HTTP responses (always JSON)."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        if exc.status >= 500:
            log.warning("event=request_failed status=%s error=%s details=%s", exc.status, exc.message, exc.details)
        return jsonify(exc.to_dict()), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return jsonify({"error": exc.description or exc.name}), exc.code

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("event=unhandled_error")
        return jsonify({"error": "internal error"}), 500


def _int_field(body: dict, name: str, default: int | None, low: int, high: int | None) -> int:
    if name not in body:
        if default is None:
            raise BadRequest(name, "is required")
        return default
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(name, f"must be an integer, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        raise BadRequest(name, f"must be between {low} and {high}" if high else f"must be >= {low}")
    return value


def parse_request(req) -> tuple[int, int]:
    """(userid, size) from the JSON body; every mistake names its field."""
    body = req.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("body", 'must be a JSON object like {"userid": 1}')
    userid = _int_field(body, "userid", None, 1, None)
    size = _int_field(body, "size", RESPONSE_SIZE, 1, RECALL_SIZE)
    return userid, size


def _response(result: RecResult):
    body: dict[str, Any] = {
        "userid": result.userid,
        "item_list": [{"itemid": it.itemid, "score": it.score} for it in result.items],
    }
    if result.fallback:
        body["fallback"] = result.fallback
    resp = jsonify(body)
    resp.headers["Server-Timing"] = ", ".join(f"{k};dur={v:.2f}" for k, v in result.timings_ms.items())
    return resp


@bp.post("/ml/rec")
def ml_rec():
    """Top items for one user: recall (Redis + Elasticsearch), then rank (Feast + Triton)."""
    userid, size = parse_request(request)
    result = current_app.extensions["recommender"].recommend(userid, size)
    metrics.observe(result.timings_ms)
    return _response(result)


@bp.get("/metrics")
def prometheus_metrics():
    """Prometheus exposition: mlrec_stage_seconds{stage} histograms, mlrec_requests_total{status}."""
    body, content_type = metrics.render()
    return body, 200, {"Content-Type": content_type}


@bp.get("/healthz")
def healthz():
    """Each dependency's state; 200 only when all are ok."""
    states = current_app.extensions["recommender"].health()
    ok = all(v == "ok" for v in states.values())
    return jsonify({"status": "ok" if ok else "degraded", "dependencies": states}), 200 if ok else 503


@bp.post("/admin/refresh-items")
def refresh_items():
    """Re-read every item's features from Feast (after a new materialization)."""
    return jsonify({"items": current_app.extensions["recommender"].refresh_items()})

"""Property-based fuzzing of the API against its own OpenAPI description (schemathesis).

Schemathesis reads ``GET /openapi.json`` from the app (in-process, over WSGI), generates valid
(positive) and schema-violating (negative) requests for every operation, and checks each answer:
never a 5xx, a documented status code and content type, a body and headers that match the
documented schema. The run is bounded (``max_examples`` per generation mode) so it stays well
under a minute.

The integration tests fuzz the app of the session's ``chain`` (real Redis, Elasticsearch, Feast,
Triton with small synthetic data). The fast tests validate the document against the OpenAPI
meta-schema and fuzz the request handling in front of a tiny recommender double.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import hypothesis
import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mlrec.core import io
from mlrec.core.paths import TERMS_SCRIPT
from mlrec.core.settings import Settings
from mlrec.online.app import create_app
from mlrec.online.events import Applied, Event
from mlrec.online.openapi import build_spec
from mlrec.online.recommender import RecItem, RecResult

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
ADMIN = ("/admin/refresh-items", "POST")
TOKEN = "fuzz-admin-token"


@dataclass
class Answers:
    """What the fuzzed app answered: (operation, mode, status) -> count, and how many ``/ml/rec``
    answers were ranked (no ``fallback``: the request went through Elasticsearch, Feast and Triton)."""

    statuses: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    ranked: int = 0

    def of(self, label: str, mode: str) -> set[int]:
        return {status for (op, m, status) in self.statuses if op == label and m == mode}


def fuzz(
    app: Flask,
    max_examples: int,
    operation: tuple[str, str] | None = None,
    modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
    headers: dict[str, str] | None = None,
    known_users: Sequence[int] = (),
    event_users_from: int | None = None,
) -> Answers:
    """Fuzz ``app`` (every operation, or one) with schemathesis, ``max_examples`` per mode.

    ``event_users_from`` moves every event's valid userid into ``[event_users_from, +1000)``.
    ``known_users`` steers about half of the bodies that carry a valid ``userid`` to a user the
    stores know (random integers almost never are one), so the fuzz reaches the ranking path and
    not only the popular fallback; bodies invalid for another reason stay invalid.
    Any failed check (a 5xx first of all) raises with the request that caused it and a curl line.
    """
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    if event_users_from is not None:

        @schema.hook("map_body")
        def _events_to_reserved_users(context, body):
            """Accepted events change their users: keep them off the users other tests compare."""
            if context.operation is None or context.operation.path != "/ml/event":
                return body
            for event in body if isinstance(body, list) else [body]:
                if isinstance(event, dict) and type(event.get("userid")) is int and event["userid"] >= 1:
                    event["userid"] = event_users_from + event["userid"] % 1000
            return body

    if known_users:

        @schema.hook("flatmap_body")
        def _steer_to_known_users(context, body):
            valid = isinstance(body, dict) and type(body.get("userid")) is int and body["userid"] >= 1
            if not valid:
                return st.just(body)
            return st.one_of(st.just(body), st.sampled_from(known_users).map(lambda u: {**body, "userid": u}))

    answers = Answers()
    for mode in modes:
        if operation:
            strategy = schema[operation[0]][operation[1]].as_strategy(generation_mode=mode)
        else:
            strategy = schema.as_strategy(generation_mode=mode)
        _run(strategy, mode.value, max_examples, headers, answers)
    return answers


def _run(strategy, mode: str, max_examples: int, headers: dict[str, str] | None, answers: Answers) -> None:
    @hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        database=None,  # no .hypothesis/ in the work tree
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=strategy)
    def one(case):
        response = case.call(headers=headers)
        answers.statuses[(case.operation.label, mode, response.status_code)] += 1
        assert response.status_code < 500, (case.operation.label, response.status_code, response.text)
        case.validate_response(response, checks=CHECKS)
        if case.operation.label == "POST /ml/rec" and response.status_code == 200:
            answers.ranked += "fallback" not in response.json()

    one()


# -- fast: the document, and the request handling in front of a double ----------------------------
class RecommenderDouble:
    def __init__(self) -> None:
        self.userids: list[int] = []

    def recommend(self, userid: int, size: int) -> RecResult:
        self.userids.append(userid)
        return RecResult(userid, [RecItem(i, 1.0 / i) for i in range(1, size + 1)], timings_ms={"total": 0.1})

    def events_health(self) -> str:
        return "ok"

    def health(self) -> dict[str, str]:
        return {"redis": "ok"}

    def refresh_items(self) -> int:
        return 7

    def is_item(self, itemid: int) -> bool:
        return itemid <= 100

    def ingest(self, events: list[Event]) -> Applied:
        return Applied(accepted=len(events), users=sorted({e.userid for e in events}))


def _app(tmp_path, recommender: object, **settings) -> Flask:
    return create_app(
        {"SETTINGS": Settings(data_dir=tmp_path, **settings), "RECOMMENDER": recommender, "PREFETCH_ITEMS": False}
    )


def test_openapi_document_is_valid_and_describes_every_route(tmp_path):
    app = _app(tmp_path, object())  # serving the document needs no recommender at all
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    schema.validate()  # against the OpenAPI 3.1 meta-schema; raises on any violation
    documented = {(path, method.upper()) for path, ops in schema.raw_schema["paths"].items() for method in ops}
    routes = {
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert documented == routes


def test_validation_catches_a_broken_document():
    spec = build_spec(1024)
    del spec["paths"]["/ml/rec"]["post"]["responses"]["200"]["description"]  # required by OpenAPI
    with pytest.raises(Exception, match="description"):
        schemathesis.openapi.from_dict(spec).validate()


def test_fuzz_request_handling_has_no_server_errors(tmp_path):
    double = RecommenderDouble()
    answers = fuzz(_app(tmp_path, double), max_examples=40, known_users=range(1, 11))
    assert any(1 <= userid <= 10 for userid in double.userids)  # the steering reaches the recommender
    assert 200 in answers.of("POST /ml/rec", "positive")
    assert answers.of("POST /ml/rec", "negative") <= {400, 413}
    assert answers.of("POST /ml/event", "negative") <= {400, 413}
    assert answers.of("POST /admin/refresh-items", "positive") == {404}  # no token configured


def test_fuzz_admin_with_the_token_has_no_server_errors(tmp_path):
    app = _app(tmp_path, RecommenderDouble(), admin_token=TOKEN)
    assert fuzz(app, 10, ADMIN).of("POST /admin/refresh-items", "positive") == {401}  # generated tokens
    answers = fuzz(app, 5, ADMIN, modes=(GenerationMode.POSITIVE,), headers={"Authorization": f"Bearer {TOKEN}"})
    assert answers.of("POST /admin/refresh-items", "positive") == {200}


# -- integration: the real chain -------------------------------------------------------------------
def test_fuzz_the_real_chain_has_no_server_errors(chain, chain_redis_restored, event_worker):
    _, paths, app, _, _ = chain
    users = sorted(io.read_id_lists(paths.user_filter, TERMS_SCRIPT))  # the users loaded into Redis
    answers = fuzz(app, max_examples=100, known_users=users, event_users_from=10**9)
    assert answers.of("POST /ml/event", "negative") <= {400, 413}
    for label in ("POST /ml/rec", "POST /ml/event", "GET /healthz", "GET /metrics", "POST /admin/refresh-items"):
        assert answers.of(label, "positive"), f"{label} was never called"
    assert 200 in answers.of("POST /ml/rec", "positive")
    assert answers.of("POST /ml/rec", "negative") <= {400, 413}
    assert answers.of("GET /healthz", "positive") == {200}
    assert answers.ranked > 0, "no fuzzed request reached Elasticsearch, Feast and Triton"


def test_fuzz_admin_on_the_real_chain_has_no_server_errors(chain):
    settings, paths, _, _, _ = chain
    app = create_app({"SETTINGS": dataclasses.replace(settings, admin_token=TOKEN), "PATHS": paths, "TESTING": True})
    answers = fuzz(app, 5, ADMIN, modes=(GenerationMode.POSITIVE,), headers={"Authorization": f"Bearer {TOKEN}"})
    assert answers.of("POST /admin/refresh-items", "positive") == {200}
    assert fuzz(app, 10, ADMIN).of("POST /admin/refresh-items", "positive") == {401}

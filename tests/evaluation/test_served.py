"""Asking the service: K is checked before any request; 503 is retried and counted, other errors stop the run.

The HTTP side runs against a real local HTTP server that answers from a script, so the client's
requests, JSON parsing, retries and padding are exercised end to end without the recommender.
"""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from mlrec.core.errors import MlrecError
from mlrec.evaluation import served
from mlrec.evaluation.errors import EvaluationError
from mlrec.evaluation.metrics import PAD
from mlrec.evaluation.served import MAX_SERVED, check_k, fetch_served


class ScriptedService:
    """``POST /ml/rec`` answering from ``script[userid]``: a list of (status, body) consumed per request."""

    def __init__(self) -> None:
        self.script: dict[int, list[tuple[int, dict]]] = {}
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    def answer(self, request: dict) -> tuple[int, dict]:
        with self.lock:
            self.requests.append(request)
            return self.script[request["userid"]].pop(0)


@pytest.fixture
def service() -> Iterator[tuple[str, ScriptedService]]:
    scripted = ScriptedService()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the http.server hook name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, answer = scripted.answer(body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", scripted
    finally:
        server.shutdown()
        server.server_close()


def ok(items: list[int], fallback: bool = False) -> tuple[int, dict]:
    return 200, {"item_list": [{"itemid": i, "score": 1.0} for i in items], "fallback": fallback}


@pytest.mark.parametrize("k", [0, MAX_SERVED + 1])
def test_k_outside_what_the_service_answers_is_refused_before_any_request(k):
    with pytest.raises(EvaluationError, match=f"--k {k}") as err:
        check_k(k)
    assert isinstance(err.value, MlrecError) and "--k" in err.value.hint
    with pytest.raises(EvaluationError):
        fetch_served("http://127.0.0.1:9", np.array([1]), k)  # nothing listens there: no request was tried


def test_fetch_served_pads_short_answers_counts_fallbacks_and_asks_for_k(service):
    url, scripted = service
    scripted.script = {1: [ok([5, 6, 7])], 2: [ok([9], fallback=True)], 3: [ok([])]}
    got = fetch_served(url, np.array([1, 2, 3]), 3, concurrency=2)
    assert got.ranked.tolist() == [[5, 6, 7], [9, PAD, PAD], [PAD, PAD, PAD]]
    assert (got.fallback_users, got.retries) == (1, 0)
    assert len(got.latency_ms) == 3 and (got.latency_ms > 0).all()
    assert sorted(r["userid"] for r in scripted.requests) == [1, 2, 3]
    assert {r["size"] for r in scripted.requests} == {3}


def test_a_503_is_retried_and_counted(service, monkeypatch):
    monkeypatch.setattr(served, "RETRY_DELAYS_S", (0.0, 0.0, 0.0))
    url, scripted = service
    scripted.script = {1: [(503, {"error": "busy"}), (503, {"error": "busy"}), ok([4, 2])]}
    got = fetch_served(url, np.array([1]), 2, concurrency=1)
    assert got.ranked.tolist() == [[4, 2]]
    assert got.retries == 2 and len(scripted.requests) == 3


def test_a_persisting_503_or_any_other_error_stops_the_run_with_a_hint(service, monkeypatch):
    monkeypatch.setattr(served, "RETRY_DELAYS_S", (0.0, 0.0, 0.0))
    url, scripted = service
    scripted.script = {1: [(503, {"error": "busy"})] * 4}
    with pytest.raises(EvaluationError, match="HTTP 503") as err:
        fetch_served(url, np.array([1]), 2, concurrency=1)
    assert len(scripted.requests) == 4  # the first try and three retries
    assert f"curl -s {url}/healthz" in err.value.hint
    scripted.requests.clear()
    scripted.script = {1: [(400, {"error": "bad userid"})]}
    with pytest.raises(EvaluationError, match="HTTP 400"):
        fetch_served(url, np.array([1]), 2, concurrency=1)
    assert len(scripted.requests) == 1  # not retried

"""Scoring (user, item) feature rows on Triton over one persistent gRPC connection.

Requests are cut into chunks of at most the model's ``max_batch_size`` (read from the served
model's config once), so a larger candidate list never trips Triton's batch limit. :class:`TritonPool`
spreads the scoring over several servers and steps over one that does not answer.
"""

from __future__ import annotations

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from mlrec.core.contracts import TRITON_INPUT, TRITON_OUTPUT
from mlrec.online.failover import Deadline, NodePool

# gRPC status codes meaning "no answer from this server" (it is down or too slow): try another one
UNREACHABLE = ("StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED")


class TritonError(RuntimeError):
    """Triton could not score the request (down, slow, or the model is not loaded)."""


class TritonUnreachable(TritonError):
    """The server did not answer (refused, reset, timed out); another server may."""


def _error(url: str, exc: InferenceServerException, what: str = "") -> TritonError:
    cls = TritonUnreachable if exc.status() in UNREACHABLE else TritonError
    return cls(f"triton at {url}: {what}{exc.message()}")


class TritonRanker:
    def __init__(self, url: str, model: str, timeout_s: float = 2.0, max_batch_size: int | None = None) -> None:
        self.url, self.model, self.timeout_s = url, model, timeout_s
        self.client = grpcclient.InferenceServerClient(url=url)
        self._max_batch = max_batch_size

    @property
    def max_batch_size(self) -> int:
        if self._max_batch is None:
            try:
                cfg = self.client.get_model_config(self.model, as_json=True, client_timeout=self.timeout_s)
            except InferenceServerException as exc:
                raise _error(self.url, exc, f"model {self.model!r}: ") from exc
            self._max_batch = int(cfg["config"].get("max_batch_size", 0)) or 1024
        return self._max_batch

    def score(self, x: np.ndarray, timeout_s: float | None = None) -> np.ndarray:
        """float32 (n, n_features) -> probabilities (n,), in input order (``timeout_s`` per call)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = np.empty(len(x), dtype=np.float32)
        step = self.max_batch_size
        for start in range(0, len(x), step):
            chunk = x[start : start + step]
            inp = grpcclient.InferInput(TRITON_INPUT, list(chunk.shape), "FP32")
            inp.set_data_from_numpy(chunk)
            try:
                res = self.client.infer(
                    self.model,
                    [inp],
                    outputs=[grpcclient.InferRequestedOutput(TRITON_OUTPUT)],
                    client_timeout=timeout_s or self.timeout_s,
                )
            except InferenceServerException as exc:
                raise _error(self.url, exc) from exc
            out[start : start + len(chunk)] = res.as_numpy(TRITON_OUTPUT).reshape(-1)
        return out

    def ready(self) -> bool:
        try:
            return bool(self.client.is_model_ready(self.model, client_timeout=self.timeout_s))
        except InferenceServerException:
            return False

    def load(self) -> None:
        """Ask Triton (explicit model-control mode) to (re)load the model from its repository."""
        try:
            self.client.load_model(self.model, client_timeout=max(self.timeout_s, 60.0))
        except InferenceServerException as exc:
            raise TritonError(f"triton at {self.url}: loading {self.model!r} failed: {exc.message()}") from exc
        self._max_batch = None

    def close(self) -> None:
        self.client.close()


class TritonPool:
    """The tier's Triton servers behind :class:`TritonRanker`'s calls: scoring goes to each in turn and
    steps over a server that does not answer (:class:`~mlrec.online.failover.NodePool`); loading goes
    to every server, so each serves the same model."""

    def __init__(self, urls: list[str], model: str, timeout_s: float = 2.0) -> None:
        self.rankers = [TritonRanker(url, model, timeout_s=timeout_s) for url in urls]
        self.pool: NodePool[TritonRanker] = NodePool(self.rankers)
        self.model, self.timeout_s = model, timeout_s
        self.url = ",".join(urls)

    def score(self, x: np.ndarray, deadline: Deadline | None = None) -> np.ndarray:
        return self.pool.call(lambda r, t: r.score(x, timeout_s=t), (TritonUnreachable,), deadline, self.timeout_s)

    def ready(self) -> bool:
        """Whether some server has the model ready (the tier can score)."""
        return any(r.ready() for r in self.rankers)

    def load(self) -> None:
        """(Re)load the model on every server; the first failure is raised."""
        for ranker in self.rankers:
            ranker.load()

    def close(self) -> None:
        for ranker in self.rankers:
            ranker.close()

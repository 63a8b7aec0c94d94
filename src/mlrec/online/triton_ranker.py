"""Scoring (user, item) feature rows on Triton over one persistent gRPC connection.

Requests are cut into chunks of at most the model's ``max_batch_size`` (read from the served
model's config once), so a larger candidate list never trips Triton's batch limit.
"""

from __future__ import annotations

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from mlrec.core.contracts import TRITON_INPUT, TRITON_OUTPUT


class TritonError(RuntimeError):
    """Triton could not score the request (down, slow, or the model is not loaded)."""


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
                raise TritonError(f"triton at {self.url}: model {self.model!r}: {exc.message()}") from exc
            self._max_batch = int(cfg["config"].get("max_batch_size", 0)) or 1024
        return self._max_batch

    def score(self, x: np.ndarray) -> np.ndarray:
        """float32 (n, n_features) -> probabilities (n,), in input order."""
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
                    client_timeout=self.timeout_s,
                )
            except InferenceServerException as exc:
                raise TritonError(f"triton at {self.url}: {exc.message()}") from exc
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

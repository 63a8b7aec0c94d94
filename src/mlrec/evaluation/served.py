"""Asking the running service: every evaluated user's top k over HTTP ``POST /ml/rec``.

The system is scored through its public API on purpose, so the number includes everything a
caller gets (recall, features, ranking, the popular fallback), not a re-implementation of it.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import requests
from requests.adapters import HTTPAdapter
from tqdm import tqdm

from mlrec.core.constants import RECALL_SIZE
from mlrec.evaluation.errors import EvaluationError
from mlrec.evaluation.metrics import pad_lists

log = logging.getLogger(__name__)
MAX_SERVED = RECALL_SIZE  # POST /ml/rec accepts size <= 200
RETRY_STATUS = 503  # a dependency briefly unavailable (the service says which); anything else is fatal
RETRY_DELAYS_S = (0.5, 1.0, 2.0)


@dataclass(frozen=True)
class ServedLists:
    ranked: np.ndarray  # [users, k], -1 padded
    fallback_users: int  # answered with the popularity fallback (user unknown to Redis)
    latency_ms: np.ndarray
    seconds: float
    retries: int  # 503 answers retried


def check_k(k: int) -> None:
    """Refuse a K the service cannot answer before any request is sent."""
    if not 1 <= k <= MAX_SERVED:
        raise EvaluationError(
            f"--k {k}: the service answers 1..{MAX_SERVED} items per request", f"pass --k between 1 and {MAX_SERVED}"
        )


def _session(concurrency: int) -> requests.Session:
    """One keep-alive connection per worker thread, shared through the session's pool."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=concurrency)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _ask(
    session: requests.Session, url: str, userid: int, k: int, timeout_s: float
) -> tuple[list[int], bool, float, int]:
    """(item ids, fallback?, latency ms of the answered try, retries) for one user.

    A 503 is retried a few times with backoff so one busy moment of a dependency does not void
    the whole run; retries are counted in the report, and a persisting error stops the run.
    """
    for retries, delay in enumerate((*RETRY_DELAYS_S, None)):
        start = time.perf_counter()
        resp = session.post(f"{url}/ml/rec", json={"userid": int(userid), "size": k}, timeout=timeout_s)
        latency = (time.perf_counter() - start) * 1000
        if resp.status_code == 200:
            body = resp.json()
            return [int(it["itemid"]) for it in body["item_list"]], bool(body.get("fallback")), latency, retries
        if resp.status_code != RETRY_STATUS or delay is None:
            break
        log.info("event=retry userid=%s status=%s delay_s=%s", userid, resp.status_code, delay)
        time.sleep(delay)
    raise EvaluationError(
        f"POST {url}/ml/rec for userid {userid}: HTTP {resp.status_code} {resp.text[:200]!r}",
        f"check `curl -s {url}/healthz` and the server log",
    )


def fetch_served(url: str, userids: np.ndarray, k: int, concurrency: int = 8, timeout_s: float = 10.0) -> ServedLists:
    """Every user's top k from the running service, ``concurrency`` requests in flight."""
    check_k(k)
    session = _session(concurrency)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        answers = list(
            tqdm(
                pool.map(lambda u: _ask(session, url, u, k, timeout_s), userids.tolist()),
                total=len(userids),
                desc="POST /ml/rec",
                unit="user",
                disable=None,
            )
        )
    seconds = time.perf_counter() - start
    session.close()
    return ServedLists(
        ranked=pad_lists([a[0] for a in answers], k),
        fallback_users=sum(a[1] for a in answers),
        latency_ms=np.array([a[2] for a in answers]),
        seconds=seconds,
        retries=sum(a[3] for a in answers),
    )

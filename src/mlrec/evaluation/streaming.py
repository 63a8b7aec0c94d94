"""Streaming evaluation: replay each user's held-out last 10 events in time order against the running
service; before each event ask ``POST /ml/rec``, then post the event to ``POST /ml/event``.

The score is whether the *next* event's item is in the list asked for just before it (HitRate@K and
NDCG@K with that one item relevant, over the held-out positives, rating > 3), with the event stream on
(each event posted, so the next answer reflects it) and off (the static system: one answer per user,
asked before any of their held-out events, scored against each of them).

The replay changes the users it touches; every one of their Redis hashes is put back afterwards and the
replayed events are removed from the log (their ids start with :data:`EVENT_PREFIX`).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import redis
import requests
from tqdm import tqdm

from mlrec.core.constants import CLICK_RATING_THRESHOLD, ITEMID, LABEL, TS, USERID
from mlrec.core.contracts import ITEM_LIST
from mlrec.evaluation.errors import EvaluationError
from mlrec.online import redis_store

EVENT_PREFIX = "stream-eval-"
# The split keeps each event's label (rating > 3), not its rating: the replay posts a rating on the same
# side of the threshold, which is all the online state reads of it.
RATING_OF_LABEL = {1: 5, 0: CLICK_RATING_THRESHOLD}


@dataclass
class StreamScore:
    mode: str  # "events on" or "events off"
    targets: int  # held-out positives scored
    hit_rate: float
    ndcg: float
    requests: int
    seconds: float


@dataclass
class StreamReport:
    dataset: str
    k: int
    users: int
    events: int
    scores: list[StreamScore] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _ranks(items: list[int], target: int, k: int) -> float:
    """NDCG@k of one relevant item: 1 / log2(rank + 2) if it is in the top k, else 0."""
    top = items[:k]
    return 1.0 / np.log2(top.index(target) + 2) if target in top else 0.0


def _ask(session: requests.Session, url: str, userid: int, k: int) -> list[int]:
    resp = session.post(f"{url}/ml/rec", json={"userid": userid, "size": k}, timeout=30)
    if resp.status_code != 200:
        raise EvaluationError(f"POST {url}/ml/rec for {userid}: HTTP {resp.status_code} {resp.text[:200]!r}")
    return [int(it["itemid"]) for it in resp.json()[ITEM_LIST]]


def _post(session: requests.Session, url: str, userid: int, row, j: int) -> None:
    body = {
        "userid": userid,
        "itemid": int(row[ITEMID]),
        "rating": RATING_OF_LABEL[int(row[LABEL])],
        "timestamp": int(row[TS]),
        "event_id": f"{EVENT_PREFIX}{userid}-{j}",
    }
    resp = session.post(f"{url}/ml/event", json=body, timeout=30)
    if resp.status_code != 200:
        raise EvaluationError(f"POST {url}/ml/event for {userid}: HTTP {resp.status_code} {resp.text[:200]!r}")


def _replay_user(url: str, userid: int, events: pd.DataFrame, k: int, stream: bool) -> tuple[list[float], int]:
    """(per held-out positive: its NDCG@k, 0 when missed), requests made, for one user."""
    with requests.Session() as session:
        scores: list[float] = []
        static = [] if stream else _ask(session, url, userid, k)
        asked = 0 if stream else 1
        for j, row in enumerate(events.to_dict("records")):
            items = _ask(session, url, userid, k) if stream else static
            if row[LABEL] == 1:
                scores.append(_ranks(items, int(row[ITEMID]), k))
            if stream:
                _post(session, url, userid, row, j)
                asked += 2
    return scores, asked


def replay(url: str, online: pd.DataFrame, k: int, stream: bool, concurrency: int = 4) -> StreamScore:
    """Replay every user's held-out events (``online``: USERID, ITEMID, LABEL, TS) with the stream on or off."""
    by_user = {int(u): g.sort_values(TS, kind="stable") for u, g in online.groupby(USERID)}
    start = time.perf_counter()
    ndcgs: list[float] = []
    requests_made = 0
    with ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(_replay_user, url, u, events, k, stream) for u, events in by_user.items()]
        mode = "events on" if stream else "events off"
        for f in tqdm(futures, desc=f"replay ({mode})", unit="user", disable=None):
            scores, asked = f.result()
            ndcgs += scores
            requests_made += asked
    arr = np.asarray(ndcgs)
    return StreamScore(
        mode=mode,
        targets=len(arr),
        hit_rate=round(float((arr > 0).mean()), 4),
        ndcg=round(float(arr.mean()), 4),
        requests=requests_made,
        seconds=round(time.perf_counter() - start, 1),
    )


def snapshot(client: redis.Redis, userids: list[int]) -> dict[str, bytes | None]:
    """Each user's hash, serialized (``DUMP``; None for a user Redis does not hold)."""
    pipe = client.pipeline(transaction=False)
    keys = [redis_store.user_key(u) for u in userids]
    for key in keys:
        pipe.dump(key)
    return dict(zip(keys, pipe.execute(), strict=True))


def restore(client: redis.Redis, dumps: dict[str, bytes | None]) -> None:
    """Put each hash back as :func:`snapshot` found it (deleted if it did not exist)."""
    pipe = client.pipeline(transaction=False)
    for key, dump in dumps.items():
        if dump is None:
            pipe.delete(key)
        else:
            pipe.restore(key, 0, dump, replace=True)
    pipe.execute()

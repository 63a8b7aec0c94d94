"""Online top-K quality: the running service, its recall stages and two baselines, one protocol.

Why this exists: the split keeps each user's last 10 events "for online evaluation" and nothing
used them. Here every user with a held-out positive is sent to the real service (HTTP ``POST
/ml/rec``) and the answer is scored against those positives. Beside it, from the same artifacts
and the same stores the service reads, so the numbers are comparable:

* the recall stages, queried in the REAL Elasticsearch index with each user's inputs read from
  the REAL Redis (terms, MF vector, seen filter): the served hybrid body from
  :func:`mlrec.online.es_index.hybrid_query`, and that body with its kNN part removed (term recall
  alone) or its term query removed (vector recall alone); the hybrid order is the "recall order"
  the ranker re-orders, so ranker lift = NDCG(served) - NDCG(recall order);
* baselines in numpy over the full catalogue: most popular by train clicks and ID-only MF
  (dot product of the exported MF vectors), seen items removed like the service removes them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial

import numpy as np
import pandas as pd
import requests
from requests.adapters import HTTPAdapter
from tqdm import tqdm

from mlrec.core import io
from mlrec.core.constants import ITEMID, LABEL, ONLINE_LAST_N, RECALL_SIZE, RESPONSE_SIZE, USERID
from mlrec.core.paths import (
    DATA_SCRIPT,
    SPLIT_SCRIPT,
    TERM_RECALL_SCRIPT,
    TERMS_SCRIPT,
    VECTOR_RECALL_SCRIPT,
    Paths,
)
from mlrec.core.settings import Settings
from mlrec.evaluation.metrics import (
    PAD,
    coverage,
    hit_matrix,
    hit_rate_at_k,
    ndcg_at_k,
    pad_lists,
    recall_at_k,
    recall_curve,
)
from mlrec.offline.popular import popular_items
from mlrec.online import es_index, redis_store

log = logging.getLogger(__name__)
MAX_SERVED = RECALL_SIZE  # POST /ml/rec accepts size <= 200


class EvaluationError(RuntimeError):
    """The evaluation cannot run as asked (service answers with an error, bad K); the message says the fix."""


def protocol(catalogue_size: int) -> dict[str, str]:
    """The protocol every number in the report is measured under, in words."""
    return {
        "split": f"per user, time-ordered; each user's last {ONLINE_LAST_N} events held out "
        "(offline/common/online_imp.parquet), everything before is offline (train + test)",
        "relevant": "held-out events with rating > 3 (label 1); binary relevance; "
        "users with no held-out positive are skipped and counted",
        "catalogue": f"full catalogue: all {catalogue_size} items indexed in Elasticsearch",
        "seen": "items the user rated offline (train + test; the Redis filter) removed from every list",
        "averaging": "metrics are means over evaluated users; *_se = standard error of that mean",
    }


def protocol_line(catalogue_size: int) -> str:
    return (
        f"time-ordered split, last {ONLINE_LAST_N} held out (positives: rating>3), "
        f"full catalogue ({catalogue_size} items), seen items removed"
    )


# -- held-out positives ------------------------------------------------------------------------
@dataclass(frozen=True)
class HeldOut:
    userids: np.ndarray  # users with >= 1 held-out positive, ascending
    relevant: list[np.ndarray]  # per user: held-out positive item ids
    n_relevant: np.ndarray
    users_total: int
    users_skipped: int  # users whose held-out events hold no positive


def held_out_positives(online: pd.DataFrame) -> HeldOut:
    """Group the held-out positives by user (vectorized); users with none are counted, not scored."""
    missing = {USERID, ITEMID, LABEL} - set(online.columns)
    if missing:
        raise EvaluationError(f"online events lack columns {sorted(missing)}; re-run `python {SPLIT_SCRIPT}`")
    users_total = int(online[USERID].nunique())
    pos = (
        online.loc[online[LABEL] == 1, [USERID, ITEMID]].drop_duplicates().sort_values([USERID, ITEMID], kind="stable")
    )
    userids, starts, counts = np.unique(pos[USERID].to_numpy(np.int64), return_index=True, return_counts=True)
    relevant = np.split(pos[ITEMID].to_numpy(np.int64), starts[1:]) if len(userids) else []
    return HeldOut(userids, relevant, counts.astype(np.int64), users_total, users_total - len(userids))


# -- the running service -----------------------------------------------------------------------
@dataclass(frozen=True)
class ServedLists:
    ranked: np.ndarray  # [users, k], -1 padded
    fallback_users: int  # answered with the popularity fallback (user unknown to Redis)
    latency_ms: np.ndarray
    seconds: float
    retries: int  # 503 answers retried


def _session(concurrency: int) -> requests.Session:
    """One keep-alive connection per worker thread, shared through the session's pool."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=concurrency)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


RETRY_STATUS = 503  # a dependency briefly unavailable (the service says which); anything else is fatal
RETRY_DELAYS_S = (0.5, 1.0, 2.0)


def _ask(session: requests.Session, url: str, userid: int, k: int, timeout_s: float):
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
        f"POST {url}/ml/rec for userid {userid}: HTTP {resp.status_code} {resp.text[:200]!r}; "
        f"check `curl -s {url}/healthz` and the server log"
    )


def _check_k(k: int) -> None:
    if not 1 <= k <= MAX_SERVED:
        raise EvaluationError(f"--k {k}: the service answers 1..{MAX_SERVED} items per request")


def fetch_served(url: str, userids: np.ndarray, k: int, concurrency: int = 8, timeout_s: float = 10.0) -> ServedLists:
    """Every user's top k from the running service, ``concurrency`` requests in flight."""
    _check_k(k)
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


# -- the recall stages, in the real Redis + Elasticsearch ------------------------------------------
STAGES = ("term", "vector", "hybrid")


def read_recall_inputs(client, userids: np.ndarray, batch: int = 1000) -> list[redis_store.UserRecall | None]:
    """Each user's served recall inputs (``HGETALL user<id>``, pipelined); None when Redis has no hash."""
    out: list[redis_store.UserRecall | None] = []
    for lo in range(0, len(userids), batch):
        chunk = userids[lo : lo + batch].tolist()
        pipe = client.pipeline(transaction=False)
        for uid in chunk:
            pipe.hgetall(redis_store.user_key(uid))
        out += [redis_store.decode_user(uid, f) if f else None for uid, f in zip(chunk, pipe.execute())]
    return out


def stage_bodies(user: redis_store.UserRecall, k: int) -> dict[str, dict | None]:
    """The served hybrid search body, and the same body with one half removed.

    Deriving the single-stage bodies from :func:`es_index.hybrid_query` keeps k, num_candidates
    and the seen-item filter identical to what the service sends. A user without terms has no
    term-only query (None: an empty candidate list).
    """
    hybrid = es_index.hybrid_query(user.terms, user.vector, user.seen, k)
    return {
        "term": {key: v for key, v in hybrid.items() if key != "knn"} if "query" in hybrid else None,
        "vector": {key: v for key, v in hybrid.items() if key != "query"},
        "hybrid": hybrid,
    }


def _search_ids(es, alias: str, body: dict | None) -> np.ndarray:
    if body is None:
        return np.zeros(0, np.int64)
    res = es.search(index=alias, **body)
    return np.array([int(h["_id"]) for h in res["hits"]["hits"]], dtype=np.int64)


def recall_stage_lists(
    es, alias: str, users: list[redis_store.UserRecall | None], k: int = RECALL_SIZE, concurrency: int = 8
) -> dict[str, np.ndarray]:
    """Per stage, ``[users, k]`` candidate lists in the order Elasticsearch returns them."""

    def one(user):
        if user is None:  # not in Redis: the service would answer with the popular fallback
            return {s: np.zeros(0, np.int64) for s in STAGES}
        return {s: _search_ids(es, alias, b) for s, b in stage_bodies(user, k).items()}

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        rows = list(tqdm(pool.map(one, users), total=len(users), desc="es stages", unit="user", disable=None))
    return {s: pad_lists([r[s] for r in rows], k) for s in STAGES}


# -- baselines over the full catalogue (numpy) ----------------------------------------------------
def seen_mask(seen: dict[int, np.ndarray], userids: np.ndarray, catalogue: np.ndarray) -> np.ndarray:
    """bool ``[users, catalogue]``: the user rated the item offline (items outside the catalogue ignored)."""
    lists = [np.asarray(seen.get(int(u), ()), dtype=np.int64) for u in userids]
    lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    items = np.concatenate(lists) if lengths.sum() else np.zeros(0, np.int64)
    rows = np.repeat(np.arange(len(userids)), lengths)
    pos = np.clip(np.searchsorted(catalogue, items), 0, max(len(catalogue) - 1, 0))
    ok = catalogue[pos] == items if len(catalogue) else np.zeros(len(items), bool)
    mask = np.zeros((len(userids), len(catalogue)), dtype=bool)
    mask[rows[ok], pos[ok]] = True
    return mask


def top_k_unseen(
    score_rows: Callable[[slice], np.ndarray], seen: np.ndarray, catalogue: np.ndarray, k: int, chunk: int = 1024
) -> np.ndarray:
    """Top k catalogue items per user by ``score_rows(user slice)``, seen items removed, ties by item id.

    Users are scored ``chunk`` at a time so memory stays ``chunk x catalogue`` on any dataset.
    """
    out = np.full((len(seen), k), PAD, dtype=np.int64)
    for lo in range(0, len(seen), chunk):
        rows = slice(lo, lo + chunk)
        scores = np.where(seen[rows], -np.inf, score_rows(rows))
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        best = np.take_along_axis(scores, order, axis=1)
        out[rows, : order.shape[1]] = np.where(np.isfinite(best), catalogue[order], PAD)
    return out


def popular_lists(offline: pd.DataFrame, catalogue: np.ndarray, seen: np.ndarray, k: int) -> np.ndarray:
    """Most clicked in train (the service's own fallback ranking), minus each user's seen items."""
    ids, share = popular_items(offline, top=len(catalogue))
    pop = np.zeros(len(catalogue), dtype=np.float64)
    pos = np.searchsorted(catalogue, ids)
    inside = (pos < len(catalogue)) & (catalogue[np.minimum(pos, len(catalogue) - 1)] == ids)
    pop[pos[inside]] = share[inside]
    return top_k_unseen(lambda rows: np.broadcast_to(pop, (len(seen[rows]), len(catalogue))), seen, catalogue, k)


def mf_lists(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    userids: np.ndarray,
    catalogue: np.ndarray,
    seen: np.ndarray,
    k: int,
) -> np.ndarray:
    """ID-only MF: exact dot product of the exported vectors over the whole catalogue, seen removed."""
    if userids.max(initial=0) >= len(user_vectors) or catalogue.max(initial=0) >= len(item_vectors):
        raise EvaluationError(
            f"MF vectors cover {len(user_vectors)} users / {len(item_vectors)} items, fewer than "
            f"the ids evaluated; re-run `python {VECTOR_RECALL_SCRIPT}`"
        )
    items = item_vectors[catalogue].astype(np.float64)
    users = user_vectors[userids].astype(np.float64)
    return top_k_unseen(lambda rows: users[rows] @ items.T, seen, catalogue, k)


# -- scoring ---------------------------------------------------------------------------------------
@dataclass
class MethodScore:
    name: str
    label: str
    source: str
    width: int  # list length scored
    metrics: dict[str, float]
    se: dict[str, float]
    curve: list[float]  # mean Recall@k, k = 1..curve_k


def score_lists(
    name: str,
    label: str,
    source: str,
    ranked: np.ndarray,
    held: HeldOut,
    catalogue_size: int,
    ks: Iterable[int],
    curve_k: int,
) -> MethodScore:
    """HitRate/Recall/NDCG at each K that fits the list width, coverage, and the recall curve."""
    hits = hit_matrix(ranked, held.relevant)
    width = ranked.shape[1]
    metrics, se = {}, {}
    for k in sorted(k for k in set(ks) if k <= width):
        per_user = {
            f"hit_rate@{k}": hit_rate_at_k(hits, k),
            f"recall@{k}": recall_at_k(hits, held.n_relevant, k),
            f"ndcg@{k}": ndcg_at_k(hits, held.n_relevant, k),
        }
        for key, values in per_user.items():
            metrics[key] = float(values.mean())
            se[key] = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
        metrics[f"coverage@{k}"] = coverage(ranked, k, catalogue_size)
    curve = recall_curve(hits, held.n_relevant, min(curve_k, width)).tolist() if width else []
    return MethodScore(name, label, source, width, metrics, se, curve)


def served_within(served: np.ndarray, candidates: np.ndarray) -> float:
    """Share of served items that are among the user's hybrid candidates (1.0 = ranking re-orders recall)."""
    hits = hit_matrix(served, [row[row != PAD] for row in candidates])
    n = int((served != PAD).sum())
    return float(hits.sum() / n) if n else 0.0


def same_sets(a: np.ndarray, b: np.ndarray) -> float:
    """Share of users whose two candidate lists hold the same items (in any order)."""
    if len(a) == 0:
        return 0.0
    return float((np.sort(a, axis=1) == np.sort(b, axis=1)).all(axis=1).mean())


# -- the whole run ---------------------------------------------------------------------------------
@dataclass
class QualityReport:
    dataset: str
    url: str
    protocol: dict[str, str]
    protocol_line: str
    users: dict[str, int]
    methods: list[MethodScore]
    stages: dict[str, dict[str, float]]
    timing: dict[str, float]
    config: dict[str, int] = field(default_factory=dict)

    def method(self, name: str) -> MethodScore:
        return next(m for m in self.methods if m.name == name)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["methods"] = {m["name"]: {**m, "protocol": self.protocol_line} for m in d["methods"]}
        return d


def dataset_name(paths: Paths) -> str:
    """The dataset the artifacts were built from (names the result files)."""
    marker = paths.dataset_marker
    if not marker.is_file():
        raise io.ArtifactError(f"{marker}: not found; run `python {DATA_SCRIPT}` first (or `make offline`)")
    try:
        return str(json.loads(marker.read_text())["dataset"])
    except (json.JSONDecodeError, KeyError) as exc:
        raise io.ArtifactError(f'{marker}: no "dataset" field; re-run `python {DATA_SCRIPT}`') from exc


@dataclass(frozen=True)
class Inputs:
    """The offline artifacts the evaluation reads (the same files the loaders pushed online)."""

    dataset: str
    held: HeldOut
    offline: pd.DataFrame
    seen: dict[int, np.ndarray]
    catalogue: np.ndarray  # sorted item ids indexed in Elasticsearch
    user_vectors: np.ndarray
    item_vectors: np.ndarray


def read_inputs(paths: Paths) -> Inputs:
    online = io.read_parquet(paths.online_imp, SPLIT_SCRIPT, columns=[USERID, ITEMID, LABEL])
    return Inputs(
        dataset=dataset_name(paths),
        held=held_out_positives(online),
        offline=io.read_parquet(paths.offline_imp, SPLIT_SCRIPT),
        seen=io.read_id_lists(paths.user_filter, TERMS_SCRIPT),
        catalogue=np.array(sorted(io.read_id_lists(paths.item_term, TERM_RECALL_SCRIPT)), dtype=np.int64),
        user_vectors=io.read_npy(paths.user_vector, VECTOR_RECALL_SCRIPT),
        item_vectors=io.read_npy(paths.item_vector, VECTOR_RECALL_SCRIPT),
    )


def stage_summary(
    by_name: dict[str, MethodScore], ks: tuple[int, ...], served: np.ndarray, stages: dict[str, np.ndarray]
) -> dict:
    """Candidate recall per recall stage, ranker lift (served vs recall order) and two consistency checks."""
    system, recall_order = by_name["system"].metrics, by_name["recall_order"].metrics
    lift: dict[str, float | None] = {}
    for x in ks:
        key = f"ndcg@{x}"
        lift.update(
            {
                f"{key}_system": system[key],
                f"{key}_recall_order": recall_order[key],
                f"{key}_lift": system[key] - recall_order[key],
                f"{key}_lift_rel": _relative(system[key], recall_order[key]),
            }
        )
    at = f"recall@{RECALL_SIZE}"
    return {
        f"candidate_recall@{RECALL_SIZE}": {
            "term": by_name["term_recall"].metrics[at],
            "vector": by_name["vector_recall"].metrics[at],
            "hybrid": recall_order[at],
        },
        "ranker_lift": lift,
        "served_within_hybrid_candidates": served_within(served, stages["hybrid"]),
        "hybrid_same_set_as_vector": same_sets(stages["hybrid"], stages["vector"]),
    }


def evaluate_quality(
    paths: Paths,
    settings: Settings,
    url: str,
    k: int = RESPONSE_SIZE,
    concurrency: int = 8,
    ks: tuple[int, ...] = (10, RESPONSE_SIZE),
) -> QualityReport:
    """Ask the service for every evaluable user's top k; score it beside the recall stages and baselines."""
    _check_k(k)
    if concurrency < 1:
        raise EvaluationError(f"--concurrency {concurrency}: must be >= 1")
    ks = tuple(sorted({x for x in ks if x <= k} | {k}))
    t0 = time.perf_counter()
    inp = read_inputs(paths)
    held, n_cat = inp.held, len(inp.catalogue)

    served = fetch_served(url, held.userids, k, concurrency)

    t_stage = time.perf_counter()
    recall_inputs = read_recall_inputs(redis_store.connect(settings, timeout=10.0), held.userids)
    es = es_index.connect(settings, timeout=30.0)
    stages = recall_stage_lists(es, settings.es_index, recall_inputs, RECALL_SIZE, concurrency)
    stage_seconds = time.perf_counter() - t_stage

    t_base = time.perf_counter()
    seen = seen_mask(inp.seen, held.userids, inp.catalogue)
    popular = popular_lists(inp.offline, inp.catalogue, seen, RECALL_SIZE)
    mf = mf_lists(inp.user_vectors, inp.item_vectors, held.userids, inp.catalogue, seen, RECALL_SIZE)
    baseline_seconds = time.perf_counter() - t_base

    score = partial(score_lists, held=held, catalogue_size=n_cat, ks=ks + (RECALL_SIZE,), curve_k=k)
    methods = [
        score("system", "served: hybrid recall -> DeepFM (Triton)", "HTTP POST /ml/rec", served.ranked),
        score(
            "recall_order",
            "hybrid recall order, before ranking",
            "Elasticsearch hybrid (served body)",
            stages["hybrid"],
        ),
        score("vector_recall", "vector recall alone", "Elasticsearch kNN (served body minus terms)", stages["vector"]),
        score(
            "term_recall",
            "term recall alone",
            "Elasticsearch terms (served body minus kNN; constant score, so index order)",
            stages["term"],
        ),
        score("mf", "baseline: ID-only MF, exact dot product", "numpy, full catalogue", mf),
        score("popular", "baseline: most popular by train clicks", "numpy, full catalogue", popular),
    ]
    users = dict(
        total=held.users_total,
        evaluated=len(held.userids),
        skipped_no_positive=held.users_skipped,
        held_out_positives=int(held.n_relevant.sum()),
        served_fallback=served.fallback_users,
        not_in_redis=sum(u is None for u in recall_inputs),
        without_terms=sum(u is not None and not u.terms for u in recall_inputs),
    )
    lat = served.latency_ms
    timing = dict(
        http_seconds=round(served.seconds, 3),
        http_retries=served.retries,
        http_requests_per_s=round(len(lat) / max(served.seconds, 1e-9), 1),
        http_latency_p50_ms=round(float(np.percentile(lat, 50)), 2) if len(lat) else 0.0,
        http_latency_p95_ms=round(float(np.percentile(lat, 95)), 2) if len(lat) else 0.0,
        es_stage_seconds=round(stage_seconds, 3),
        baseline_seconds=round(baseline_seconds, 3),
        total_seconds=round(time.perf_counter() - t0, 3),
    )
    return QualityReport(
        dataset=inp.dataset,
        url=url,
        protocol=protocol(n_cat),
        protocol_line=protocol_line(n_cat),
        users=users,
        methods=methods,
        stages=stage_summary({m.name: m for m in methods}, ks, served.ranked, stages),
        timing=timing,
        config=dict(k=k, concurrency=concurrency, recall_size=RECALL_SIZE, catalogue=n_cat),
    )


def _relative(new: float, old: float) -> float | None:
    """Relative change; None (JSON null) when the old value is 0."""
    return (new - old) / old if old else None

"""Online top-K quality: the running service, its recall stages and the baselines, under one protocol.

Why this exists: the split keeps each user's last 10 events "for online evaluation" and nothing
used them. Here every user with a held-out positive is sent to the real service and the answer is
scored against those positives; beside it, from the same artifacts and the same stores the
service reads, so the numbers are comparable, the recall stages (:mod:`.stages`) and the numpy
baselines (:mod:`.baselines`, their hyperparameters chosen on a validation split carved from the
offline events by :mod:`.tuning`). This module only runs those parts in order, times them and
assembles the :class:`QualityReport`; each part lives in the module named for it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np

from mlrec.core.constants import RECALL_SIZE, RESPONSE_SIZE
from mlrec.core.paths import Paths
from mlrec.core.settings import Settings
from mlrec.evaluation.baselines import BASELINES, BaselineInputs, seen_mask
from mlrec.evaluation.errors import EvaluationError
from mlrec.evaluation.heldout import protocol, protocol_line
from mlrec.evaluation.inputs import read_inputs
from mlrec.evaluation.scoring import MethodScore, same_sets, score_lists, served_within
from mlrec.evaluation.served import check_k, fetch_served
from mlrec.evaluation.stages import UNION, UNION_SIZE, channel_lists, read_recall_inputs, recall_stage_lists
from mlrec.evaluation.tuning import BaselineRun, describe, run_baselines
from mlrec.offline.channels import CHANNEL_K, EASE, ES, POPULAR, SEQ
from mlrec.online import es_index, redis_store
from mlrec.online.recommender import Retriever

__all__ = ["EvaluationError", "QualityReport", "evaluate_quality", "stage_summary"]

# the served system and the recall stages, scored in this order before the baselines:
# (method name, list it scores, label, where its lists come from)
SERVICE_METHODS = (
    ("system", "served", "served: 4 recall channels -> DeepFM (Triton)", "HTTP POST /ml/rec"),
    ("recall_order", UNION, "union of the channels in recall order, before ranking", "Retriever.recall: RRF order"),
    ("es_channel", ES, "channel: Elasticsearch hybrid (ALS kNN + terms)", "Retriever.recall"),
    ("ease_channel", EASE, "channel: EASE neighbours of recent items", "Retriever.recall (Redis)"),
    ("seq_channel", SEQ, "channel: sequential successors of recent items", "Retriever.recall (Redis)"),
    ("popular_channel", POPULAR, "channel: popular in the last 30 days", "Retriever.recall (Redis)"),
    ("vector_recall", "vector", "vector recall alone", "Elasticsearch kNN (served body minus terms)"),
    (
        "term_recall",
        "term",
        "term recall alone",
        "Elasticsearch terms (served body minus kNN; constant score, so index order)",
    ),
)


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

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["methods"] = {m["name"]: {**m, "protocol": self.protocol_line} for m in d["methods"]}
        return d


def stage_summary(
    by_name: dict[str, MethodScore], ks: tuple[int, ...], served: np.ndarray, stages: dict[str, np.ndarray]
) -> dict[str, Any]:
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
    channel_recall = {c: by_name[f"{c}_channel"].metrics[f"recall@{CHANNEL_K[c]}"] for c in (ES, EASE, SEQ, POPULAR)}
    return {
        f"candidate_recall@{RECALL_SIZE}": {
            "term": by_name["term_recall"].metrics[at],
            "vector": by_name["vector_recall"].metrics[at],
            "union": recall_order[at],
        },
        "candidate_recall_per_channel": {f"{c}@{CHANNEL_K[c]}": v for c, v in channel_recall.items()},
        f"candidate_recall_union@{UNION_SIZE}": recall_order[f"recall@{UNION_SIZE}"],
        "ranker_lift": lift,
        "served_within_union_candidates": served_within(served, stages[UNION]),
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
    check_k(k)
    if concurrency < 1:
        raise EvaluationError(f"--concurrency {concurrency}: must be >= 1", "pass --concurrency 1 or more")
    ks = tuple(sorted({x for x in ks if x <= k} | {k}))
    t0 = time.perf_counter()
    inp = read_inputs(paths)
    held, n_cat = inp.held, len(inp.catalogue)

    served = fetch_served(url, held.userids, k, concurrency)

    t_stage = time.perf_counter()
    recall_inputs = read_recall_inputs(redis_store.connect(settings, timeout=10.0), held.userids)
    es = es_index.connect(settings, timeout=30.0)
    stages = recall_stage_lists(es, settings.es_index, recall_inputs, RECALL_SIZE, concurrency)
    retriever = Retriever(redis_store.connect(settings, timeout=10.0), es, settings.es_index)
    stages.update(channel_lists(retriever, held.userids, concurrency))
    stage_seconds = time.perf_counter() - t_stage

    t_base = time.perf_counter()
    base = BaselineInputs(
        userids=held.userids,
        catalogue=inp.catalogue,
        seen=seen_mask(inp.seen, held.userids, inp.catalogue),
        offline=inp.offline,
        user_vectors=inp.user_vectors,
        item_vectors=inp.item_vectors,
    )
    runs = run_baselines(BASELINES, base, RECALL_SIZE)
    baseline_seconds = time.perf_counter() - t_base

    score = partial(score_lists, held=held, catalogue_size=n_cat, ks=(*ks, *CHANNEL_K.values(), UNION_SIZE), curve_k=k)
    lists = {"served": served.ranked, **stages}
    methods = [score(name, label, source, lists[scored]) for name, scored, label, source in SERVICE_METHODS]
    methods += [
        replace(
            score(b.name, b.label, baseline_source(b.source, runs[b.name]), runs[b.name].lists),
            tuning=runs[b.name].tuning,
        )
        for b in BASELINES
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
        **{f"baseline_{name}_seconds": round(run.seconds, 3) for name, run in runs.items()},
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
        config=dict(
            k=k,
            concurrency=concurrency,
            recall_size=RECALL_SIZE,
            union_size=UNION_SIZE,
            catalogue=n_cat,
            **{f"k_{c}": v for c, v in CHANNEL_K.items()},
        ),
    )


def baseline_source(source: str, run: BaselineRun) -> str:
    """The table's source cell: where the lists come from and, for a tuned baseline, its pick and validation NDCG."""
    if run.tuning is None:
        return source
    chosen = describe(run.tuning.chosen)
    picked = f"validation NDCG@10 {run.tuning.validation['ndcg@10']:.4f}" + (f": {chosen}" if chosen else "")
    return f"{source}; {picked}"


def _relative(new: float, old: float) -> float | None:
    """Relative change; None (JSON null) when the old value is 0."""
    return (new - old) / old if old else None

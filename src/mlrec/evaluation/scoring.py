"""One scoring for every method: the served system, each recall stage and each baseline.

Every method is reduced to an int64 ``[users, width]`` list matrix and scored here against the
same held-out positives with the same metric functions, so their numbers are comparable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mlrec.evaluation.heldout import HeldOut
from mlrec.evaluation.metrics import PAD, coverage, hit_matrix, hit_rate_at_k, ndcg_at_k, recall_at_k, recall_curve

if TYPE_CHECKING:  # tuning scores its validation lists with score_lists below
    from mlrec.evaluation.tuning import Tuning


@dataclass
class MethodScore:
    name: str
    label: str
    source: str
    width: int  # list length scored
    metrics: dict[str, float]
    se: dict[str, float]
    curve: list[float]  # mean Recall@k, k = 1..curve_k
    tuning: Tuning | None = None  # a baseline's setting, chosen on the validation split (never the held-out)


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
    metrics: dict[str, float] = {}
    se: dict[str, float] = {}
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

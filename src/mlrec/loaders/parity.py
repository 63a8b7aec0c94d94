"""Online == offline: rows built from Feast's served features and scored by Triton must equal the
offline feature tables scored by the PyTorch checkpoint (:data:`~mlrec.core.paths.PARITY_SCRIPT`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from mlrec.core.constants import ITEMID, USERID
from mlrec.core.contracts import FEAST_ITEM_SERVICE, FEAST_USER_SERVICE
from mlrec.core.log import summary
from mlrec.core.paths import FEAST_SCRIPT, PARITY_SCRIPT, TRITON_SCRIPT, Paths, step_name
from mlrec.core.settings import Settings
from mlrec.loaders import LoadCheckError
from mlrec.loaders.offline_scorer import OfflineScorer
from mlrec.online.assemble import FeatureAssembler
from mlrec.online.feast_store import FeastClient
from mlrec.online.triton_ranker import TritonRanker


@dataclass(frozen=True)
class ParityReport:
    rows: int
    users: int
    feature_max_diff: float
    score_max_diff: float
    tolerance: float


def check_parity(
    paths: Paths,
    settings: Settings,
    n_users: int = 20,
    items_per_user: int = 60,
    tolerance: float = 1e-5,
    seed: int = 0,
) -> ParityReport:
    """Rows built from Feast's served features, scored by Triton, vs the offline tables scored by PyTorch."""
    reference = OfflineScorer(paths)
    rng = np.random.default_rng(seed)
    uids = rng.choice(reference.user_ids, size=min(n_users, len(reference.user_ids)), replace=False)
    feast = FeastClient(settings.feast_url, timeout_s=10.0)
    online = FeatureAssembler(reference.meta, feast.get(FEAST_ITEM_SERVICE, ITEMID, reference.item_ids))
    served_users = feast.get(FEAST_USER_SERVICE, USERID, uids)
    ranker = TritonRanker(settings.triton_grpc_url, settings.triton_model, timeout_s=10.0)

    feature_diff, score_diff, rows = 0.0, 0.0, 0
    for k, uid in enumerate(uids):
        cand = rng.choice(reference.item_ids, size=min(items_per_user, len(reference.item_ids)), replace=False)
        x_on = online.build(int(uid), online.user_row(served_users, k), cand)
        x_off = reference.features(int(uid), cand)
        feature_diff = max(feature_diff, float(np.abs(x_on - x_off).max()))
        score_diff = max(score_diff, float(np.abs(ranker.score(x_on) - reference.score_features(x_off)).max()))
        rows += len(cand)
    ranker.close()
    report = ParityReport(rows, len(uids), feature_diff, score_diff, tolerance)
    summary(
        step_name(PARITY_SCRIPT),
        paths.metrics,
        **asdict(report),
        passed=feature_diff <= tolerance and score_diff <= tolerance,
    )
    if feature_diff > tolerance or score_diff > tolerance:
        raise LoadCheckError(
            f"online != offline: feature max diff {feature_diff:.2e}, "
            f"score max diff {score_diff:.2e} (tolerance {tolerance:g})",
            f"re-load what changed since the last load: `python {FEAST_SCRIPT}` and `python {TRITON_SCRIPT}`",
        )
    return report

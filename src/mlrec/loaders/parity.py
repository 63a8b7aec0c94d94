"""Online == offline: rows built from Feast's served features and scored by Triton must equal the
offline feature tables scored by the PyTorch checkpoint (:data:`~mlrec.core.paths.PARITY_SCRIPT`).

Both sides get the same request features: those of a union of random channel lists built by the
server's own :func:`mlrec.offline.channels.union`, plus a few items no channel proposed
(:func:`~mlrec.offline.channels.absent_features`), so the request columns' scaling is checked on
realistic values, present and absent."""

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
from mlrec.offline.channels import CHANNELS, Candidates, ChannelList, absent_features, union
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


def random_candidates(rng: np.random.Generator, item_ids: np.ndarray, size: int) -> Candidates:
    """About ``size`` candidates: a union of one random list per channel (random scores, best first)
    and a few items outside it with absent-channel features."""
    per_channel = max(1, size // (len(CHANNELS) + 1))
    lists = {}
    for channel in CHANNELS:
        ids = rng.choice(item_ids, size=min(per_channel, len(item_ids)), replace=False).astype(np.int64)
        lists[channel] = ChannelList(ids, np.sort(rng.random(len(ids)).astype(np.float32))[::-1])
    cands = union(lists)
    pool = np.setdiff1d(item_ids, cands.ids)
    extra = rng.choice(pool, size=min(max(size - len(cands.ids), 1), len(pool)), replace=False).astype(np.int64)
    return Candidates(np.r_[cands.ids, extra], np.vstack([cands.features, absent_features(len(extra))]))


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
        cand = random_candidates(rng, reference.item_ids, items_per_user)
        x_on = online.build(int(uid), online.user_row(served_users, k), cand.ids, request=cand.features)
        x_off = reference.features(int(uid), cand.ids, cand.features)
        feature_diff = max(feature_diff, float(np.abs(x_on - x_off).max()))
        score_diff = max(score_diff, float(np.abs(ranker.score(x_on) - reference.score_features(x_off)).max()))
        rows += len(cand.ids)
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

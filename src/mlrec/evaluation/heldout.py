"""What a list is scored against: each user's held-out positives, and the protocol in words.

The split keeps each user's last events "for online evaluation"; only the positives among them
(label 1, rating > 3) count as relevant. Users whose held-out events hold no positive have no
defined recall or NDCG, so they are counted here and never scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlrec.core.constants import ITEMID, LABEL, ONLINE_LAST_N, USERID
from mlrec.core.paths import SPLIT_SCRIPT
from mlrec.evaluation.errors import EvaluationError


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
    """The protocol in one line: printed under the table, the plot and beside every JSON method."""
    return (
        f"time-ordered split, last {ONLINE_LAST_N} held out (positives: rating>3), "
        f"full catalogue ({catalogue_size} items), seen items removed"
    )


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
        raise EvaluationError(f"online events lack columns {sorted(missing)}", f"re-run `python {SPLIT_SCRIPT}`")
    users_total = int(online[USERID].nunique())
    pos = (
        online.loc[online[LABEL] == 1, [USERID, ITEMID]].drop_duplicates().sort_values([USERID, ITEMID], kind="stable")
    )
    userids, starts, counts = np.unique(pos[USERID].to_numpy(np.int64), return_index=True, return_counts=True)
    relevant = np.split(pos[ITEMID].to_numpy(np.int64), starts[1:]) if len(userids) else []
    return HeldOut(userids, relevant, counts.astype(np.int64), users_total, users_total - len(userids))

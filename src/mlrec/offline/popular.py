"""Item popularity: over the training clicks (the most-popular baseline), and over the last 30 days
(the popularity recall channel, which is also the fallback list for unknown users)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlrec.core.constants import ISTEST, ITEMID, LABEL, TS
from mlrec.offline.channels import POPULAR_DAYS

POPULAR_TOP = 500
DAY_S = 86400.0


def popular_items(offline: pd.DataFrame, top: int = POPULAR_TOP) -> tuple[np.ndarray, np.ndarray]:
    """Most-clicked items in train (ids, share of train clicks), best first; ties by item id."""
    clicks = offline.loc[(offline[ISTEST] == 0) & (offline[LABEL] == 1), ITEMID].to_numpy()
    ids, counts = np.unique(clicks, return_counts=True)
    order = np.lexsort((ids, -counts))[:top]
    return ids[order], (counts[order] / max(len(clicks), 1)).astype(np.float32)


def recent_popular(
    events: pd.DataFrame, top: int = POPULAR_TOP, days: float = POPULAR_DAYS
) -> tuple[np.ndarray, np.ndarray]:
    """Most interacted-with items of the last ``days`` days of ``events`` (ids, share), ties by all-time count, id."""
    ts, items = events[TS].to_numpy(), events[ITEMID].to_numpy(np.int64)
    if len(items) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    n = int(items.max()) + 1
    recent = np.bincount(items[ts >= ts.max() - days * DAY_S], minlength=n)
    total = np.bincount(items, minlength=n)
    ids = np.flatnonzero(total)
    order = np.lexsort((ids, -total[ids], -recent[ids]))[:top]
    ids = ids[order]
    return ids, (recent[ids] / max(int(recent.sum()), 1)).astype(np.float32)

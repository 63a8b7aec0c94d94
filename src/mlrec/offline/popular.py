"""Item popularity from the training clicks: the fallback list for unknown users, and a baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlrec.core.constants import ISTEST, ITEMID, LABEL

POPULAR_TOP = 500


def popular_items(offline: pd.DataFrame, top: int = POPULAR_TOP) -> tuple[np.ndarray, np.ndarray]:
    """Most-clicked items in train (ids, share of train clicks), best first; ties by item id."""
    clicks = offline.loc[(offline[ISTEST] == 0) & (offline[LABEL] == 1), ITEMID].to_numpy()
    ids, counts = np.unique(clicks, return_counts=True)
    order = np.lexsort((ids, -counts))[:top]
    return ids[order], (counts[order] / max(len(clicks), 1)).astype(np.float32)

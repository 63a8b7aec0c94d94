"""The offline artifacts the evaluation reads: the same files the loaders pushed online.

Reading them in one place keeps the baselines and the held-out positives on exactly the data the
stores were loaded from, so the served system and the baselines are compared on equal terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlrec.core import io
from mlrec.core.constants import ITEMID, LABEL, USERID
from mlrec.core.paths import SPLIT_SCRIPT, TERM_RECALL_SCRIPT, TERMS_SCRIPT, VECTOR_RECALL_SCRIPT, Paths
from mlrec.data.marker import active_dataset
from mlrec.evaluation.heldout import HeldOut, held_out_positives


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
    """Every artifact the run needs, read before the first request so a missing file fails fast."""
    online = io.read_parquet(paths.online_imp, SPLIT_SCRIPT, columns=[USERID, ITEMID, LABEL])
    return Inputs(
        dataset=active_dataset(paths),
        held=held_out_positives(online),
        offline=io.read_parquet(paths.offline_imp, SPLIT_SCRIPT),
        seen=io.read_id_lists(paths.user_filter, TERMS_SCRIPT),
        catalogue=np.array(sorted(io.read_id_lists(paths.item_term, TERM_RECALL_SCRIPT)), dtype=np.int64),
        user_vectors=io.read_npy(paths.user_vector, VECTOR_RECALL_SCRIPT),
        item_vectors=io.read_npy(paths.item_vector, VECTOR_RECALL_SCRIPT),
    )

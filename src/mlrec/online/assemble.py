"""Model-input rows for one user and many candidate items, in the feature meta's column order.

The same assembler serves two sources: features fetched from Feast (online) and the offline
feature tables (the parity checks), so "online equals offline" compares like with like. Rows are
filled column-block by column-block with numpy; no per-item dicts, no pandas rows.
"""

from __future__ import annotations

import numpy as np

from mlrec.core.constants import ITEMID, USERID
from mlrec.offline.feature_meta import FeatureMeta


class FeatureAssembler:
    """Holds the item-side block for every item; builds (n_items, n_features) float32 per user."""

    def __init__(self, meta: FeatureMeta, item_features: dict[str, np.ndarray]) -> None:
        self.meta = meta
        names = meta.names
        self.n_features = len(names)
        self.user_id_col, self.item_id_col = names.index(USERID), names.index(ITEMID)
        self.user_card = meta.features[self.user_id_col].cardinality
        self.item_card = meta.features[self.item_id_col].cardinality
        self.user_cols = [i for i, f in enumerate(meta.features) if f.owner == "user" and f.kind != "sparse_id"]
        self.item_cols = [i for i, f in enumerate(meta.features) if f.owner == "item" and f.kind != "sparse_id"]
        # item block indexed by item id; an item the store does not know keeps zeros (flags off)
        self.item_block = np.zeros((self.item_card, len(self.item_cols)), dtype=np.float32)
        ids = np.asarray(item_features[ITEMID], dtype=np.int64)
        known = (ids >= 0) & (ids < self.item_card)
        for j, col in enumerate(self.item_cols):
            values = np.nan_to_num(np.asarray(item_features[names[col]], dtype=np.float32))
            self.item_block[ids[known], j] = values[known]

    def user_row(self, user_features: dict[str, np.ndarray], index: int = 0) -> np.ndarray:
        """The user's non-id features in meta order (a missing value -> the train mean, i.e. 0 after scaling)."""
        names = self.meta.names
        return np.nan_to_num(np.array([user_features[names[c]][index] for c in self.user_cols], dtype=np.float32))

    def build(self, userid: int, user_row: np.ndarray, itemids: np.ndarray) -> np.ndarray:
        """float32 (len(itemids), n_features); ids outside the trained vocabulary map to 0 (unknown)."""
        itemids = np.asarray(itemids, dtype=np.int64)
        in_vocab = (itemids >= 0) & (itemids < self.item_card)
        x = np.empty((len(itemids), self.n_features), dtype=np.float32)
        x[:, self.user_id_col] = userid if 0 <= userid < self.user_card else 0
        x[:, self.item_id_col] = np.where(in_vocab, itemids, 0)
        x[:, self.user_cols] = user_row
        x[:, self.item_cols] = self.item_block[np.where(in_vocab, itemids, 0)]
        return x

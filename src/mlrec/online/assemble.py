"""Model-input rows for one user and many candidate items, in the feature meta's column order.

The same assembler serves two sources: features fetched from Feast (online) and the offline
feature tables (the parity checks), so "online equals offline" compares like with like. Rows are
filled column-block by column-block with numpy; no per-item dicts, no pandas rows.

Three blocks: user and item features arrive already standardized (Feast serves the scaled
tables), while the *request* features (each recall channel's rank and score, from
:func:`mlrec.offline.channels.union`) are computed per request and standardized here with the
meta's train mean and std, exactly as the training rows were.
"""

from __future__ import annotations

import numpy as np

from mlrec.core.constants import ITEMID, USERID
from mlrec.core.errors import MlrecError
from mlrec.offline.channels import REQUEST_FEATURES
from mlrec.offline.feature_meta import FeatureMeta


class RequestFeaturesError(MlrecError, ValueError):
    """The ranker needs request features that were not given, or they do not match the meta."""


class FeatureAssembler:
    """Holds the item-side block for every item; builds (n_items, n_features) float32 per user."""

    def __init__(self, meta: FeatureMeta, item_features: dict[str, np.ndarray]) -> None:
        self.meta = meta
        names = meta.names
        self.n_features = len(names)
        # the id columns, when the model reads ids (the served ranker does not; the seed's DeepFM does)
        self.user_id_col = names.index(USERID) if USERID in names else None
        self.item_id_col = names.index(ITEMID) if ITEMID in names else None
        self.user_card, self.item_card = meta.id_space("user"), meta.id_space("item")
        self.user_cols = [i for i, f in enumerate(meta.features) if f.owner == "user" and f.kind != "sparse_id"]
        self.item_cols = [i for i, f in enumerate(meta.features) if f.owner == "item" and f.kind != "sparse_id"]
        # request block: the meta's request columns, picked by name from the union's REQUEST_FEATURES
        # matrix (a column constant on train was dropped from the meta, so positions differ)
        request = [(i, f) for i, f in enumerate(meta.features) if f.owner == "request"]
        unknown = [f.name for _, f in request if f.name not in REQUEST_FEATURES]
        if unknown:
            raise RequestFeaturesError(
                f"feature meta has request features this server does not compute: {unknown}",
                "the meta and the server come from different versions; re-run the offline pipeline and the loaders",
            )
        self.request_cols = [i for i, _ in request]
        self.request_src = np.array([REQUEST_FEATURES.index(f.name) for _, f in request], dtype=np.int64)
        self.request_mean = np.array([f.mean for _, f in request], dtype=np.float64)
        self.request_std = np.array([f.std for _, f in request], dtype=np.float64)
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

    def build(
        self, userid: int, user_row: np.ndarray, itemids: np.ndarray, request: np.ndarray | None = None
    ) -> np.ndarray:
        """float32 (len(itemids), n_features); ids outside the trained vocabulary map to 0 (unknown).

        ``request``: float32 ``[len(itemids), len(REQUEST_FEATURES)]`` raw request features (the
        candidates' :attr:`~mlrec.offline.channels.Candidates.features`); required when the meta has
        request features, ignored otherwise.
        """
        itemids = np.asarray(itemids, dtype=np.int64)
        in_vocab = (itemids >= 0) & (itemids < self.item_card)
        x = np.empty((len(itemids), self.n_features), dtype=np.float32)
        if self.user_id_col is not None:
            x[:, self.user_id_col] = userid if 0 <= userid < self.user_card else 0
        if self.item_id_col is not None:
            x[:, self.item_id_col] = np.where(in_vocab, itemids, 0)
        x[:, self.user_cols] = user_row
        x[:, self.item_cols] = self.item_block[np.where(in_vocab, itemids, 0)]
        if self.request_cols:
            x[:, self.request_cols] = self.scale_request(request, len(itemids))
        return x

    def scale_request(self, request: np.ndarray | None, n: int) -> np.ndarray:
        """The meta's request columns of ``request`` (n rows), standardized as in training (float64, then float32)."""
        if request is None:
            raise RequestFeaturesError(
                "the ranker's feature meta has request features but none were given",
                "pass the recall union's features (channels.union(...).features) as `request`",
            )
        request = np.asarray(request)
        if request.shape != (n, len(REQUEST_FEATURES)):
            raise RequestFeaturesError(
                f"request features have shape {request.shape}, expected {(n, len(REQUEST_FEATURES))}",
                "pass one row per candidate item, columns in channels.REQUEST_FEATURES order",
            )
        scaled = (request[:, self.request_src].astype(np.float64) - self.request_mean) / self.request_std
        return scaled.astype(np.float32)

"""The reference the online path must equal: offline feature tables scored by the PyTorch checkpoint.

Used by the parity check (:data:`~mlrec.core.paths.PARITY_SCRIPT`) and by the end-to-end test, so
"online == offline" has one definition: the same :class:`~mlrec.online.assemble.FeatureAssembler`,
fed from the parquet tables :data:`~mlrec.core.paths.FEATURES_SCRIPT` wrote instead of from Feast,
and the trained model with its sigmoid.
"""

from __future__ import annotations

import numpy as np
import torch

from mlrec.core import io
from mlrec.core.constants import ITEMID, USERID
from mlrec.core.paths import FEATURES_SCRIPT, Paths
from mlrec.offline.feature_meta import FeatureMeta
from mlrec.online.assemble import FeatureAssembler


class OfflineScorer:
    def __init__(self, paths: Paths) -> None:
        from mlrec.models import WithSigmoid, load_checkpoint

        self.meta = FeatureMeta.load(paths.feature_meta)
        model, _ = load_checkpoint(paths.rank_model)
        self.model = WithSigmoid(model).eval()
        users = io.read_parquet(paths.user_features, FEATURES_SCRIPT)
        items = io.read_parquet(paths.item_features, FEATURES_SCRIPT)
        self.user_ids = users[USERID].to_numpy()
        self.item_ids = items[ITEMID].to_numpy()
        self._user_pos = {int(u): k for k, u in enumerate(self.user_ids)}
        self._user_cols = {c: users[c].to_numpy() for c in users.columns}
        self.assembler = FeatureAssembler(self.meta, {c: items[c].to_numpy() for c in items.columns})

    def features(self, userid: int, itemids: np.ndarray, request: np.ndarray | None = None) -> np.ndarray:
        """Model-input rows; ``request`` = the candidates' raw request features (as the server passes them)."""
        row = self.assembler.user_row(self._user_cols, self._user_pos[int(userid)])
        return self.assembler.build(int(userid), row, itemids, request=request)

    def score_features(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy().reshape(-1)

    def score(self, userid: int, itemids: np.ndarray, request: np.ndarray | None = None) -> np.ndarray:
        return self.score_features(self.features(userid, itemids, request))

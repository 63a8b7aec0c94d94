"""User and item features in Feast: export for materialization, and the HTTP client the server uses.

The feature repository (``offline_to_online/rank/feature_repo/``) declares the views from the
feature meta; this module writes the parquet those views read (with the event and created
timestamps Feast needs), and reads features back from ``feast serve`` over HTTP.

Two facts about the feature server shape the client: it answers 422 to a body without
``Content-Type: application/json``, and it returns columns in its own order — so values are
always mapped by feature name, never by position.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import requests

from mlrec import io
from mlrec.constants import ITEMID, USERID
from mlrec.paths import Paths

USER_SERVICE, ITEM_SERVICE = "ml_user", "ml_item"
FEATURES_SCRIPT = "offline/rank/s1_feature_engi.py"


class FeastError(RuntimeError):
    """The feature server could not answer (down, slow, or an unexpected payload)."""


def export_tables(paths: Paths, now: datetime | None = None) -> tuple[int, int]:
    """Write ``online/feast/{user,item}_features.parquet`` with event/created timestamps."""
    now = now or datetime.now(timezone.utc)
    counts = []
    for src, key in ((paths.user_features, USERID), (paths.item_features, ITEMID)):
        table = io.read_parquet(src, FEATURES_SCRIPT)
        table[key] = table[key].astype(np.int64)
        table["event_timestamp"] = pd.Timestamp(now)
        table["created"] = pd.Timestamp(now)
        io.write_parquet(table, paths.feast_dir / src.name)
        counts.append(len(table))
    return counts[0], counts[1]


@dataclass(frozen=True)
class FeastClient:
    """Minimal client for ``feast serve``'s ``POST /get-online-features``."""

    url: str
    timeout_s: float = 2.0
    session: requests.Session | None = None

    def get(self, service: str, key: str, ids: list[int] | np.ndarray) -> dict[str, np.ndarray]:
        """Feature name -> values aligned with ``ids`` (float features as float32; missing -> NaN)."""
        body = {"feature_service": service, "entities": {key: [int(i) for i in ids]}}
        http = self.session or requests
        try:
            resp = http.post(f"{self.url}/get-online-features", json=body, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise FeastError(f"feast at {self.url}: {type(exc).__name__}") from exc
        if resp.status_code != 200:
            raise FeastError(f"feast at {self.url}: HTTP {resp.status_code}: {resp.text[:300]}")
        try:
            payload = resp.json()
            names = payload["metadata"]["feature_names"]
            columns = [r["values"] for r in payload["results"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise FeastError(f"feast at {self.url}: unexpected response ({exc})") from exc
        out = {}
        for name, values in zip(names, columns):
            if name == key:
                out[name] = np.asarray(values, dtype=np.int64)
            else:
                out[name] = np.array([np.nan if v is None else v for v in values], dtype=np.float32)
        return out

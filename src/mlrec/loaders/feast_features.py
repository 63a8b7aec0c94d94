"""User and item feature tables -> Feast (``offline_to_online/rank/s3_feature_to_feast.py``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from mlrec.core.constants import USERID
from mlrec.core.log import summary, timed
from mlrec.core.paths import Paths
from mlrec.core.settings import Settings
from mlrec.loaders import LoadCheckError
from mlrec.online.feast_store import USER_SERVICE, FeastClient, FeastError, export_tables


def _served_matches(client: FeastClient, table: pd.DataFrame, key: str, service: str) -> bool:
    sample = table.iloc[: min(5, len(table))]
    try:
        got = client.get(service, key, sample[key].to_numpy())
    except FeastError:
        return False
    cols = [c for c in table.columns if c not in (key, "event_timestamp", "created")]
    return all(c in got and np.allclose(got[c], sample[c].to_numpy(np.float32)) for c in cols)


def load_feast(paths: Paths, settings: Settings, wait_s: float = 30.0) -> dict:
    """Feature tables -> parquet with timestamps -> ``feast apply`` + ``materialize-incremental``."""
    from mlrec_runtime import restart, run_feast

    with timed() as t:
        n_users, n_items = export_tables(paths)
        run_feast(["apply"], settings=settings, paths=paths)
        end = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        run_feast(["materialize-incremental", end], settings=settings, paths=paths)
    with timed() as served:
        client = FeastClient(settings.feast_url, timeout_s=5.0)
        users = pd.read_parquet(paths.feast_dir / paths.user_features.name)
        deadline = time.monotonic() + wait_s
        while not _served_matches(client, users, USERID, USER_SERVICE):
            if time.monotonic() > deadline:  # the server kept an old registry: restart it once
                restart(settings, ["feast"], paths)
                if not _served_matches(client, users, USERID, USER_SERVICE):
                    raise LoadCheckError("feast: served user features differ from the offline table")
                break
            time.sleep(1.0)
    uid = int(users[USERID].iloc[0])
    print(
        f"feast check: curl -s -X POST {settings.feast_url}/get-online-features "
        f"-H 'Content-Type: application/json' "
        f'-d \'{{"feature_service": "{USER_SERVICE}", "entities": {{"userid": [{uid}]}}}}\'  (matches offline)'
    )
    fields = dict(users=n_users, items=n_items, seconds=t["seconds"], served_after_s=served["seconds"])
    summary("s3_feature_to_feast", paths.metrics, **fields)
    return fields

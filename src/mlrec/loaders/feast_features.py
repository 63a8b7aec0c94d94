"""User and item feature tables -> Feast (``offline_to_online/rank/s3_feature_to_feast.py``).

The feast CLI runs natively or in the compose ``feast`` service (:mod:`mlrec.loaders.feast_cli`);
nothing here imports the native runtime, so a Docker user never triggers a native install.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from mlrec.core.constants import USERID
from mlrec.core.contracts import FEAST_USER_SERVICE
from mlrec.core.log import summary, timed
from mlrec.core.paths import FEAST_SCRIPT, Paths, step_name
from mlrec.core.settings import Settings
from mlrec.loaders import LoadCheckError
from mlrec.loaders.feast_cli import (
    FEATURE_REPO,
    REGISTRY_TTL_S,
    expand_store_yaml,
    feast_env,
    feature_store_yaml,
    rerun_hint,
    resolve_mode,
    run_feast,
)
from mlrec.online.feast_store import FeastClient, FeastError, FeastUnreachable, export_tables

# The server picks up a new registry within REGISTRY_TTL_S; the rest is margin for a busy 2-core
# machine (a refresh and the first lookups of a new view take seconds there).
SERVED_WAIT_S = 6 * REGISTRY_TTL_S


def _served_state(client: FeastClient, table: pd.DataFrame, key: str, service: str) -> str:
    """``ok`` when the server returns the table's values, ``stale`` when it answers otherwise, ``down``."""
    sample = table.iloc[: min(5, len(table))]
    try:
        got = client.get(service, key, sample[key].to_numpy())
    except FeastUnreachable:
        return "down"
    except FeastError:
        return "stale"
    cols = [c for c in table.columns if c not in (key, "event_timestamp", "created")]
    same = all(c in got and np.allclose(got[c], sample[c].to_numpy(np.float32)) for c in cols)
    return "ok" if same else "stale"


def readers_never_wait(settings: Settings, paths: Paths, repo_dir: Path = FEATURE_REPO) -> Path | None:
    """Put a SQLite online store in write-ahead-log mode (kept by the file); returns its path (None for
    another store).

    Two feature servers share the store: ``feast`` serves ``/ml/rec``'s reads while ``feast-push`` writes
    the event worker's rows. In SQLite's default rollback-journal mode a reader that meets a commit gets
    "database is locked" and sleeps in Python's busy handler (1 ms, then longer); in WAL mode readers
    never wait for a writer."""
    store = expand_store_yaml(feature_store_yaml(repo_dir, settings), feast_env(settings, paths))["online_store"]
    if store.get("type") != "sqlite":
        return None
    db = Path(store["path"])
    if not db.is_absolute():
        db = repo_dir / db
    if not db.is_file():  # nothing materialized into it (yet)
        return None
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
    return db


def load_feast(paths: Paths, settings: Settings, wait_s: float = SERVED_WAIT_S) -> dict:
    """Feature tables -> parquet with timestamps -> ``feast apply`` + ``materialize-incremental``.

    Then waits (at most ``wait_s``) until the running feature server returns the offline values:
    it re-reads the registry every :data:`REGISTRY_TTL_S` seconds, so no restart is needed.
    """
    mode = resolve_mode(settings)
    with timed() as t:
        n_users, n_items = export_tables(paths)
        run_feast(["apply"], settings=settings, paths=paths, mode=mode)
        end = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        run_feast(["materialize-incremental", end], settings=settings, paths=paths, mode=mode)
        readers_never_wait(settings, paths)
    with timed() as served:
        client = FeastClient(settings.feast_url, timeout_s=5.0)
        users = pd.read_parquet(paths.feast_dir / paths.user_features.name)
        deadline = time.monotonic() + wait_s
        state = _served_state(client, users, USERID, FEAST_USER_SERVICE)
        while state != "ok":
            if time.monotonic() > deadline:
                what = "is unreachable" if state == "down" else "still serves values that differ from the offline table"
                raise LoadCheckError(
                    f"feast ({mode}): the feature server at {settings.feast_url} {what} {wait_s:.0f} s after "
                    "apply + materialize",
                    rerun_hint(mode),
                )
            time.sleep(1.0)
            state = _served_state(client, users, USERID, FEAST_USER_SERVICE)
    uid = int(users[USERID].iloc[0])
    print(
        f"feast check: curl -s -X POST {settings.feast_url}/get-online-features "
        f"-H 'Content-Type: application/json' "
        f'-d \'{{"feature_service": "{FEAST_USER_SERVICE}", "entities": {{"userid": [{uid}]}}}}\'  (matches offline)'
    )
    fields = dict(users=n_users, items=n_items, seconds=t["seconds"], served_after_s=served["seconds"], feast_cli=mode)
    summary(step_name(FEAST_SCRIPT), paths.metrics, **fields)
    return fields

"""Feast declarations for the ranker's user and item features, built from the saved feature meta.

Feast imports this file on ``feast apply``. The feature names come from
``$MLREC_DATA_DIR/offline_to_online/rank/feature_meta.json`` (the one source of truth written by
``offline/rank/s6_feature_engi.py``): each non-id feature owned by the user side goes into the
``ml_user`` view, each owned by the item side into ``ml_item``. Nothing here is generated text;
with no meta yet (a fresh checkout), the repository declares nothing and still applies.

This file runs inside the feast venv or the compose feast container, neither of which has the
mlrec package: it reads the JSON directly and must stay dependency-free beyond feast itself.
Every path is under ``$MLREC_DATA_DIR`` (the host's data dir natively, ``/data`` in the
container, where compose mounts that same dir), so the registry written by either one points
the views at the parquet that ``mlrec.online.feast_store.export_tables`` wrote.
"""

import json
import os
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Float32

DATA_DIR = Path(os.environ.get("MLREC_DATA_DIR", Path(__file__).resolve().parents[3] / "data_exchange_center"))
META = DATA_DIR / "offline_to_online" / "rank" / "feature_meta.json"
TABLES = DATA_DIR / "online" / "feast"  # parquet written by offline_to_online/rank/s3_feature_to_feast.py
TTL = timedelta(days=3650)  # features are a snapshot; they never expire online

# An entity is the key features are looked up by: a user id and an item id.
user = Entity(name="user", join_keys=["userid"], value_type=ValueType.INT64, description="MovieLens user id")
item = Entity(name="item", join_keys=["itemid"], value_type=ValueType.INT64, description="MovieLens item id")


def _view(name: str, entity: Entity, owner: str, features: list[dict], push: str | None = None) -> FeatureView:
    """One view per entity: the meta's non-id features of that owner, in meta order, as Float32.

    With ``push``, the view's source is a push source of that name over the parquet: materialization
    still reads the parquet, and ``POST /push`` on the feature server writes rows online (what
    ``POST /ml/event`` does for the user features of the users whose events it applied)."""
    batch = FileSource(
        name=f"{name}_source",
        path=str(TABLES / f"{owner}_features.parquet"),
        timestamp_field="event_timestamp",
        created_timestamp_column="created",
    )
    source = PushSource(name=push, batch_source=batch) if push else batch
    schema = [
        Field(name=f["name"], dtype=Float32) for f in features if f["owner"] == owner and f["kind"] != "sparse_id"
    ]
    return FeatureView(name=name, entities=[entity], ttl=TTL, schema=schema, source=source, online=True)


if META.is_file():
    _features = json.loads(META.read_text())["features"]
    ml_user_view = _view("ml_user_view", user, "user", _features, push="ml_user_push")
    ml_item_view = _view("ml_item_view", item, "item", _features)
    # Feature services: what the online server asks for by name (as in the seed).
    ml_user = FeatureService(name="ml_user", features=[ml_user_view])
    ml_item = FeatureService(name="ml_item", features=[ml_item_view])

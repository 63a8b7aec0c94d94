"""Load user and item features into Feast: parquet with timestamps, `feast apply`, `materialize-incremental`.

The feature views and services (`ml_user`, `ml_item`) are declared in
offline_to_online/rank/feature_repo/features.py from the feature meta.
Reads  offline_to_online/rank/{user,item}_features.parquet, feature_meta.json
Writes online/feast/{user,item}_features.parquet, the Feast registry and online store
Check  the running feature server returns the offline values (prints the curl that does the same)
Feast  runs natively (`make services-up`) or in the compose `feast` service: MLREC_FEAST_CLI=native|docker|auto
       (docs/docker.md); this script never installs anything
Run:   python offline_to_online/rank/s3_feature_to_feast.py
"""

import argparse

from mlrec.core.cli import run
from mlrec.core.paths import Paths
from mlrec.core.settings import Settings
from mlrec.loaders.feast_features import load_feast

if __name__ == "__main__":
    run(lambda args: load_feast(Paths.from_env(), Settings.from_env()), argparse.ArgumentParser(description=__doc__))

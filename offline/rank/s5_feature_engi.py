"""Step 5: the ranking features (59 on ML-1M) and the feature meta every later component reads.

Reads  offline/common/{offline_imp,pit_counts,user_counts}.parquet, raw/<dataset>/{users,movies}.dat
Writes offline/rank/{train,test}.parquet                       model inputs in feature-meta order
       offline_to_online/rank/feature_meta.json                names, order, cardinalities, scaling
       offline_to_online/rank/{user,item}_features.parquet     tables for the Feast feature store
Run:   python offline/rank/s5_feature_engi.py
ML-1M: features=59 (sparse_id=2 sparse_side=21 dense=36)
"""

import argparse

from mlrec.core.cli import run
from mlrec.core.paths import Paths
from mlrec.offline.pipeline import run_features

if __name__ == "__main__":
    run(lambda args: run_features(Paths.from_env()), argparse.ArgumentParser(description=__doc__))

"""Step 2: point-in-time genre counts (no leakage), serving-time counts, item genres, seen-item filter.

Reads  offline/common/offline_imp.parquet, raw/<dataset>/movies.dat
Writes offline/common/pit_counts.parquet   per offline event: genre impressions/clicks over the
                                           user's previous 10 events (strictly before it)
       offline/common/user_counts.parquet  per user: the same over their latest 10 offline events
       offline/common/item_genres.parquet      {itemid: [genre codes]}
       offline/common/user_filter.parquet      {userid: array of offline item ids} (recall filter)
Run:   python offline/preprocess/s2_term_trans.py
"""

import argparse

from mlrec.core.cli import run
from mlrec.core.paths import Paths
from mlrec.offline.pipeline import run_terms

if __name__ == "__main__":
    run(lambda args: run_terms(Paths.from_env()), argparse.ArgumentParser(description=__doc__))

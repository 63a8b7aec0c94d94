"""Step 2: point-in-time genre counts (no leakage), serving-time counts, item genres, seen-item filter.

Reads  offline/common/offline_imp.parquet, raw/<dataset>/movies.dat
Writes offline/common/pit_counts.parquet   per offline event: genre impressions/clicks over the
                                           user's previous 10 events (strictly before it)
       offline/common/user_counts.parquet  per user: the same over their latest 10 offline events
       offline/common/item_genres.parquet      {itemid: [genre codes]}
       offline/common/user_filter.parquet      {userid: array of offline item ids} (recall filter)
Run:   python offline/preprocess/s2_term_trans.py [--engine numpy|duckdb|spark]
"""

import argparse

from mlrec.core.cli import add_engine_arg, engine_from_args, run
from mlrec.core.paths import Paths
from mlrec.offline.pipeline import run_terms

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_engine_arg(parser)
    run(lambda args: run_terms(Paths.from_env(), engine=engine_from_args(args)), parser)

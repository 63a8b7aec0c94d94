"""Step 6: the ranking features — the seed's 59 for the seed protocol, and the served ranker's training set.

Seed protocol: the seed's features of every offline (user, rated item) row, labelled rating > 3.
Served ranker: at two training moments (each user's offline events minus the last 20, and minus the
last 10) every channel model is refit on the moment's events, each user's recall candidates are
built with the server's own channel functions, and labelled by the user's next 10 events
(mlrec.offline.candidates); features = the seed's + popularity, item age, user activity + each
channel's rank and score (mlrec.offline.rank_features). Its meta is what Feast, Triton and the server read.
Reads  offline/common/{offline_imp,pit_counts,user_counts}.parquet, raw/<dataset>/{users,movies}.dat,
       offline_to_online/recall/{item_term.parquet,retrieval.json}
Writes offline/rank/{train,test}.parquet, offline/rank/seed_feature_meta.json   the seed protocol
       offline/rank/rank_examples.parquet                       the served ranker's examples
       offline_to_online/rank/feature_meta.json                 names, order, owners, scaling
       offline_to_online/rank/{user,item}_features.parquet      tables for the Feast feature store
Run:   python offline/rank/s6_feature_engi.py [--engine numpy|duckdb|spark] [--seed-only]
ML-1M (seed protocol): features=59 (sparse_id=2 sparse_side=21 dense=36)
"""

import argparse

from mlrec.core.cli import add_engine_arg, engine_from_args, run
from mlrec.core.paths import Paths
from mlrec.offline.pipeline import run_features

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_engine_arg(parser)
    parser.add_argument(
        "--seed-only",
        action="store_true",
        help="only the seed protocol's tables (the part --engine runs); no candidate examples, no Feast tables",
    )
    run(lambda args: run_features(Paths.from_env(), engine=engine_from_args(args), seed_only=args.seed_only), parser)

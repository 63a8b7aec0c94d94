"""Step 1: ratings -> implicit feedback (rating > 3), split per user by time.

Reads  data_exchange_center/raw/<dataset>/ratings.dat   (from s0_get_data.py)
Writes data_exchange_center/offline/common/offline_imp.parquet  (train istest=0, test istest=1)
       data_exchange_center/offline/common/online_imp.parquet   (each user's last 10 events)
Run:   python offline/preprocess/s1_data_split.py [--engine numpy|duckdb|spark]
ML-1M: ratings=1000209 positives=575281 negatives=424928 online=60400 train=754233 test=185576
"""

import argparse

from mlrec.core.cli import add_engine_arg, engine_from_args, run
from mlrec.core.paths import Paths
from mlrec.offline.pipeline import run_split

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_engine_arg(parser)
    run(lambda args: run_split(Paths.from_env(), engine=engine_from_args(args)), parser)

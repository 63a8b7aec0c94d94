"""Load users into Redis: one hash per user (`user<id>`) with term, vector and filter, plus `popular`.

Reads  offline_to_online/recall/{user_term.parquet,user_vector.npy}, offline/common/user_filter.parquet
Writes Redis at $MLREC_HOST:$MLREC_REDIS_PORT (default 127.0.0.1:6379); encoding in mlrec/online/redis_store.py
Check  reads one user back and compares every field with the offline artifacts
Run:   python offline_to_online/recall/s1_user_to_redis.py
"""

import argparse

from mlrec.core.cli import run
from mlrec.core.paths import Paths
from mlrec.core.settings import Settings
from mlrec.loaders.redis_users import load_redis

if __name__ == "__main__":
    run(lambda args: load_redis(Paths.from_env(), Settings.from_env()), argparse.ArgumentParser(description=__doc__))

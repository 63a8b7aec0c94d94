"""Step 3: term recall — user terms (genres with >= 3 clicks in the latest window) and item terms.

Reads  offline/common/user_counts.parquet, offline/common/item_genres.parquet
Writes offline_to_online/recall/user_term.parquet  {userid: [genre codes]}  -> Redis
       offline_to_online/recall/item_term.parquet  {itemid: [genre codes]}  -> Elasticsearch
Run:   python offline/recall/s3_term_recall.py
"""

import argparse

from mlrec.core.cli import run
from mlrec.core.paths import Paths
from mlrec.offline.pipeline import run_term_recall

if __name__ == "__main__":
    run(lambda args: run_term_recall(Paths.from_env()), argparse.ArgumentParser(description=__doc__))

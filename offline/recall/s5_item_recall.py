"""Step 5: item-to-item and popularity recall — what the server reads from Redis besides the user hash.

Per item, its 100 best EASE neighbours and its 100 most frequent sequential successors; per user, the
20 most recent offline items (they drive both item-to-item channels at request time, recency-weighted);
the items most popular over the last 30 days (a channel of its own, and the unknown-user fallback).
All are fit on every offline event (mlrec.offline.neighbours, mlrec.offline.candidates).
Reads  offline/common/offline_imp.parquet, raw/<dataset>/{users,movies}.dat
Writes offline_to_online/recall/neighbours_{ease,seq}_{ids,weights}.npy   [max_itemid + 1, 100]
       offline_to_online/recall/user_recent.parquet                       userid -> item ids, newest first
       offline_to_online/recall/popular.parquet                           itemid, score (share of recent events)
Run:   python offline/recall/s5_item_recall.py
"""

import argparse

from mlrec.core.cli import run
from mlrec.core.paths import Paths
from mlrec.offline.pipeline import run_item_recall

if __name__ == "__main__":
    run(lambda args: run_item_recall(Paths.from_env()), argparse.ArgumentParser(description=__doc__))

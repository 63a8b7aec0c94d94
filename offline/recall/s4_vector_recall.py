"""Step 4: vector recall — 16-dim vectors scored by dot product, and the seed's MF for its protocol.

Served vectors: implicit-feedback MF by ALS on every offline interaction (unrated items are the
negatives), its regularization and confidence weight chosen by recall@200 on each user's last 10
offline events (mlrec.offline.retrieval). The seed's MF on (userid, itemid) is still trained until the
AUC on a time-ordered validation slice of train stops improving, refit on all train rows, and its test
AUC reported (the seed protocol), but its vectors are no longer served.
Reads  offline/common/offline_imp.parquet, raw/<dataset>/{users,movies}.dat
Writes offline_to_online/recall/{user,item}_vector.npy  float32 [max_id + 1, 16] -> Redis / Elasticsearch
       offline/recall/mf.pt                              the seed's MF checkpoint (state_dict + args + config)
Run:   python offline/recall/s4_vector_recall.py [--epochs 50 --lr 0.004 ...]
Seed on ML-1M: test AUC 0.8081.
"""

import argparse

from mlrec.core.cli import add_config_args, config_from_args, run
from mlrec.core.paths import Paths
from mlrec.offline.pipeline import run_vector_recall
from mlrec.offline.train import TrainConfig

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser, TrainConfig, epochs=50)
    run(lambda args: run_vector_recall(Paths.from_env(), config_from_args(TrainConfig, args)), parser)

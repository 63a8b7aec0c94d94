"""Step 7: the DeepFM-style rankers (sparse FM with 16-dim id / 2-dim side embeddings + dense MLP).

Both train on logits (BCEWithLogitsLoss) with Adam:
- seed protocol: the seed's 59 features, rating > 3 among rated items; early stopping watches each
  user's latest 10 % of train rows, never the test set; test AUC reported (not served). Its lr,
  weight decay and patience come from SEED_PROTOCOL_GRID, chosen on validation, unless given here;
- served ranker: the mean of 3 DeepFMs (seeds --seed, +1, +2), each trained on the candidate examples
  of step 6's train moment, early-stopped on the val moment, refit on both; val NDCG@10 within the
  candidates is reported beside the recall order's.
The four models train side by side in MLREC_OFFLINE_WORKERS processes (default 2).
Reads  offline/rank/{train,test,rank_examples}.parquet, offline/rank/seed_feature_meta.json,
       offline_to_online/rank/feature_meta.json
Writes offline/rank/deepfm_seed.pt   the seed-protocol checkpoint (state_dict + constructor args + config)
       offline/rank/deepfm.pt        the served ranker (a DeepFMEnsemble) -> ONNX -> Triton
Run:   python offline/rank/s7_model_train.py [--epochs 100 --batch_size 4096 ...]
Seed on ML-1M: test AUC 0.8206.
"""

import argparse

from mlrec.core.cli import add_config_args, config_from_args, run
from mlrec.core.paths import Paths
from mlrec.offline.pipeline import run_rank_train
from mlrec.offline.train import TrainConfig

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser, TrainConfig, epochs=100)
    run(lambda args: run_rank_train(Paths.from_env(), config_from_args(TrainConfig, args)), parser)

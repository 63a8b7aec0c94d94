"""Seconds per training epoch and peak memory of the seed-protocol DeepFM on a data dir's seed tables.

`make bench-25m` keeps nothing by default; run it with `--keep` (or point this at any data dir whose
`s6_feature_engi.py` has run) and time one epoch at that scale:

Run:  python benchmarks/bench_epochs.py --data-dir /tmp/mlrec-bench-ml-25m-XXXX [--epochs 1]

The epoch is the pipeline's own (``mlrec.offline.train.fit_epochs``: in-memory float32 tensors, one seeded
permutation per epoch, batches sliced from it; no per-row Python) with the first setting the seed protocol
tries (``seed_protocol_configs``). Prints one line per phase and a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()

    from mlrec.core import io
    from mlrec.core.constants import LABEL
    from mlrec.core.paths import FEATURES_SCRIPT, Paths
    from mlrec.models import DeepFM
    from mlrec.offline.feature_meta import FeatureMeta
    from mlrec.offline.pipeline import seed_protocol_configs
    from mlrec.offline.train import TrainConfig, fit_epochs

    paths = Paths(args.data_dir)
    t0 = time.perf_counter()
    meta = FeatureMeta.load(paths.seed_feature_meta)
    X = io.read_matrix(paths.train_features, FEATURES_SCRIPT, meta.names, np.float32)  # what s7 reads
    y = io.read_matrix(paths.train_features, FEATURES_SCRIPT, [LABEL], np.float32)[:, 0].copy()
    load_s = time.perf_counter() - t0
    print(
        f"bench-epochs: loaded {len(X):,} train rows x {X.shape[1]} features in {load_s:.1f} s, "
        f"peak {_peak_gib():.2f} GiB"
    )
    cfg = seed_protocol_configs(TrainConfig())[0]
    model = DeepFM.from_meta(meta)
    seconds = fit_epochs(model, X, y, args.epochs, cfg)
    per_epoch = seconds / args.epochs
    print(
        f"bench-epochs: DeepFM (seed protocol, batch {cfg.batch_size}) {per_epoch:.1f} s per epoch, "
        f"peak {_peak_gib():.2f} GiB"
    )
    print(
        json.dumps(
            {
                "rows": len(X),
                "features": X.shape[1],
                "load_s": round(load_s, 1),
                "deepfm_s_per_epoch": round(per_epoch, 1),
                "peak_gib": round(_peak_gib(), 2),
            }
        )
    )


if __name__ == "__main__":
    main()

"""Step 0: fetch or generate the raw dataset and record it as the active one.

    python offline/preprocess/s0_get_data.py --dataset ml-100k
    python offline/preprocess/s0_get_data.py --dataset synthetic --scale 10000000

Writes ``raw/<dataset>/{users,movies,ratings}.dat`` under the data root and ``dataset.json``,
which every later step reads to find the raw data.
"""

from __future__ import annotations

import argparse
import os
import sys

from mlrec.core.constants import SEED
from mlrec.core.log import setup_logging, summary, timed
from mlrec.core.paths import Paths
from mlrec.data import DATASETS, DEFAULT_SCALE, DataError, prepare_dataset, read_manifest, write_marker


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--dataset",
        choices=DATASETS,
        default=os.environ.get("MLREC_DATASET") or "ml-100k",
        help="which dataset (default: $MLREC_DATASET or ml-100k)",
    )
    parser.add_argument(
        "--scale",
        type=int,
        default=DEFAULT_SCALE,
        help="synthetic only: number of ratings (default: %(default)s, ML-1M size)",
    )
    parser.add_argument("--seed", type=int, default=SEED, help="synthetic only: random seed (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the dataset is already prepared")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    paths = Paths.from_env()
    synthetic = args.dataset == "synthetic"
    try:
        with timed() as t:
            raw_dir = prepare_dataset(
                args.dataset, paths, scale=args.scale if synthetic else None, seed=args.seed, force=args.force
            )
    except DataError as exc:
        print(f"[s0_get_data] error: {exc}", file=sys.stderr)
        return 1
    counts = (read_manifest(raw_dir) or {}).get("counts", {})
    write_marker(paths, args.dataset, raw_dir, **({"scale": args.scale, "seed": args.seed} if synthetic else {}))
    summary(
        "s0_get_data",
        paths.metrics,
        dataset=args.dataset,
        users=counts.get("users"),
        items=counts.get("items"),
        ratings=counts.get("ratings"),
        seconds=t["seconds"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Step 0: fetch or generate the raw dataset and record it as the active one.

    python offline/preprocess/s0_get_data.py --dataset ml-100k
    python offline/preprocess/s0_get_data.py --dataset synthetic --scale 10000000
    python offline/preprocess/s0_get_data.py --dataset synthetic --shape ml-25m   # MovieLens-25M's sizes

Writes ``raw/<dataset>/{users,movies,ratings}.dat`` under the data root and ``dataset.json``,
which every later step reads to find the raw data. It also exports the events ``POST /ml/event``
logged in Redis to ``events/<dataset>.parquet``, which the split step appends to the ratings (the
loop closes); with Redis not running, the last export is kept (``--no-events``: skip the export).
"""

from __future__ import annotations

import argparse

import redis

from mlrec.core.cli import run
from mlrec.core.constants import SEED
from mlrec.core.log import summary, timed
from mlrec.core.paths import DATA_SCRIPT, Paths, step_name
from mlrec.core.settings import Settings
from mlrec.data import DATASETS, DEFAULT_SCALE, prepare_dataset, read_manifest, write_marker
from mlrec.data.event_log import export_events
from mlrec.data.synthetic import SHAPES
from mlrec.online import redis_store


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--dataset",
        choices=DATASETS,
        help="which dataset (default: $MLREC_DATASET or ml-100k)",
    )
    p.add_argument(
        "--scale",
        type=int,
        default=DEFAULT_SCALE,
        help="synthetic only: number of ratings (default: %(default)s, ML-1M size)",
    )
    p.add_argument(
        "--shape",
        choices=sorted(SHAPES),
        help="synthetic only: a published release's users, items and ratings (instead of --scale)",
    )
    p.add_argument("--seed", type=int, default=SEED, help="synthetic only: random seed (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="rebuild even if the dataset is already prepared")
    p.add_argument("--no-events", action="store_true", help="do not export the events logged in Redis")
    return p


def main(args: argparse.Namespace) -> None:
    settings = Settings.from_env()
    paths = Paths.from_env(settings)
    args.dataset = args.dataset or settings.dataset  # an unknown $MLREC_DATASET is refused by prepare_dataset
    synthetic = args.dataset == "synthetic"
    with timed() as t:
        raw_dir = prepare_dataset(
            args.dataset,
            paths,
            scale=args.scale if synthetic else None,
            seed=args.seed,
            force=args.force,
            shape=args.shape,
        )
    counts = (read_manifest(raw_dir) or {}).get("counts", {})
    logged: int | str = "skipped"
    if not args.no_events:
        path = paths.logged_events(args.dataset)
        client = redis_store.connect(settings)
        try:
            logged = export_events(client, path)
        except redis.ConnectionError:
            kept = "the last export is kept" if path.is_file() else "none merged"
            print(
                f"note: Redis at {settings.host}:{settings.redis_port} is not running: "
                f"no logged events exported ({kept})"
            )
            logged = "unreachable"
        finally:
            client.close()
    extra = {"scale": counts.get("ratings", args.scale), "seed": args.seed} if synthetic else {}
    if args.shape:
        extra["shape"] = args.shape
    write_marker(paths, args.dataset, raw_dir, **extra)
    summary(
        step_name(DATA_SCRIPT),
        paths.metrics,
        dataset=args.dataset,
        users=counts.get("users"),
        items=counts.get("items"),
        ratings=counts.get("ratings"),
        logged_events=logged,
        seconds=t["seconds"],
    )


if __name__ == "__main__":
    run(main, parser())

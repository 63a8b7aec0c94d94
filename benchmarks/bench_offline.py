"""Offline benchmark: wall time and peak memory of every offline step on synthetic data.

Each step runs as its own process (exactly the numbered script a user runs), so its peak RSS is
its own. At the smallest scale the seed's row-at-a-time split and point-in-time loop are timed in
the same run as a baseline, and their output is checked against ours.

Run:  python benchmarks/bench_offline.py                      # 1M with models, 10M data steps
      python benchmarks/bench_offline.py --scales 1000000 --no-baseline
      python benchmarks/bench_offline.py --shape ml-25m        # make bench-25m: data steps + item recall, ML-25M shape
Targets (issue #2): split + terms <= 10 s and <= 1.5 GiB at 1M, <= 2 min at 10M (the feature step now
refits the recall models at two training moments, so it is timed with the model steps);
the whole offline pipeline incl. every model <= 3 min at 1M (issue #9).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mlrec.core.io import write_json
from mlrec.core.paths import (
    DATA_SCRIPT,
    FEATURES_SCRIPT,
    ITEM_RECALL_SCRIPT,
    RANK_SCRIPT,
    REPO_ROOT,
    SPLIT_SCRIPT,
    TERM_RECALL_SCRIPT,
    TERMS_SCRIPT,
    VECTOR_RECALL_SCRIPT,
    script_path,
)
from mlrec.data.synthetic import SHAPES

# The data steps first (timed at every scale); the model steps (recall models, the candidate
# features that refit them at two training moments, the rankers) only up to --models-up-to.
DATA_STEPS = [
    ("split", SPLIT_SCRIPT),
    ("terms", TERMS_SCRIPT),
    ("term_recall", TERM_RECALL_SCRIPT),
]
MODEL_STEPS = [
    ("vector_recall", VECTOR_RECALL_SCRIPT),
    ("item_recall", ITEM_RECALL_SCRIPT),
    ("features", FEATURES_SCRIPT),
    ("rank_train", RANK_SCRIPT),
]
CORE = ("split", "terms")
# at a release's shape (--shape): the data steps and the item-to-item channels, which need only the split
SHAPE_STEPS = [*DATA_STEPS, ("item_recall", ITEM_RECALL_SCRIPT)]


def run_step(script: str, args: list[str], env: dict) -> tuple[float, float, list[str]]:
    """Run one script; return (seconds, peak RSS MiB, its summary lines). The peak is that of the
    script's process or of its largest worker process (offline_workers), whichever is higher."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(script_path(script)), *args],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{script} failed:\n{out}")
    summary = [line for line in out.splitlines() if line.startswith("[")]
    for line in summary:
        print(f"    {line}")
    return seconds, usage.ru_maxrss / 1024, summary  # ru_maxrss is KiB on Linux


def baseline(data_dir: Path) -> dict:
    """Time the seed-style split and PIT loop on the same data; check they match ours."""
    import seed_baseline  # beside this script

    from mlrec.core.constants import ISTEST, N_GENRES
    from mlrec.core.paths import Paths
    from mlrec.data import active_raw_dir
    from mlrec.data.movielens import load_movies, load_ratings
    from mlrec.offline.pit import COUNT_COLUMNS, item_genre_lists, item_genre_matrix

    paths = Paths(data_dir)
    raw = active_raw_dir(paths)
    ratings = load_ratings(raw)
    t0 = time.perf_counter()
    seed_split = seed_baseline.split(ratings)
    split_s = time.perf_counter() - t0
    offline = pd.read_parquet(paths.offline_imp)
    ours = offline[ISTEST].to_numpy()
    assert (seed_split[seed_split != 2].to_numpy() == ours).all(), "seed-style split disagrees with ours"

    genres = item_genre_matrix(load_movies(raw))
    lists = item_genre_lists(genres, np.flatnonzero(genres.any(axis=1)))
    t0 = time.perf_counter()
    rows = seed_baseline.pit(offline, lists)
    pit_s = time.perf_counter() - t0
    mat = seed_baseline.pit_to_matrix(rows, N_GENRES)
    ours_pit = pd.read_parquet(paths.pit_counts)[COUNT_COLUMNS].to_numpy()
    assert (mat == ours_pit).all(), "seed-style PIT counts disagree with ours"
    return {"split": split_s, "terms": pit_s}


def bench_scale(size: str, steps: list[tuple[str, str]], with_baseline: bool, keep: bool) -> dict:
    """``size``: a number of ratings, or a shape's name (``ml-25m``)."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"mlrec-bench-{size}-"))
    try:
        return _bench_in(data_dir, size, steps, with_baseline)
    finally:
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)


def _bench_in(data_dir: Path, size: str, steps: list[tuple[str, str]], with_baseline: bool) -> dict:
    env = {**os.environ, "MLREC_DATA_DIR": str(data_dir), "MLREC_PROGRESS": "0"}
    sizing = ["--scale", size] if size.isdigit() else ["--shape", size]
    print(f"\n== synthetic, {size} (data dir {data_dir})")
    gen_s, gen_mb, gen_lines = run_step(DATA_SCRIPT, ["--dataset", "synthetic", *sizing, "--no-events"], env)
    results = {"generate": {"seconds": gen_s, "peak_mib": gen_mb, "summary": gen_lines}}
    for name, script in steps:
        s, mb, lines = run_step(script, [], env)
        results[name] = {"seconds": s, "peak_mib": mb, "summary": lines}
    if with_baseline:  # its own process, so its memory never counts toward a step's peak
        print("  timing the seed-style baseline (row-wise split, per-event deepcopy PIT)...")
        out = subprocess.run(
            [sys.executable, __file__, "--baseline-only", str(data_dir)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for name, s in json.loads(out.splitlines()[-1]).items():
            results[name]["seed_seconds"] = s
    return results


def print_table(all_results: dict) -> None:
    print("\n| scale | step | seconds | peak MiB | seed-style seconds (same run) |")
    print("|---|---|---:|---:|---:|")
    for size, res in all_results.items():
        label = f"{int(size):,}" if str(size).isdigit() else size
        for step, r in res.items():
            seed = f"{r['seed_seconds']:.1f}" if "seed_seconds" in r else ""
            print(f"| {label} | {step} | {r['seconds']:.1f} | {r['peak_mib']:.0f} | {seed} |")
        core = sum(res[s]["seconds"] for s in CORE)
        peak = max(res[s]["peak_mib"] for s in CORE)
        total = sum(r["seconds"] for k, r in res.items() if k != "generate")
        print(f"| {label} | **split+terms** | **{core:.1f}** | **{peak:.0f}** | |")
        print(f"| {label} | **all offline steps** | **{total:.1f}** | | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument(
        "--shape", choices=sorted(SHAPES), help="instead of --scales: a release's sizes, data steps only"
    )
    parser.add_argument("--models-up-to", type=int, default=1_000_000, help="train both models at scales <= this")
    parser.add_argument("--no-baseline", action="store_true", help="skip the seed-style baseline")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "results" / "bench_offline_synthetic.json")
    parser.add_argument("--keep", action="store_true", help="keep the generated data dirs (default: delete)")
    parser.add_argument("--baseline-only", type=Path, help=argparse.SUPPRESS)  # internal: run the baseline
    args = parser.parse_args()
    if args.baseline_only:
        print(json.dumps(baseline(args.baseline_only)))
        return
    all_results = {}
    if args.shape:
        all_results[args.shape] = bench_scale(args.shape, SHAPE_STEPS, False, args.keep)
    for i, n in enumerate([] if args.shape else args.scales):
        steps = DATA_STEPS + (MODEL_STEPS if n <= args.models_up_to else [])
        all_results[n] = bench_scale(str(n), steps, i == 0 and not args.no_baseline, args.keep)
    print_table(all_results)
    write_json(args.out, all_results, indent=2)
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()

"""Offline benchmark: wall time and peak memory of every offline step on synthetic data.

Each step runs as its own process (exactly the numbered script a user runs), so its peak RSS is
its own. At the smallest scale the seed's row-at-a-time split and point-in-time loop are timed in
the same run as a baseline, and their output is checked against ours.

Run:  python benchmarks/bench_offline.py                      # 1M with models, 10M data steps
      python benchmarks/bench_offline.py --scales 1000000 --no-baseline
      python benchmarks/bench_offline.py --shape ml-25m        # make bench-25m: prep, item recall, a DeepFM epoch
      python benchmarks/bench_offline.py --engines numpy duckdb spark   # make bench-engines: the prep per engine
Targets (issue #2): split + terms <= 10 s and <= 1.5 GiB at 1M, <= 2 min at 10M (the feature step now
refits the recall models at two training moments, so it is timed with the model steps);
the whole offline pipeline incl. every model <= 3 min at 1M (issue #9).
"""

from __future__ import annotations

import argparse
import contextlib
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
from mlrec.offline.engines import ENGINES

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
# at a release's shape (--shape): the data steps, the seed feature tables and the item-to-item channels
SHAPE_STEPS = [*DATA_STEPS, ("seed_features", FEATURES_SCRIPT), ("item_recall", ITEM_RECALL_SCRIPT)]
# what --engine changes (--engines): each runs on the same generated data, one engine after the other
ENGINE_STEPS = [("split", SPLIT_SCRIPT), ("terms", TERMS_SCRIPT), ("seed_features", FEATURES_SCRIPT)]
STEP_ARGS = {"seed_features": ["--seed-only"]}  # the feature step's seed tables alone


class TreePeak:
    """The largest summed RSS of a process and all its descendants, sampled every 0.1 s: a step's
    memory including what it starts (Spark's JVM, the spawned workers), which its own RSS misses."""

    def __init__(self, pid: int) -> None:
        import threading

        self.pid, self.peak, self._done = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        import psutil

        while not self._done.wait(0.1):
            try:
                root = psutil.Process(self.pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for proc in procs:
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return self.peak / 2**20


def run_step(script: str, args: list[str], env: dict) -> tuple[float, float, list[str], float]:
    """Run one script; return (seconds, peak RSS MiB, its summary lines, process-tree peak MiB). The peak
    is that of the script's process or of its largest worker process (offline_workers), whichever is
    higher; the tree peak sums every process the step started (:class:`TreePeak`)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(script_path(script)), *args],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    tree = TreePeak(proc.pid)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    tree_mib = tree.stop()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{script} failed:\n{out}")
    summary = [line for line in out.splitlines() if line.startswith("[")]
    for line in summary:
        print(f"    {line}")
    return seconds, usage.ru_maxrss / 1024, summary, tree_mib  # ru_maxrss is KiB on Linux


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
    results = {"generate": _record(run_step(DATA_SCRIPT, ["--dataset", "synthetic", *sizing, "--no-events"], env))}
    for name, script in steps:
        results[name] = _record(run_step(script, STEP_ARGS.get(name, []), env))
    if not size.isdigit():  # at a release's shape: one epoch of the seed-protocol DeepFM on the tables just built
        out = subprocess.run(
            [sys.executable, str(Path(__file__).with_name("bench_epochs.py")), "--data-dir", str(data_dir)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        print("\n".join(f"    {line}" for line in out[:-1]))
        results["deepfm_epoch"] = json.loads(out[-1])
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


def _record(step: tuple[float, float, list[str], float]) -> dict:
    seconds, peak, summary, tree = step
    return {"seconds": seconds, "peak_mib": peak, "tree_peak_mib": tree, "summary": summary}


def bench_engines(size: str, engines: list[str], keep: bool) -> dict:
    """The prep steps on each engine, on one generated dataset: ``{engine: {step: record}}``."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"mlrec-bench-engines-{size}-"))
    env = {**os.environ, "MLREC_DATA_DIR": str(data_dir), "MLREC_PROGRESS": "0"}
    try:
        print(f"\n== synthetic, {size} ratings, engines {', '.join(engines)} (data dir {data_dir})")
        run_step(DATA_SCRIPT, ["--dataset", "synthetic", "--scale", size, "--no-events"], env)
        return {
            engine: {
                name: _record(run_step(script, ["--engine", engine, *STEP_ARGS.get(name, [])], env))
                for name, script in ENGINE_STEPS
            }
            for engine in engines
        }
    finally:
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)


def print_engine_table(all_results: dict) -> None:
    engines = list(next(iter(all_results.values())))
    print("\n| ratings | step | " + " | ".join(f"{e} s (peak MiB)" for e in engines) + " |")
    print("|---|---|" + "---:|" * len(engines))
    for size, res in all_results.items():
        for name, _ in [*ENGINE_STEPS, ("total", "")]:
            cells = []
            for e in engines:
                if name == "total":
                    seconds = sum(r["seconds"] for r in res[e].values())
                    peak = max(r["tree_peak_mib"] for r in res[e].values())
                else:
                    seconds, peak = res[e][name]["seconds"], res[e][name]["tree_peak_mib"]
                cells.append(f"{seconds:.1f} ({peak:.0f})")
            print(f"| {int(size):,} | {name} | " + " | ".join(cells) + " |")


def print_table(all_results: dict) -> None:
    print("\n| scale | step | seconds | peak MiB | seed-style seconds (same run) |")
    print("|---|---|---:|---:|---:|")
    for size, res in all_results.items():
        label = f"{int(size):,}" if str(size).isdigit() else size
        epoch = res.pop("deepfm_epoch", None)
        for step, r in res.items():
            seed = f"{r['seed_seconds']:.1f}" if "seed_seconds" in r else ""
            print(f"| {label} | {step} | {r['seconds']:.1f} | {r['peak_mib']:.0f} | {seed} |")
        core = sum(res[s]["seconds"] for s in CORE)
        peak = max(res[s]["peak_mib"] for s in CORE)
        total = sum(r["seconds"] for k, r in res.items() if k != "generate")
        print(f"| {label} | **split+terms** | **{core:.1f}** | **{peak:.0f}** | |")
        print(f"| {label} | **all offline steps** | **{total:.1f}** | | |")
        if epoch:
            print(
                f"| {label} | DeepFM epoch ({epoch['rows']:,} rows) | {epoch['deepfm_s_per_epoch']:.1f} | "
                f"{epoch['peak_gib'] * 1024:.0f} | |"
            )
            res["deepfm_epoch"] = epoch


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
    parser.add_argument(
        "--engines", nargs="+", choices=ENGINES, help="instead: the prep steps on each engine, at each of --scales"
    )
    parser.add_argument("--baseline-only", type=Path, help=argparse.SUPPRESS)  # internal: run the baseline
    args = parser.parse_args()
    if args.baseline_only:
        print(json.dumps(baseline(args.baseline_only)))
        return
    if args.engines:
        results = {n: bench_engines(str(n), args.engines, args.keep) for n in args.scales}
        print_engine_table(results)
        write_json(args.out, results, indent=2)
        print(f"\nwritten {args.out}")
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

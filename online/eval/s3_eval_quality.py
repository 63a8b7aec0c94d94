"""Top-K quality of the running service against each user's held-out last 10 events, with baselines.

Run (services loaded and `python online/main/s1_server.py` running):
       python online/eval/s3_eval_quality.py                       # top 50, 8 requests in flight
       python online/eval/s3_eval_quality.py --url http://127.0.0.1:5000 --concurrency 8 --k 50 --out docs/results
Writes <out>/quality_<dataset>.json and .png, prints the table and a one-line summary.
Protocol: time-ordered split, last 10 events held out (positives: rating > 3), full catalogue, seen items removed.
"""

import argparse
from pathlib import Path

from mlrec.core.cli import run
from mlrec.core.constants import RESPONSE_SIZE
from mlrec.core.log import summary
from mlrec.core.paths import REPO_ROOT, Paths
from mlrec.core.settings import Settings
from mlrec.evaluation.quality import evaluate_quality
from mlrec.evaluation.report import format_table, output_paths, plot_recall_curves, write_json


def main(args: argparse.Namespace) -> None:
    paths, settings = Paths.from_env(), Settings.from_env()
    report = evaluate_quality(paths, settings, args.url.rstrip("/"), k=args.k, concurrency=args.concurrency)
    json_path, png_path = output_paths(args.out, report.dataset)
    write_json(report, json_path)
    plot_recall_curves(report, png_path)
    print(format_table(report))
    system, k = report.method("system").metrics, args.k
    summary(
        "eval_quality",
        paths.metrics,
        dataset=report.dataset,
        users=report.users["evaluated"],
        skipped=report.users["skipped_no_positive"],
        **{f"recall@{k}": system[f"recall@{k}"], f"ndcg@{k}": system[f"ndcg@{k}"]},
        mf_recall=report.method("mf").metrics[f"recall@{k}"],
        popular_recall=report.method("popular").metrics[f"recall@{k}"],
        seconds=report.timing["total_seconds"],
        json=str(json_path),
        png=str(png_path),
        users_detail=report.users,
        stages=report.stages,
        timing=report.timing,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=Settings.from_env().server_url, help="the running service")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    parser.add_argument("--k", type=int, default=RESPONSE_SIZE, help="items asked per user (default 50)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "results", help="folder for JSON + PNG")
    run(main, parser)

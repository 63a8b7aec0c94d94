"""Failover benchmark: ``POST /ml/rec`` under steady load while one node of each tier is killed and restarted.

Needs the native cluster profile and a server on it (``make services-up server-up PROFILE=cluster``,
after ``make load PROFILE=cluster``). At concurrency 8 over a seeded user sample it runs
:func:`mlrec_runtime.drill.run_drill`: a steady phase, then for each target node in turn SIGKILL,
``--down-s`` of load without it, a restart (the phase lasts until the node is healthy again) and
``--steady-s`` more. Every answer is compared with the user's answer from before the drill.

Run:  python benchmarks/bench_failover.py                      # elasticsearch-2, feast-2, triton-2
      python benchmarks/bench_failover.py --targets triton-2 --down-s 30
Prints a table per phase (requests, failed, changed, p50/p99/max ms) and writes
docs/results/failover_<dataset>.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench_online import RESULTS_DIR, dataset_name  # this script's folder

from mlrec.core.errors import MlrecError
from mlrec.core.io import write_json
from mlrec.core.paths import Paths
from mlrec.core.settings import Settings
from mlrec_runtime.drill import run_drill
from mlrec_runtime.manager import make_services, service_names


def markdown(stats) -> str:
    rows = [
        "| phase | seconds | requests | failed | changed | tie swaps | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in stats:
        cells = (s.phase, s.seconds, s.requests, s.failed, s.changed, s.tie_swaps, s.p50_ms, s.p99_ms, s.max_ms)
        rows.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(rows)


def main() -> None:
    settings, paths = Settings.from_env(), Paths.from_env()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=settings.server_url, help="the running server")
    parser.add_argument("--targets", default="elasticsearch-2,feast-2,triton-2", help="nodes to kill, in turn")
    parser.add_argument("--users", type=int, default=200, help="users 1..N, each answered once before the drill")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--steady-s", type=float, default=10.0, help="load before the first kill and after each return")
    parser.add_argument("--down-s", type=float, default=15.0, help="load while a node is dead")
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON path (default docs/results/failover_<dataset>.json)"
    )
    args = parser.parse_args()
    if settings.profile != "cluster":
        raise SystemExit(
            "bench_failover: run it on the cluster profile (MLREC_PROFILE=cluster or make ... PROFILE=cluster)"
        )
    targets = args.targets.split(",")
    unknown = sorted(set(targets) - set(service_names(settings)))
    if unknown:
        raise SystemExit(
            f"bench_failover: --targets {','.join(unknown)}: choose from {', '.join(service_names(settings))}"
        )
    try:
        stats = run_drill(
            args.url,
            list(range(1, args.users + 1)),
            make_services(settings, targets, paths),
            concurrency=args.concurrency,
            steady_s=args.steady_s,
            down_s=args.down_s,
        )
    except (MlrecError, OSError) as exc:
        raise SystemExit(
            f"bench_failover: {exc}; is the server up on the cluster profile (make server-up PROFILE=cluster)?"
        ) from exc
    print(markdown(stats))
    dataset = dataset_name(paths)
    out = args.out or RESULTS_DIR / f"failover_{dataset}.json"
    write_json(
        out,
        {
            "dataset": dataset,
            "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "url": args.url,
            "concurrency": args.concurrency,
            "users": args.users,
            "targets": targets,
            "phases": [s.as_dict() for s in stats],
        },
        indent=2,
    )
    failed, changed, swaps = (sum(getattr(s, f) for s in stats) for f in ("failed", "changed", "tie_swaps"))
    total = sum(s.requests for s in stats)
    print(
        f"\n[bench_failover] dataset={dataset} requests={total} failed={failed} changed={changed} "
        f"tie_swaps={swaps} out={out}"
    )


if __name__ == "__main__":
    main()

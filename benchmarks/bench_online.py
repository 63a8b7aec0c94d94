"""Online load benchmark: latency percentiles, throughput and per-hop cost of the live ``POST /ml/rec``.

Drives one or more running servers (loopback only) at each concurrency level over a fixed, seeded
user sample; every worker thread keeps one ``http.client`` keep-alive connection, so the client
adds as little as possible to the 2-core budget it shares with the servers. The per-hop breakdown
comes from each response's ``Server-Timing`` header (what the server measured), the percentiles
from the client's wall clock (what a caller sees).

Several ``--url`` values (``label=url``) are run level by level, interleaved, in the same run: on a
shared machine only a comparison made side by side means something (e.g. a baseline server on
port 5001 against the tuned one on 5000, or two gunicorn settings).

Run:  python benchmarks/bench_online.py                                   # server from mlrec.core.settings
      python benchmarks/bench_online.py --url before=http://127.0.0.1:5001 --url after=http://127.0.0.1:5000
      python benchmarks/bench_online.py --concurrency 1 4 16 --requests 1000 --max-seconds 30
Targets (issue #5): p50 <= 15 ms and p99 <= 40 ms at concurrency 1; >= 150 req/s at 16, no errors.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from mlrec.core.constants import USERID
from mlrec.core.contracts import STAGES, TOTAL
from mlrec.core.errors import MlrecError
from mlrec.core.io import read_parquet, write_json
from mlrec.core.paths import FEATURES_SCRIPT, REPO_ROOT, SERVER_SCRIPT, Paths
from mlrec.core.settings import Settings

RESULTS_DIR = REPO_ROOT / "docs" / "results"
COLUMNS = (*STAGES, TOTAL)  # the Server-Timing entries, in the server's order
TARGETS = {"c1_p50_ms": 15.0, "c1_p99_ms": 40.0, "c16_rps": 150.0}


class BenchError(MlrecError, RuntimeError):
    """The benchmark cannot run as asked (no server, no users); the hint says what to fix."""


@dataclass
class LevelResult:
    label: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    stages_ms: dict[str, float] = field(default_factory=dict)  # mean per stage from Server-Timing
    error_samples: list[str] = field(default_factory=list)


def parse_server_timing(header: str) -> dict[str, float]:
    """``"redis;dur=0.4, es;dur=12.1"`` -> ``{"redis": 0.4, "es": 12.1}`` (entries without dur skipped)."""
    out: dict[str, float] = {}
    for entry in header.split(","):
        name, *params = [p.strip() for p in entry.split(";")]
        for param in params:
            if param.startswith("dur="):
                out[name] = float(param[4:])
    return out


def sample_users(n: int, seed: int, paths: Paths) -> np.ndarray:
    """``n`` user ids drawn (seeded, without replacement) from the served user features."""
    users = read_parquet(paths.user_features, FEATURES_SCRIPT, columns=[USERID])[USERID]
    ids = np.sort(users.to_numpy(dtype=np.int64))
    if len(ids) == 0:
        raise BenchError(f"{paths.user_features}: no users", "run the offline pipeline (`make offline`)")
    return np.random.default_rng(seed).choice(ids, size=min(n, len(ids)), replace=False)


class Client:
    """One keep-alive connection to the server; reconnects after an error."""

    def __init__(self, url: str, timeout_s: float) -> None:
        parts = urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise BenchError(f"--url {url}: the benchmark drives loopback servers only")
        self.host, self.port, self.timeout_s = parts.hostname, parts.port or 80, timeout_s
        self.conn: http.client.HTTPConnection | None = None

    def post(self, userid: int) -> tuple[float, dict[str, float] | None, str | None]:
        """(client ms, server timings, error) for one request."""
        body = json.dumps({"userid": int(userid)})
        start = time.perf_counter()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
            self.conn.request("POST", "/ml/rec", body=body, headers={"Content-Type": "application/json"})
            resp = self.conn.getresponse()
            payload = resp.read()
            ms = (time.perf_counter() - start) * 1000
            if resp.status != 200:
                return ms, None, f"HTTP {resp.status}: {payload[:200]!r}"
            return ms, parse_server_timing(resp.getheader("Server-Timing", "")), None
        except (OSError, http.client.HTTPException) as exc:
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            return (time.perf_counter() - start) * 1000, None, f"{type(exc).__name__}: {exc}"

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def run_threads(worker, args: list[tuple]) -> float:
    """``worker(*a)`` for each ``a`` of ``args`` on its own thread, all at once; the seconds until all end."""
    threads = [threading.Thread(target=worker, args=a, daemon=True) for a in args]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def run_level(
    label: str, url: str, users: np.ndarray, concurrency: int, n_requests: int, max_seconds: float, timeout_s: float
) -> LevelResult:
    """``n_requests`` requests (or until ``max_seconds``) from ``concurrency`` threads, users round-robin."""
    lock = threading.Lock()
    counter = iter(range(n_requests))
    lat: list[float] = []
    timings: list[dict[str, float]] = []
    errors: list[str] = []
    deadline = time.perf_counter() + max_seconds

    def worker() -> None:
        client = Client(url, timeout_s)
        try:
            while time.perf_counter() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                ms, timing, error = client.post(int(users[i % len(users)]))
                with lock:
                    lat.append(ms)
                    if error:
                        errors.append(error)
                    else:
                        timings.append(timing)
        finally:
            client.close()

    seconds = run_threads(worker, [()] * concurrency)
    arr = np.asarray(lat) if lat else np.asarray([np.nan])
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    stages = {s: round(float(np.mean([t.get(s, 0.0) for t in timings])), 2) for s in COLUMNS} if timings else {}
    return LevelResult(
        label=label,
        concurrency=concurrency,
        requests=len(lat),
        errors=len(errors),
        seconds=round(seconds, 2),
        rps=round(len(lat) / seconds, 1),
        p50_ms=round(float(p50), 2),
        p95_ms=round(float(p95), 2),
        p99_ms=round(float(p99), 2),
        mean_ms=round(float(arr.mean()), 2),
        stages_ms=stages,
        error_samples=sorted(set(errors))[:5],
    )


def markdown(results: list[LevelResult]) -> str:
    head = ["server", "conc", "requests", "errors", "rps", "p50 ms", "p95 ms", "p99 ms", *[f"{s} ms" for s in COLUMNS]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        row = [
            r.label,
            r.concurrency,
            r.requests,
            r.errors,
            r.rps,
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            *[r.stages_ms.get(s, "") for s in COLUMNS],
        ]
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def check_targets(results: list[LevelResult]) -> dict[str, dict]:
    """Each issue-#5 target per server: the measured value and whether it is met."""
    out: dict[str, dict] = {}
    for label in dict.fromkeys(r.label for r in results):
        by_c = {r.concurrency: r for r in results if r.label == label}
        got: dict[str, dict] = {}
        if 1 in by_c:
            got["c1_p50_ms"] = {"value": by_c[1].p50_ms, "met": by_c[1].p50_ms <= TARGETS["c1_p50_ms"]}
            got["c1_p99_ms"] = {"value": by_c[1].p99_ms, "met": by_c[1].p99_ms <= TARGETS["c1_p99_ms"]}
        if 16 in by_c:
            got["c16_rps"] = {"value": by_c[16].rps, "met": by_c[16].rps >= TARGETS["c16_rps"] and by_c[16].errors == 0}
        out[label] = got
    return out


def dataset_name(paths: Paths) -> str:
    try:
        return json.loads(paths.dataset_marker.read_text())["dataset"]
    except (OSError, ValueError, KeyError):
        return "unknown"


def parse_urls(values: list[str] | None, default: str) -> list[tuple[str, str]]:
    if not values:
        return [("server", default)]
    out = []
    for value in values:
        label, _, url = value.rpartition("=") if "=" in value else ("", "", value)
        out.append((label or urlsplit(url).netloc, url))
    return out


def main() -> None:
    settings, paths = Settings.from_env(), Paths.from_env()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--url",
        action="append",
        help=f"[label=]url of a running server; repeat to compare (default {settings.server_url})",
    )
    parser.add_argument("--users", type=int, default=200, help="size of the seeded user sample")
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--requests", type=int, default=1000, help="requests per server and concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--max-seconds", type=float, default=30.0, help="cap per server and level")
    parser.add_argument(
        "--warmup",
        type=int,
        default=3000,
        help="requests per server before measuring (Elasticsearch's JVM needs a few thousand to warm up)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="client timeout per request (s)")
    parser.add_argument("--note", default="", help="free text stored in the JSON (what the servers run)")
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON path (default docs/results/latency_<dataset>.json)"
    )
    args = parser.parse_args()

    servers = parse_urls(args.url, settings.server_url)
    users = sample_users(args.users, args.seed, paths)
    for label, url in servers:
        warm = run_level(label, url, users, 4, args.warmup, args.max_seconds, args.timeout)
        if warm.errors == warm.requests:
            raise BenchError(
                f"{url}: every warm-up request failed ({warm.error_samples[:1]})",
                f"start the server with `python {SERVER_SCRIPT}` (or `make server-up`)",
            )
    results = []
    for c in args.concurrency:
        for label, url in servers:
            r = run_level(label, url, users, c, args.requests, args.max_seconds, args.timeout)
            print(
                f"[bench_online] server={label} concurrency={c} requests={r.requests} errors={r.errors} "
                f"rps={r.rps} p50_ms={r.p50_ms} p99_ms={r.p99_ms}",
                flush=True,
            )
            results.append(r)
    print()
    print(markdown(results))
    targets = check_targets(results)
    dataset = dataset_name(paths)
    out = args.out or RESULTS_DIR / f"latency_{dataset}.json"
    write_json(
        out,
        {
            "dataset": dataset,
            "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "note": args.note,
            "servers": dict(servers),
            "users": len(users),
            "seed": args.seed,
            "warmup": args.warmup,
            "targets": TARGETS,
            "target_check": targets,
            "results": [asdict(r) for r in results],
        },
        indent=2,
    )
    print(
        f"\n[bench_online] dataset={dataset} servers={len(servers)} levels={len(args.concurrency)} "
        f"out={out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out}"
    )


if __name__ == "__main__":
    try:
        main()
    except MlrecError as exc:
        sys.exit(f"error: {exc}")

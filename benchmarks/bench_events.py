"""Event benchmark: ingestion rate of ``POST /ml/event``, event-to-visible time, and what ingestion costs
``POST /ml/rec``, against the running server with every service up.

- **freshness**: for each sampled user, ask ``/ml/rec``, post a click on its top item, and ask again until
  the item is gone: the time from sending the event to the answer that reflects it (events are applied
  before ``POST /ml/event`` answers, so the first answer after it already does);
- **ingestion**: ``--ingest-threads`` clients post batches of ``--batch`` events for ``--seconds``;
- **interference**: ``/ml/rec`` at concurrency ``--rec-concurrency`` (1) alone, then while events arrive at
  ``--rate`` (500) events/s; the p99 of the two, side by side in one run (one absolute time on a shared
  machine is noise).

The events go to users the system does not hold (ids from :data:`BENCH_USERS`), so the benchmark never
changes a real user; afterwards their hashes, their entries in the event log and their event ids are
deleted (``--keep`` leaves them).

Run:  make bench-events   (= python benchmarks/bench_events.py; make server-up first)
Targets (issue #10): p99 event-to-visible <= 1 s; >= 500 events/s on 2 cores; /ml/rec p99 +20 % at most.
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
from dataclasses import asdict

import numpy as np
from bench_online import RESULTS_DIR, BenchError, Client, dataset_name, run_level, run_threads  # this script's folder

from mlrec.core import io
from mlrec.core.paths import TERMS_SCRIPT, Paths
from mlrec.core.settings import Settings
from mlrec.online import redis_store

BENCH_USERS = 2_000_000_000  # first user id of the benchmark's own users (none of them exists)
EVENT_PREFIX = "bench-"
TARGETS = {"p99_visible_ms": 1000.0, "events_per_s": 500.0, "rec_p99_increase": 0.20}


class EventClient(Client):
    """:class:`bench_online.Client`'s keep-alive connection, for any JSON POST."""

    def call(self, path: str, body: object) -> tuple[float, int, bytes]:
        start = time.perf_counter()
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        try:
            self.conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
            resp = self.conn.getresponse()
            payload = resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            raise
        return (time.perf_counter() - start) * 1000, resp.status, payload


def _items(paths: Paths) -> np.ndarray:
    return np.array(sorted(io.read_id_lists(paths.item_genres, TERMS_SCRIPT)), dtype=np.int64)


def freshness(url: str, items: np.ndarray, n_users: int, rng: np.random.Generator) -> dict:
    """Event-to-visible times (ms) over ``n_users`` benchmark users, each bootstrapped with 5 clicks."""
    client = EventClient(url, 10.0)
    times, stale = [], 0
    try:
        for k in range(n_users):
            user = BENCH_USERS + k
            seed = [
                {"userid": user, "itemid": int(i), "rating": 5, "event_id": f"{EVENT_PREFIX}f{k}-{j}"}
                for j, i in enumerate(rng.choice(items, 5, replace=False))
            ]
            client.call("/ml/event", seed)
            _, _, body = client.call("/ml/rec", {"userid": user})
            top = json.loads(body)["item_list"][0]["itemid"]
            start = time.perf_counter()
            _, status, _ = client.call(
                "/ml/event", {"userid": user, "itemid": top, "rating": 5, "event_id": f"{EVENT_PREFIX}f{k}-top"}
            )
            if status != 200:
                raise BenchError(f"POST /ml/event answered {status}", "check the server log")
            for _ in range(100):
                _, _, body = client.call("/ml/rec", {"userid": user})
                if top not in {it["itemid"] for it in json.loads(body)["item_list"]}:
                    break
                stale += 1
                time.sleep(0.01)
            times.append((time.perf_counter() - start) * 1000)
    finally:
        client.close()
    arr = np.asarray(times)
    return {
        "users": n_users,
        "p50_visible_ms": round(float(np.percentile(arr, 50)), 2),
        "p99_visible_ms": round(float(np.percentile(arr, 99)), 2),
        "max_visible_ms": round(float(arr.max()), 2),
        "stale_answers": stale,  # answers after the event that still held the clicked item
    }


def ingest(
    url: str, items: np.ndarray, threads: int, batch: int, seconds: float, seed: int, rate: float | None = None
) -> dict:
    """Post batches of random events for ``seconds`` from ``threads`` clients, as fast as they are
    answered or (``rate``) at about ``rate`` events/s in all; events/s and batch latency."""
    lock = threading.Lock()
    sent, lat, errors = [0], [], []
    deadline = time.perf_counter() + seconds

    def worker(t: int) -> None:
        rng = np.random.default_rng(seed + t)
        client = EventClient(url, 10.0)
        n = 0
        interval = batch * threads / rate if rate else 0.0  # seconds between this client's batches
        next_at = time.perf_counter()
        try:
            while time.perf_counter() < deadline:
                if interval:
                    next_at += interval
                    time.sleep(max(0.0, next_at - time.perf_counter()))
                users = BENCH_USERS + 1000 + rng.integers(0, 2000, batch)
                picks = zip(users, rng.choice(items, batch), rng.integers(1, 6, batch), strict=True)
                tag = f"{EVENT_PREFIX}{seed}-{t}-{n}"
                body = [
                    {"userid": int(u), "itemid": int(i), "rating": int(r), "event_id": f"{tag}-{j}"}
                    for j, (u, i, r) in enumerate(picks)
                ]
                n += 1
                ms, status, payload = client.call("/ml/event", body)
                with lock:
                    lat.append(ms)
                    if status == 200:
                        sent[0] += json.loads(payload)["accepted"]
                    else:
                        errors.append(f"HTTP {status}: {payload[:200]!r}")
        finally:
            client.close()

    elapsed = run_threads(worker, [(t,) for t in range(threads)])
    arr = np.asarray(lat) if lat else np.asarray([np.nan])
    return {
        "threads": threads,
        "batch": batch,
        "events": sent[0],
        "seconds": round(elapsed, 2),
        "events_per_s": round(sent[0] / elapsed, 1),
        "batch_p50_ms": round(float(np.percentile(arr, 50)), 2),
        "batch_p99_ms": round(float(np.percentile(arr, 99)), 2),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:3],
    }


def cleanup(settings: Settings) -> int:
    """Delete the benchmark users, their log entries and their event ids; returns the log entries removed."""
    client = redis_store.connect(settings, timeout=30.0)
    try:
        for key in client.scan_iter(match=f"{redis_store.USER_PREFIX}{str(BENCH_USERS)[:3]}*", count=1000):
            client.delete(key)
        return redis_store.forget_events(client, EVENT_PREFIX)
    finally:
        client.close()


def main() -> None:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=f"http://127.0.0.1:{settings.server_port}")
    parser.add_argument("--fresh-users", type=int, default=200)
    parser.add_argument("--ingest-threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=10, help="events per request (default 10)")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=500.0, help="events/s posted beside the /ml/rec load")
    parser.add_argument("--rec-concurrency", type=int, default=1)
    parser.add_argument("--rec-requests", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--keep", action="store_true", help="leave the benchmark's users and events in Redis")
    parser.add_argument("--out", help="JSON file (default docs/results/events_<dataset>.json)")
    args = parser.parse_args()
    paths = Paths.from_env(settings)
    items = _items(paths)
    rng = np.random.default_rng(args.seed)
    rec_users = BENCH_USERS + np.arange(args.fresh_users)  # bootstrapped by the freshness run
    try:
        fresh = freshness(args.url, items, args.fresh_users, rng)
        print(f"[bench_events] freshness {fresh}")
        alone = run_level("rec alone", args.url, rec_users, args.rec_concurrency, args.rec_requests, 60.0, 10.0)
        print(f"[bench_events] /ml/rec alone: p50 {alone.p50_ms} ms, p99 {alone.p99_ms} ms, {alone.rps} req/s")
        solo = ingest(args.url, items, args.ingest_threads, args.batch, args.seconds, args.seed)
        print(f"[bench_events] ingestion alone {solo}")
        box: dict = {}

        def ingest_beside() -> None:
            box.update(
                ingest(args.url, items, args.ingest_threads, args.batch, args.seconds, args.seed + 99, args.rate)
            )

        side = threading.Thread(target=ingest_beside)
        side.start()
        busy = run_level(
            "rec + ingestion", args.url, rec_users, args.rec_concurrency, args.rec_requests, args.seconds, 10.0
        )
        side.join()
        print(f"[bench_events] /ml/rec during ingestion: p50 {busy.p50_ms} ms, p99 {busy.p99_ms} ms, {busy.rps} req/s")
        print(f"[bench_events] ingestion during /ml/rec load {box}")
    finally:
        if not args.keep:
            print(f"[bench_events] cleanup: {cleanup(settings)} log entries of the benchmark removed")
    increase = busy.p99_ms / alone.p99_ms - 1
    result = {
        "dataset": dataset_name(paths),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "targets": TARGETS,
        "freshness": fresh,
        "ingestion_alone": solo,
        "ingestion_during_rec": box,
        "rec_alone": asdict(alone),
        "rec_during_ingestion": asdict(busy),
        "rec_p99_increase": round(increase, 3),
        "met": {
            "p99_visible_ms": fresh["p99_visible_ms"] <= TARGETS["p99_visible_ms"],
            "events_per_s": solo["events_per_s"] >= TARGETS["events_per_s"],
            "rec_p99_increase": increase <= TARGETS["rec_p99_increase"],
        },
    }
    out = args.out or RESULTS_DIR / f"events_{result['dataset']}.json"
    io.write_json(out, result, indent=2)
    print(
        f"[bench_events] p99_visible_ms={fresh['p99_visible_ms']} events_per_s={solo['events_per_s']} "
        f"rec_p99_alone_ms={alone.p99_ms} rec_p99_during_ms={busy.p99_ms} increase={increase:+.1%} out={out}"
    )


if __name__ == "__main__":
    main()

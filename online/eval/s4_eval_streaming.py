"""Streaming evaluation: does a click change the next recommendation for the better?

Replays each user's held-out last 10 events in time order against the running service: before each
event ask POST /ml/rec, then post the event to POST /ml/event. Scores HitRate@K and NDCG@K of "the
next event's item is in the list" over the held-out positives (rating > 3), with the event stream on
and off (off: the static system, one answer per user asked before their held-out events).

Run (services loaded and the server running):
       python online/eval/s4_eval_streaming.py [--url http://127.0.0.1:5000 --k 10 --concurrency 4]
Writes docs/results/streaming_<dataset>.{json,png}. The users' Redis state is put back afterwards and
the replayed events are removed from the event log.
"""

import argparse
from pathlib import Path

from mlrec.core import io
from mlrec.core.cli import run
from mlrec.core.constants import ITEMID, LABEL, TS, USERID
from mlrec.core.log import summary
from mlrec.core.paths import REPO_ROOT, SPLIT_SCRIPT, Paths
from mlrec.core.settings import Settings
from mlrec.data.marker import active_dataset
from mlrec.evaluation.streaming import EVENT_PREFIX, StreamReport, replay, restore, snapshot
from mlrec.online import redis_store
from mlrec.online.feast_store import FeastClient, push_offline_users


def plot(report: StreamReport, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.38
    for j, score in enumerate(report.scores):
        values = [score.hit_rate, score.ndcg]
        bars = ax.bar([x + (j - 0.5) * width for x in (0, 1)], values, width, label=score.mode)
        ax.bar_label(bars, fmt="%.3f")
    ax.set_xticks([0, 1], [f"HitRate@{report.k}", f"NDCG@{report.k}"])
    ax.set_ylabel(f"next held-out positive in the list ({report.scores[0].targets} events)")
    ax.set_title(f"{report.dataset}: replaying each user's last 10 events")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


def main(args: argparse.Namespace) -> None:
    settings = Settings.from_env()
    paths = Paths.from_env(settings)
    online = io.read_parquet(paths.online_imp, SPLIT_SCRIPT, columns=[USERID, ITEMID, LABEL, TS])
    users = sorted(int(u) for u in online[USERID].unique())
    client = redis_store.connect(settings, timeout=30.0)
    saved = snapshot(client, users)
    report = StreamReport(active_dataset(paths), args.k, len(users), len(online))
    try:
        report.scores.append(replay(args.url, online, args.k, stream=False, concurrency=args.concurrency))
        report.scores.append(replay(args.url, online, args.k, stream=True, concurrency=args.concurrency))
    finally:
        restore(client, saved)
        removed = redis_store.forget_events(client, EVENT_PREFIX)
        # the replayed users' Feast rows too (the event worker pushed theirs; a push it still makes now
        # computes the offline row again from the restored state)
        push_offline_users(FeastClient(settings.feast_push_url, timeout_s=60.0), paths, users)
        client.close()
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / f"streaming_{report.dataset}.json"
    png_path = args.out / f"streaming_{report.dataset}.png"
    io.write_json(json_path, report.to_dict(), indent=2)
    plot(report, png_path)
    for s in report.scores:
        scores = f"HitRate@{args.k} {s.hit_rate:.4f}  NDCG@{args.k} {s.ndcg:.4f}"
        print(f"{s.mode:>10}: {scores}  ({s.targets} targets, {s.requests} requests, {s.seconds} s)")
    off, on = report.scores
    summary(
        "eval_streaming",
        paths.metrics,
        dataset=report.dataset,
        users=report.users,
        events=report.events,
        targets=on.targets,
        hit_rate_on=on.hit_rate,
        hit_rate_off=off.hit_rate,
        ndcg_on=on.ndcg,
        ndcg_off=off.ndcg,
        log_entries_removed=removed,
        json=str(json_path),
        png=str(png_path),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=Settings.from_env().server_url, help="the running service")
    parser.add_argument("--k", type=int, default=10, help="list length scored (default 10)")
    parser.add_argument("--concurrency", type=int, default=4, help="users replayed at once (default 4)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "results", help="folder for JSON + PNG")
    run(main, parser)

"""Serve POST /ml/rec: Redis -> Elasticsearch -> Feast -> Triton -> top 50 {itemid, score}, and POST /ml/event.

It starts the event worker too (online/main/s5_event_worker.py, at the lowest CPU priority, nice 19): the process
that applies POST /ml/event's events out of the serving processes; it stops when the server stops.

Run:   python online/main/s1_server.py                 # gunicorn, 2 workers x 4 threads (production-like)
       python online/main/s1_server.py --dev           # Flask's development server
       flask --app mlrec.online.app run --port 5000    # the same app, Flask CLI
Then:  curl -s -X POST http://127.0.0.1:5000/ml/rec -H 'Content-Type: application/json' -d '{"userid": 1}'
Port from $MLREC_SERVER_PORT (default 5000); every service address from mlrec.core.settings.
"""

import argparse
import os
import shutil
import subprocess
import sys

from mlrec.core.paths import EVENT_WORKER_SCRIPT, REPO_ROOT
from mlrec.core.settings import Settings

WORKER_NICE = 19  # the worker yields the CPU to /ml/rec when both want it (bench-events: +72% -> +55%)

if __name__ == "__main__":
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.server_port)
    parser.add_argument("--dev", action="store_true", help="Flask development server instead of gunicorn")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--no-event-worker", action="store_true", help="do not start the event worker")
    args = parser.parse_args()
    if not args.no_event_worker:  # it outlives execv below: the pid it watches stays the server's
        worker = [sys.executable, str(REPO_ROOT / EVENT_WORKER_SCRIPT), "--parent", str(os.getpid())]
        subprocess.Popen([*worker, "--nice", str(WORKER_NICE)])
    if args.dev:
        from mlrec.online.app import create_app

        create_app().run(host=args.host, port=args.port)
    else:
        # per-worker Prometheus samples are merged from here by GET /metrics
        prom_dir = settings.runtime_dir / "server" / "prometheus"
        shutil.rmtree(prom_dir, ignore_errors=True)
        prom_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prom_dir)
        gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
        os.execv(
            gunicorn,
            [
                gunicorn,
                "-w",
                str(args.workers),
                "--threads",
                str(args.threads),
                "-b",
                f"{args.host}:{args.port}",
                "--timeout",
                "30",
                "mlrec.online.app:create_app()",
            ],
        )

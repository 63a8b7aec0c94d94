"""Serve POST /ml/rec: Redis -> Elasticsearch -> Feast -> Triton -> top 50 {itemid, score}.

Run:   python online/main/s1_server.py                 # gunicorn, 2 workers x 4 threads (production-like)
       python online/main/s1_server.py --dev           # Flask's development server
       flask --app mlrec.online.app run --port 5000    # the same app, Flask CLI
Then:  curl -s -X POST http://127.0.0.1:5000/ml/rec -H 'Content-Type: application/json' -d '{"userid": 1}'
Port from $MLREC_SERVER_PORT (default 5000); every service address from mlrec.core.settings.
"""

import argparse
import os
import shutil
import sys

from mlrec.core.settings import Settings

if __name__ == "__main__":
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.server_port)
    parser.add_argument("--dev", action="store_true", help="Flask development server instead of gunicorn")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
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

"""Apply the events POST /ml/event receives and push the users' features to Feast (mlrec.online.event_worker).

online/main/s1_server.py starts one beside the server (at a lower CPU priority, gone when the server
stops), so this is for running one alone: a server on another machine, or more workers.
Run:   python online/main/s5_event_worker.py                 # until Ctrl-C / SIGTERM
       python online/main/s5_event_worker.py --parent 1234   # also stop when process 1234 is gone
"""

import argparse
import os
import signal

from mlrec.core.cli import run
from mlrec.core.log import summary
from mlrec.core.paths import EVENT_WORKER_SCRIPT, Paths, step_name
from mlrec.core.settings import Settings
from mlrec.online.event_worker import parent_gone, serve


def main(args: argparse.Namespace) -> None:
    if args.nice:
        os.nice(args.nice)
    settings = Settings.from_env()
    stopping = [False]
    signal.signal(signal.SIGTERM, lambda *_: stopping.__setitem__(0, True))
    gone = parent_gone(args.parent)
    try:
        worker = serve(settings, Paths.from_env(settings), lambda: stopping[0] or gone())
    except KeyboardInterrupt:
        return
    if worker is not None:
        summary(step_name(EVENT_WORKER_SCRIPT), events_applied=worker.applied, feast_rows_pushed=worker.pushed)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parent", type=int, help="stop when this process (the server) is gone")
    parser.add_argument("--nice", type=int, default=0, help="lower this process's CPU priority by this much")
    run(main, parser)

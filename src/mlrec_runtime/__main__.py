"""``python -m mlrec_runtime up|down|status [names...]`` (what ``make services-*`` call)."""

from __future__ import annotations

import argparse
import sys

from mlrec.core.log import setup_logging
from mlrec_runtime.manager import SERVICE_NAMES, down, status, up
from mlrec_runtime.runtime import ServiceError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlrec_runtime", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument(
        "names", nargs="*", metavar="name", help=f"services to act on (default: all of {', '.join(SERVICE_NAMES)})"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(SERVICE_NAMES))
    if unknown:
        parser.error(f"unknown service(s) {', '.join(unknown)}: choose from {', '.join(SERVICE_NAMES)}")
    setup_logging()
    names = args.names or None
    try:
        if args.command == "up":
            up(names=names)
        elif args.command == "down":
            down(names=names)
        else:
            rows = status(names=names)
            for row in rows:
                print(row.line())
            return 0 if all(r.state in ("running", "external") for r in rows) else 3
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m mlrec_runtime up|down|status [names...]`` (what ``make services-*`` call)."""

from __future__ import annotations

import argparse
import sys

from mlrec.core.log import setup_logging
from mlrec.core.settings import Settings
from mlrec_runtime.manager import down, service_names, status, up
from mlrec_runtime.runtime import ServiceError


def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_env()
    known = service_names(settings)
    parser = argparse.ArgumentParser(prog="python -m mlrec_runtime", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument(
        "names",
        nargs="*",
        metavar="name",
        help=f"services to act on (default: all of the {settings.profile} profile's: {', '.join(known)})",
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(known))
    if unknown:
        parser.error(
            f"unknown service(s) {', '.join(unknown)} in the {settings.profile} profile (MLREC_PROFILE): "
            f"choose from {', '.join(known)}"
        )
    setup_logging()
    names = args.names or None
    try:
        if args.command == "up":
            up(settings, names=names)
        elif args.command == "down":
            down(settings, names=names)
        else:
            rows = status(settings, names=names)
            for row in rows:
                print(row.line())
            return 0 if all(r.state in ("running", "external") for r in rows) else 3
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

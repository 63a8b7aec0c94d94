"""What every numbered script shares: logging setup and turning user-fixable errors into one line.

A missing input file or a corrupt dataset is something the user can fix: every such error is a
:class:`~mlrec.core.errors.MlrecError`, so the script prints ``error: <what is wrong>; <the fix>``
and exits 2 instead of dumping a traceback. A service that does not answer exits 3 with the same
kind of line. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from typing import Any

from mlrec.core.errors import MlrecError
from mlrec.core.log import setup_logging


def unreachable_errors() -> tuple[type[BaseException], ...]:
    """Client errors meaning "the service is not running" across redis, ES, requests and Triton."""
    import elastic_transport
    import redis
    import requests
    from tritonclient.utils import InferenceServerException

    return (
        redis.ConnectionError,
        elastic_transport.ConnectionError,
        requests.ConnectionError,
        InferenceServerException,
    )


def run(main: Callable[[argparse.Namespace], object], parser: argparse.ArgumentParser) -> None:
    """Parse args, set up logging, call ``main(args)``; user errors exit 2 with one line."""
    args = parser.parse_args()
    try:
        setup_logging()  # reads Settings: a malformed MLREC_* value is a user error too
        main(args)
    except MlrecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except unreachable_errors() as exc:
        print(
            f"error: a service is unreachable ({type(exc).__name__}: {exc}); "
            "start them with `make services-up` and check `make services-status`",
            file=sys.stderr,
        )
        sys.exit(3)


def add_config_args(parser: argparse.ArgumentParser, config_cls: type, **defaults: Any) -> None:
    """One ``--field`` flag per dataclass field, typed from its default; ``defaults`` override.

    A bool field becomes ``--field`` / ``--no-field`` (``type=bool`` would read "False" as True).
    """
    for f in dataclasses.fields(config_cls):
        default = defaults.get(f.name, f.default)
        if isinstance(default, bool):
            parser.add_argument(
                f"--{f.name}", action=argparse.BooleanOptionalAction, default=default, help=f"(default: {default})"
            )
        else:
            parser.add_argument(f"--{f.name}", type=type(default), default=default, help=f"(default: {default})")


def config_from_args(config_cls: type, args: argparse.Namespace) -> Any:
    """The ``config_cls`` instance the flags of :func:`add_config_args` describe."""
    return config_cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls)})


def add_engine_arg(parser: argparse.ArgumentParser) -> None:
    """``--engine numpy|duckdb|spark`` for the prep steps (default: ``MLREC_ENGINE``, else numpy)."""
    from mlrec.offline.engines import ENGINES

    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default=None,
        help="where the step runs: numpy in this process (default), DuckDB, or Spark (MLREC_SPARK_MASTER, "
        "or spark-submit's --master); every engine writes the same artifacts",
    )


def engine_from_args(args: argparse.Namespace) -> str:
    from mlrec.core.settings import Settings
    from mlrec.offline.engines import check_engine

    return check_engine(args.engine or Settings.from_env().engine)

"""What every numbered script shares: logging setup and turning user-fixable errors into one line.

A missing input file or a corrupt dataset is something the user can fix, so the script prints
``error: <file>: <what is wrong>; <the fix>`` and exits 2 instead of dumping a traceback.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from mlrec.core.log import setup_logging


def user_errors() -> tuple[type[BaseException], ...]:
    from mlrec.core.io import ArtifactError
    from mlrec.data import DataError
    from mlrec.offline.feature_meta import FeatureMetaError

    errors: list[type[BaseException]] = [ArtifactError, FeatureMetaError, DataError]
    try:  # online-side errors: a loader whose service is down, or whose check failed
        from mlrec.evaluation.quality import EvaluationError
        from mlrec.loaders import LoadCheckError
        from mlrec.models import CheckpointError
        from mlrec.online.errors import ApiError
        from mlrec_runtime import ServiceError

        errors += [LoadCheckError, CheckpointError, ServiceError, ApiError, EvaluationError]
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


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
    setup_logging()
    try:
        main(args)
    except user_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except unreachable_errors() as exc:
        print(
            f"error: a service is unreachable ({type(exc).__name__}: {exc}); "
            "start them with `make services-up` and check `make services-status`",
            file=sys.stderr,
        )
        sys.exit(3)


def add_config_args(parser: argparse.ArgumentParser, config_cls, **defaults) -> None:
    """One ``--field`` flag per dataclass field, typed from its default; ``defaults`` override."""
    import dataclasses

    for f in dataclasses.fields(config_cls):
        default = defaults.get(f.name, f.default)
        parser.add_argument(f"--{f.name}", type=type(default), default=default, help=f"(default: {default})")


def config_from_args(config_cls, args: argparse.Namespace):
    import dataclasses

    return config_cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls)})

"""Structured, quiet-by-default logging and the one-line step summaries.

Log lines are ``key=value`` pairs (easy to grep, easy to parse); the level comes from
:attr:`Settings.log_level <mlrec.core.settings.Settings>` (``$MLREC_LOG_LEVEL`` or ``.env``; default
WARNING, so a normal run prints only progress bars and summaries).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlrec.core.io import write_json
from mlrec.core.settings import Settings

_FORMAT = "ts=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s"


def setup_logging(level: str | None = None) -> None:
    """Configure the root logger once; safe to call from every entry point."""
    level = (level or Settings.from_env().log_level).upper()
    root = logging.getLogger()
    if not any(getattr(h, "_mlrec", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler._mlrec = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)


def kv(**fields: Any) -> str:
    """Render fields as ``k=v`` pairs; floats get 4 significant decimals."""
    parts = []
    for key, value in fields.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        parts.append(f"{key}={value}")
    return " ".join(parts)


def update_metrics(path: Path, step: str, fields: dict[str, Any]) -> None:
    """Merge one step's figures into the shared metrics JSON (atomic replace; a corrupt file starts over)."""
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            data = {}
    data[step] = fields
    write_json(path, data, indent=2, sort_keys=True, default=str)


def summary(step: str, metrics_path: Path | None = None, **fields: Any) -> None:
    """Print the step's one-line summary (scalars only) and record all fields in the metrics file."""
    scalars = {k: v for k, v in fields.items() if not isinstance(v, (list, dict))}
    print(f"[{step}] {kv(**scalars)}", flush=True)
    if metrics_path is not None:
        update_metrics(metrics_path, step, fields)


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    """``with timed() as t: ...`` then ``t["seconds"]``."""
    out: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = round(time.perf_counter() - start, 3)

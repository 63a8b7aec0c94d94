"""Independent jobs on the machine's cores: one worker process per core, or all in this process.

Why processes: the models train single-threaded (``TrainConfig.threads``: on 2 cores a second
intra-op thread never paid off), so two models trained side by side use both cores where one model
with two threads did not. Workers are *spawned* (a fresh interpreter each), never forked from a
process that already holds torch's thread pools.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from mlrec.core.errors import MlrecError
from mlrec.core.log import setup_logging

Job = tuple[Callable[..., Any], tuple[Any, ...]]


class WorkerDied(MlrecError, RuntimeError):
    """A worker process ended without an answer (killed, e.g. by the kernel's out-of-memory killer)."""


def run_jobs(jobs: Sequence[Job], workers: int) -> list[Any]:
    """``[fn(*args) for fn, args in jobs]``, computed by up to ``workers`` processes, results in job order.

    Each ``fn`` must be a module-level function and its arguments and result picklable. Jobs start in
    the order given. ``workers <= 1`` (or one job) runs them here.
    """
    if workers <= 1 or len(jobs) <= 1:
        return [fn(*args) for fn, args in jobs]
    context = multiprocessing.get_context("spawn")
    # a spawned worker starts with Python's default logging: give it the project's (MLREC_LOG_LEVEL)
    with ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)), mp_context=context, initializer=setup_logging
    ) as pool:
        futures = [pool.submit(fn, *args) for fn, args in jobs]
        try:
            return [f.result() for f in futures]
        except BrokenProcessPool as exc:
            raise WorkerDied(
                f"a worker process of {len(jobs)} parallel jobs died without an answer (out of memory?)",
                "run again with MLREC_OFFLINE_WORKERS=1 to fit one model at a time in less memory",
            ) from exc

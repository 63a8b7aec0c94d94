"""Independent jobs on the machine's cores: one worker process per core, or all in this process.

Why processes: the models train single-threaded (``TrainConfig.threads``: on 2 cores a second
intra-op thread never paid off), so two models trained side by side use both cores where one model
with two threads did not. Workers are *spawned* (a fresh interpreter each), never forked from a
process that already holds torch's thread pools.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from mlrec.core.errors import MlrecError
from mlrec.core.log import setup_logging

Job = tuple[Callable[..., Any], tuple[Any, ...]]
Then = Callable[[int, Any], Job | None]  # (job index, its result) -> a follow-up job, or None


class WorkerDied(MlrecError, RuntimeError):
    """A worker process ended without an answer (killed, e.g. by the kernel's out-of-memory killer)."""


def run_jobs(jobs: Sequence[Job], workers: int, then: Then | None = None) -> list[Any]:
    """``[fn(*args) for fn, args in jobs]``, computed by up to ``workers`` processes, results in job order.

    ``then(i, result)`` may return a follow-up job for job ``i`` (or None); the follow-up is queued as
    soon as job ``i`` finishes and its result becomes slot ``i``'s. Why: a model's refit needs the epoch
    count its early stopping chose; queued the moment it is known, it fills a worker that would
    otherwise idle while a longer job ends, where a second round would wait for the slowest job.

    Each ``fn`` must be a module-level function and its arguments and result picklable. Jobs start in
    the order given. ``workers <= 1`` (or one job) runs them here.
    """
    results: list[Any] = []
    if workers <= 1 or len(jobs) <= 1:
        for i, (fn, args) in enumerate(jobs):
            result = fn(*args)
            follow = then(i, result) if then else None
            results.append(follow[0](*follow[1]) if follow else result)
        return results
    context = multiprocessing.get_context("spawn")
    # a spawned worker starts with Python's default logging: give it the project's (MLREC_LOG_LEVEL)
    with ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)), mp_context=context, initializer=setup_logging
    ) as pool:
        slot: dict[Future, tuple[int, bool]] = {pool.submit(fn, *args): (i, False) for i, (fn, args) in enumerate(jobs)}
        results = [None] * len(jobs)
        try:
            while slot:
                done, _ = wait(slot, return_when=FIRST_COMPLETED)
                for future in done:
                    i, followed = slot.pop(future)
                    result = future.result()
                    follow = None if followed or then is None else then(i, result)
                    if follow:
                        slot[pool.submit(follow[0], *follow[1])] = (i, True)
                    else:
                        results[i] = result
        except BrokenProcessPool as exc:
            raise WorkerDied(
                f"a worker process of {len(jobs)} parallel jobs died without an answer (out of memory?)",
                "run again with MLREC_OFFLINE_WORKERS=1 to fit one model at a time in less memory",
            ) from exc
        return results

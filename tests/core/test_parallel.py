"""run_jobs: the same results, in job order, whether the jobs run here or in spawned worker processes."""

import logging
import operator
import os

import pytest

from mlrec.core.parallel import WorkerDied, run_jobs


@pytest.mark.parametrize("workers", [1, 2])
def test_results_come_back_in_job_order(workers):
    jobs = [(pow, (2, k)) for k in range(6)] + [(operator.add, ("a", "b"))]
    assert run_jobs(jobs, workers) == [1, 2, 4, 8, 16, 32, "ab"]


def test_a_failing_job_raises_its_own_error_in_the_caller():
    with pytest.raises(ZeroDivisionError):
        run_jobs([(operator.add, (1, 2)), (operator.truediv, (1, 0))], 2)


def test_no_jobs_is_no_results():
    assert run_jobs([], 2) == []


def test_workers_log_at_the_configured_level(monkeypatch):
    """A spawned worker gets the project's logging (MLREC_LOG_LEVEL), not Python's default WARNING."""
    monkeypatch.setenv("MLREC_LOG_LEVEL", "INFO")
    root_level = logging.getLogger().getEffectiveLevel  # a bound method of the root logger pickles by name
    assert run_jobs([(root_level, ()), (root_level, ())], 2) == [logging.INFO, logging.INFO]


def test_a_worker_that_dies_is_a_named_error_with_the_fix():
    """A worker killed mid-job (here it exits; in life the OOM killer) is not a bare BrokenProcessPool."""
    with pytest.raises(WorkerDied, match="MLREC_OFFLINE_WORKERS=1"):
        run_jobs([(operator.add, (1, 2)), (os._exit, (3,))], 2)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_follow_up_job_replaces_its_slot_and_sees_the_first_result(workers):
    """``then`` chains a second job to a slot (here: square the even powers); slots without one keep
    their first result; a follow-up is not followed again."""
    seen = []

    def then(i, result):
        seen.append((i, result))
        return (pow, (result, 2)) if result % 2 == 0 else None

    jobs = [(pow, (2, k)) for k in range(4)] + [(operator.add, (1, 2))]
    assert run_jobs(jobs, workers, then) == [1, 4, 16, 64, 3]
    assert sorted(seen) == [(0, 1), (1, 2), (2, 4), (3, 8), (4, 3)]


def test_a_failing_follow_up_raises_in_the_caller():
    with pytest.raises(ZeroDivisionError):
        run_jobs([(operator.add, (1, 2)), (operator.add, (0, 0))], 2, lambda i, r: (operator.truediv, (1, r)))

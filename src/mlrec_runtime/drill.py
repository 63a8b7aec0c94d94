"""The failover drill: steady load on ``POST /ml/rec`` while one node of a tier at a time is killed
(SIGKILL, as in a crash) and brought back.

Why it lives here: it drives the native runtime's own processes (their pidfiles), and both the
integration test (``tests/runtime/test_failover.py``) and the benchmark (``make bench-failover``) run it.

Before the load starts, every user's answer is read once; during the drill each answer must be that
same list. ``changed`` counts answers that are not, beyond one kind of float noise counted apart as
``tie_swaps``: items whose scores differ by less than :data:`TIE_TOLERANCE` swapped places. Triton's
dynamic batching scores a request together with whatever other requests arrive with it, and a row's
score can move in the last float32 bits with the batch's shape (measured: user 2's items 628 and 405 at
0.08436873 and 0.08436870 came back in both orders); that happens with every node up, too.

Requests are grouped by phase (steady, killed, restarting, back) with their client-side latencies, so
the report shows what a failover costs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import requests

from mlrec.core.contracts import ITEM_LIST
from mlrec_runtime import runtime
from mlrec_runtime.base import Service
from mlrec_runtime.manager import start_service, wait_service

REC_PATH = "/ml/rec"
TIE_TOLERANCE = 1e-5  # scores this close are a tie: their order may follow batching noise


@dataclass(frozen=True)
class PhaseStats:
    """The requests of one phase: how many, how many failed or changed, and their latency (ms)."""

    phase: str
    seconds: float
    requests: int
    failed: int
    changed: int
    tie_swaps: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    error_samples: tuple[str, ...] = ()

    def line(self) -> str:
        return (
            f"{self.phase:<28} {self.seconds:6.1f} s {self.requests:6d} req {self.failed:4d} failed "
            f"{self.changed:4d} changed {self.tie_swaps:3d} tie swaps  "
            f"p50 {self.p50_ms:7.1f}  p99 {self.p99_ms:7.1f}  max {self.max_ms:7.1f} ms"
        )

    def as_dict(self) -> dict:
        return asdict(self)


Answer = list[tuple[int, float]]


def answer(session: requests.Session, url: str, userid: int, timeout_s: float) -> Answer:
    """The served (item id, score) list for ``userid`` (raises on anything but 200)."""
    resp = session.post(f"{url}{REC_PATH}", json={"userid": int(userid)}, timeout=timeout_s)
    resp.raise_for_status()
    return [(int(item["itemid"]), float(item["score"])) for item in resp.json()[ITEM_LIST]]


def compare(got: Answer, want: Answer) -> str:
    """ "same" (the same items in the same order), "tie swap" (the same items with the same scores within
    TIE_TOLERANCE, so any item that moved swapped places with one scored the same) or "changed"."""
    if [i for i, _ in got] == [i for i, _ in want]:
        return "same"
    wanted = dict(want)
    same_scores = len(got) == len(want) and all(i in wanted and abs(s - wanted[i]) <= TIE_TOLERANCE for i, s in got)
    in_place = all(abs(a[1] - b[1]) <= TIE_TOLERANCE for a, b in zip(got, want, strict=False))
    return "tie swap" if same_scores and in_place else "changed"


def expected_answers(url: str, users: Sequence[int], timeout_s: float = 10.0) -> dict[int, Answer]:
    """Every user's answer before the drill: what each answer during it must equal."""
    with requests.Session() as session:
        return {int(u): answer(session, url, int(u), timeout_s) for u in users}


class Load:
    """``concurrency`` threads posting ``/ml/rec`` for ``users`` in turn, each answer checked against
    ``expected`` and recorded under the phase current when the request started."""

    def __init__(self, url: str, expected: dict[int, Answer], concurrency: int = 8, timeout_s: float = 10.0) -> None:
        self.url, self.expected, self.concurrency, self.timeout_s = url, expected, concurrency, timeout_s
        self.users = list(expected)
        self.phase = "steady"
        self._phase_start: dict[str, float] = {}
        self._phase_end: dict[str, float] = {}
        # phase, ms, answered, compare() of the answer, error or (changed) what changed
        self._records: list[tuple[str, float, bool, str, str | None]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(concurrency)]

    def __enter__(self) -> Load:
        self.enter("steady")
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._phase_end[self.phase] = time.monotonic()

    def enter(self, phase: str) -> None:
        """Requests starting from now on belong to ``phase``."""
        now = time.monotonic()
        with self._lock:
            self._phase_end[self.phase] = now
            self.phase = phase
            self._phase_start[phase] = now

    def _run(self, worker: int) -> None:
        turn = worker
        with requests.Session() as session:
            while not self._stop.is_set():
                userid, note = self.users[turn % len(self.users)], None
                turn += self.concurrency
                phase, start = self.phase, time.perf_counter()
                error: str | None = None
                try:
                    got, want = answer(session, self.url, userid, self.timeout_s), self.expected[userid]
                    verdict = compare(got, want)
                    if verdict == "changed":  # kept as a sample: which user, and how far the answer moved
                        ids, wanted = [i for i, _ in got], [i for i, _ in want]
                        note = f"user {userid}: {sum(a != b for a, b in zip(ids, wanted, strict=False))} of "
                        note += f"{len(wanted)} places differ, {len(set(wanted) - set(ids))} items missing"
                except (requests.RequestException, ValueError, KeyError) as exc:
                    verdict, error = "failed", f"{type(exc).__name__}: {str(exc)[:200]}"
                record = (phase, (time.perf_counter() - start) * 1000, error is None, verdict, error or note)
                with self._lock:
                    self._records.append(record)

    def stats(self) -> list[PhaseStats]:
        """One :class:`PhaseStats` per phase, in the order the phases began."""
        out = []
        for phase in self._phase_start:
            rows = [r for r in self._records if r[0] == phase]
            ms = np.array([r[1] for r in rows]) if rows else np.zeros(1)
            errors = [r[4] for r in rows if r[4]]
            out.append(
                PhaseStats(
                    phase=phase,
                    seconds=round(self._phase_end.get(phase, time.monotonic()) - self._phase_start[phase], 2),
                    requests=len(rows),
                    failed=sum(not r[2] for r in rows),
                    changed=sum(r[3] == "changed" for r in rows),
                    tie_swaps=sum(r[3] == "tie swap" for r in rows),
                    p50_ms=round(float(np.percentile(ms, 50)), 1),
                    p99_ms=round(float(np.percentile(ms, 99)), 1),
                    max_ms=round(float(ms.max()), 1),
                    error_samples=tuple(dict.fromkeys(errors))[:3],
                )
            )
        return out


def run_drill(
    url: str,
    users: Sequence[int],
    targets: Sequence[Service],
    concurrency: int = 8,
    steady_s: float = 5.0,
    down_s: float = 8.0,
) -> list[PhaseStats]:
    """Under load: ``steady_s`` of nothing, then for each of ``targets`` in turn: SIGKILL it, keep the load
    on for ``down_s``, start it again (the phase lasts until it is healthy), and ``steady_s`` more.

    Returns the phases' statistics (see :class:`Load`); the targets are running again at the end."""
    expected = expected_answers(url, users)
    with Load(url, expected, concurrency) as load:
        time.sleep(steady_s)
        for service in targets:
            load.enter(f"{service.name} killed")
            runtime.kill(service.pid_path)
            time.sleep(down_s)
            load.enter(f"{service.name} restarting")
            start_service(service)
            wait_service(service)
            load.enter(f"{service.name} back")
            time.sleep(steady_s)
    return load.stats()

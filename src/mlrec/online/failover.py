"""Several nodes of one tier behind one call: spread the load, step over a dead node, keep to a time budget.

Why by hand for Feast and Triton: Elasticsearch's client (elastic-transport) already keeps a node pool
with dead-node backoff and retries on another node, so that tier uses it; the Feast feature server is
plain HTTP and Triton's gRPC client talks to one address, so these two get this small pool.

- **Every node works**: calls go round-robin over the nodes that are up.
- **A dead node costs one failed call**: a node that did not answer (refused, reset, timed out) is set
  aside for :attr:`NodePool.cooldown_s` and the call goes on to the next node; when the cooldown ends the
  node gets traffic again, and if every node is set aside they are all tried anyway.
- **One budget per request**: a :class:`Deadline` shortens each attempt's timeout to what is left of the
  request's budget, and :class:`BudgetSpent` is raised rather than start an attempt with nothing left.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
COOLDOWN_S = 5.0


class BudgetSpent(TimeoutError):
    """The request's time budget ran out before this call could start."""


class Deadline:
    """The end of one request's time budget (``time.monotonic`` based)."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self.end = time.monotonic() + budget_s

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def timeout(self, per_call_s: float) -> float:
        """The timeout for the next call: ``per_call_s``, or less if the budget ends sooner."""
        left = self.remaining()
        if left <= 0:
            raise BudgetSpent(f"the request's {self.budget_s:g} s budget is spent")
        return min(per_call_s, left)


class NodePool(Generic[T]):
    """Round-robin over a tier's nodes with failover (see the module docstring)."""

    def __init__(self, nodes: Sequence[T], cooldown_s: float = COOLDOWN_S) -> None:
        if not nodes:
            raise ValueError("a node pool needs at least one node")
        self.nodes = list(nodes)
        self.cooldown_s = cooldown_s
        self._down_until = [0.0] * len(self.nodes)
        self._turn = itertools.count()
        self._lock = threading.Lock()

    def order(self) -> list[int]:
        """Node indexes to try, in order: the live ones from this call's turn on, then those set aside."""
        start = next(self._turn) % len(self.nodes)
        rotation = [(start + i) % len(self.nodes) for i in range(len(self.nodes))]
        now = time.monotonic()
        with self._lock:
            live = [i for i in rotation if self._down_until[i] <= now]
        return live + [i for i in rotation if i not in live]

    def mark_down(self, index: int) -> None:
        with self._lock:
            self._down_until[index] = time.monotonic() + self.cooldown_s

    def mark_up(self, index: int) -> None:
        with self._lock:
            self._down_until[index] = 0.0

    def down(self) -> list[int]:
        """Indexes of the nodes set aside now."""
        now = time.monotonic()
        with self._lock:
            return [i for i, until in enumerate(self._down_until) if until > now]

    def call(
        self,
        fn: Callable[[T, float | None], R],
        retry_on: tuple[type[BaseException], ...],
        deadline: Deadline | None = None,
        per_call_s: float | None = None,
    ) -> R:
        """``fn(node, timeout)`` on the first node that answers; ``retry_on`` errors move on to the next.

        ``timeout`` is ``per_call_s`` cut to what is left of ``deadline`` (None without a deadline).
        Raises the last node's error when none answered, :class:`BudgetSpent` when the budget ran out first.
        """
        error: BaseException | None = None
        for index in self.order():
            timeout = deadline.timeout(per_call_s or deadline.remaining()) if deadline else per_call_s
            try:
                result = fn(self.nodes[index], timeout)
            except retry_on as exc:
                self.mark_down(index)
                error = exc
                continue
            if self._down_until[index]:
                self.mark_up(index)
            return result
        assert error is not None  # the loop ran at least once: a pool is never empty
        raise error

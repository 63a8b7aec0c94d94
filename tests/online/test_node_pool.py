"""The node pool behind the Feast and Triton tiers: round-robin, failover, cooldown, one time budget."""

from __future__ import annotations

import time

import numpy as np
import pytest

from mlrec.online.failover import BudgetSpent, Deadline, NodePool
from mlrec.online.feast_store import FeastPool, FeastUnreachable
from mlrec.online.triton_ranker import TritonPool, TritonUnreachable


class Down(Exception):
    pass


def test_calls_go_round_robin_over_live_nodes():
    pool = NodePool(["a", "b", "c"])
    assert [pool.call(lambda node, _t: node, (Down,)) for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]


def test_a_dead_node_costs_one_failed_attempt_then_is_set_aside():
    pool = NodePool(["a", "b"], cooldown_s=60)
    tried: list[str] = []

    def call(node: str, _timeout: float | None) -> str:
        tried.append(node)
        if node == "a":
            raise Down(node)
        return node

    assert [pool.call(call, (Down,)) for _ in range(4)] == ["b"] * 4
    assert tried == ["a", "b", "b", "b", "b"]  # "a" failed once and was set aside
    assert pool.down() == [0]


def test_a_node_set_aside_is_tried_again_after_its_cooldown():
    pool = NodePool(["a", "b"], cooldown_s=0.05)
    pool.mark_down(0)
    assert pool.order() in ([1, 0],)
    time.sleep(0.06)
    assert pool.down() == [] and sorted(pool.order()) == [0, 1]


def test_when_every_node_fails_the_last_error_is_raised():
    pool = NodePool(["a", "b"])

    def call(node: str, _timeout: float | None) -> str:
        raise Down(node)

    with pytest.raises(Down):
        pool.call(call, (Down,))
    assert sorted(pool.down()) == [0, 1]
    with pytest.raises(Down):  # all set aside: they are still tried rather than giving up unasked
        pool.call(call, (Down,))


def test_other_errors_are_not_retried():
    pool = NodePool(["a", "b"])
    tried: list[str] = []

    def call(node: str, _timeout: float | None) -> str:
        tried.append(node)
        raise KeyError(node)

    with pytest.raises(KeyError):
        pool.call(call, (Down,))
    assert len(tried) == 1 and pool.down() == []


def test_each_attempt_gets_what_is_left_of_the_budget():
    pool = NodePool(["slow", "fast"])
    timeouts: list[float | None] = []

    def call(node: str, timeout: float | None) -> str:
        timeouts.append(timeout)
        if node == "slow":
            time.sleep(0.15)
            raise Down(node)
        return node

    assert pool.call(call, (Down,), Deadline(0.3), per_call_s=2.0) == "fast"
    assert timeouts[0] == pytest.approx(0.3, abs=0.02) and timeouts[1] == pytest.approx(0.15, abs=0.04)


def test_a_spent_budget_stops_before_the_next_attempt():
    deadline = Deadline(0.01)
    time.sleep(0.02)
    with pytest.raises(BudgetSpent):
        NodePool(["a"]).call(lambda node, _t: node, (Down,), deadline, per_call_s=1.0)


def test_feast_pool_raises_unreachable_when_no_server_answers(free_port: int):
    pool = FeastPool([f"http://127.0.0.1:{free_port}", f"http://127.0.0.1:{free_port}"], timeout_s=1.0)
    with pytest.raises(FeastUnreachable):
        pool.get("ml_user", "userid", [1])
    assert sorted(pool.pool.down()) == [0, 1]


def test_triton_pool_raises_unreachable_when_no_server_answers(free_port: int):
    pool = TritonPool([f"127.0.0.1:{free_port}"], "ml_rec", timeout_s=1.0)
    pool.rankers[0]._max_batch = 64  # skip asking a dead server for the model config
    with pytest.raises(TritonUnreachable):
        pool.score(np.zeros((2, 3), np.float32))
    assert not pool.ready()

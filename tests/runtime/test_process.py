"""mlrec_runtime.runtime and manager: real child processes, pidfiles, health waits, port conflicts."""

from __future__ import annotations

import json
import os
import socket
import sys
from dataclasses import replace

import pytest

from mlrec.core.settings import Settings
from mlrec_runtime import runtime
from mlrec_runtime.manager import make_services, start_service
from mlrec_runtime.runtime import ProcessSpec, StartError


def _spec(tmp_path, *argv: str) -> ProcessSpec:
    return ProcessSpec("demo", list(argv), tmp_path / "demo.log", tmp_path / "demo.pid")


def test_start_then_stop_kills_the_whole_process_group(tmp_path):
    # a parent that spawns a child, like the Elasticsearch launcher and its JVM
    script = "import subprocess, time; subprocess.Popen(['sleep', '60']); print('ready', flush=True); time.sleep(60)"
    spec = _spec(tmp_path, sys.executable, "-c", script)
    pid = runtime.start(spec)
    assert runtime.read_pid(spec.pid_path) == pid
    runtime.wait_healthy("demo", lambda: "ready" in spec.log_path.read_text(), spec.pid_path, spec.log_path, 10)
    assert runtime._group_alive(pid)
    assert runtime.stop(spec.pid_path, timeout_s=5)
    assert not runtime._group_alive(pid)
    assert not spec.pid_path.exists()
    assert runtime.stop(spec.pid_path) is False  # second stop: nothing of ours runs


def test_a_reused_pid_is_not_ours(tmp_path):
    """A pidfile whose start time does not match the live process must never lead to a kill."""
    pid_path = tmp_path / "other.pid"
    pid_path.write_text(json.dumps({"pid": os.getpid(), "start_ticks": 1}))
    assert runtime.read_pid(pid_path) is None
    assert runtime.stop(pid_path) is False  # and we are still alive to assert it


def test_exit_during_startup_reports_the_log_tail(tmp_path):
    spec = _spec(tmp_path, "sh", "-c", "echo 'fatal: bad setting [x.y]'; exit 3")
    runtime.start(spec)
    with pytest.raises(StartError, match=r"demo exited during startup(.|\n)*fatal: bad setting \[x\.y\]"):
        runtime.wait_healthy("demo", lambda: False, spec.pid_path, spec.log_path, 10)


def test_timeout_reports_the_log_tail_and_leaves_stop_to_the_caller(tmp_path):
    spec = _spec(tmp_path, "sh", "-c", "echo still warming up; sleep 30")
    runtime.start(spec)
    try:
        with pytest.raises(StartError, match=r"not healthy after 1 s(.|\n)*still warming up"):
            runtime.wait_healthy("demo", lambda: False, spec.pid_path, spec.log_path, 1)
    finally:
        assert runtime.stop(spec.pid_path, timeout_s=5)


def test_log_tail_keeps_the_last_lines(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert runtime.log_tail(log, 3).splitlines() == ["line 97", "line 98", "line 99"]
    assert "no log file" in runtime.log_tail(tmp_path / "missing.log")


def test_a_port_taken_by_something_else_is_a_named_error(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = replace(Settings(), redis_port=port, runtime_dir=tmp_path)
        (redis,) = make_services(settings, ["redis"])
        with pytest.raises(StartError, match=f"port {port} .* taken by another program"):
            start_service(redis)
    assert not redis.pid_path.exists()


def test_unknown_service_name_is_rejected():
    with pytest.raises(ValueError, match="unknown service"):
        make_services(Settings(), ["redis", "mongo"])

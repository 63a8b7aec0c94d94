"""Background processes we own: start with a pidfile and a log file, wait for health, stop.

Why pidfiles carry the process start time: a pid alone can be reused by an unrelated process
after ours died, and ``down`` must never signal something it did not start. Each server runs in
its own session (process group), so stopping it also stops the children it spawned (the
Elasticsearch launcher's JVM, Triton's Python-backend stubs) and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mlrec.core.errors import MlrecError
from mlrec.core.io import write_json

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 40


class ServiceError(MlrecError, RuntimeError):
    """A service could not be installed, started or stopped; the message (or hint) says what to do."""


class InstallError(ServiceError):
    """Installing a server (apt, Maven, pip) failed."""


class StartError(ServiceError):
    """A server exited or did not become healthy in time."""


@dataclass(frozen=True)
class ProcessSpec:
    """How to launch one server in the background."""

    name: str
    argv: Sequence[str]
    log_path: Path
    pid_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    user: str | None = None  # run as this user (Elasticsearch refuses to run as root)
    nice: int = 0  # CPU priority below the default (a background server yields to the serving path)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log file, for error messages (empty if there is no log yet)."""
    if not path.is_file():
        return f"(no log file at {path})"
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 64 * 1024))
        text = fh.read().decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def _start_ticks(pid: int) -> int | None:
    """Process start time in clock ticks since boot (field 22 of /proc/<pid>/stat), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) "
    if fields[0] == "Z":  # a zombie has exited; it only waits to be reaped
        return None
    return int(fields[19])


def read_pid(pid_path: Path) -> int | None:
    """The pid recorded in ``pid_path`` if that very process is still alive, else None."""
    if not pid_path.is_file():
        return None
    try:
        record = json.loads(pid_path.read_text())
        pid, ticks = int(record["pid"]), int(record["start_ticks"])
    except (ValueError, KeyError, TypeError):
        return None
    return pid if _start_ticks(pid) == ticks else None


def start(spec: ProcessSpec) -> int:
    """Launch ``spec`` detached (own session, stdin closed, output appended to its log)."""
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    spec.pid_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **spec.env}
    with spec.log_path.open("ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} start: {' '.join(spec.argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            list(spec.argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=spec.cwd,
            start_new_session=True,
            user=spec.user,
            group=spec.user,
            extra_groups=[] if spec.user else None,
            preexec_fn=(lambda: os.nice(spec.nice)) if spec.nice else None,
        )
    ticks = _start_ticks(proc.pid)
    write_json(spec.pid_path, {"pid": proc.pid, "start_ticks": ticks, "argv": list(spec.argv)})
    log.info("started name=%s pid=%s log=%s", spec.name, proc.pid, spec.log_path)
    return proc.pid


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our child (so it does not linger as a zombie)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop(
    pid_path: Path, timeout_s: float = 30.0, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGKILL)
) -> bool:
    """Stop the process group recorded in ``pid_path``; True if something was running.

    SIGTERM first (servers flush and exit cleanly), SIGKILL after ``timeout_s``.
    """
    pid = read_pid(pid_path)
    if pid is None:
        pid_path.unlink(missing_ok=True)
        return False
    for sig, wait_s in zip(signals, (timeout_s, 5.0), strict=False):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            _reap(pid)
            if read_pid(pid_path) is None and not _group_alive(pid):
                pid_path.unlink(missing_ok=True)
                return True
            time.sleep(0.1)
    pid_path.unlink(missing_ok=True)
    return True


def kill(pid_path: Path, timeout_s: float = 10.0) -> bool:
    """SIGKILL the process group recorded in ``pid_path`` (a crash, not a shutdown: nothing is flushed
    and no peer is told); True if something was running. For failover drills; ``stop`` is the clean way."""
    return stop(pid_path, timeout_s, signals=(signal.SIGKILL,))


def _group_alive(pgid: int) -> bool:
    """True while any non-zombie process of process group ``pgid`` is left."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def wait_healthy(name: str, check: Callable[[], bool], pid_path: Path, log_path: Path, timeout_s: float) -> float:
    """Poll ``check`` until it passes; raise :class:`StartError` with the log tail otherwise.

    Returns the seconds waited. Fails fast when the process has already exited.
    """
    start_t = time.monotonic()
    while True:
        if check():
            return time.monotonic() - start_t
        pid = read_pid(pid_path)
        if pid is None:
            raise StartError(f"{name} exited during startup. Last lines of {log_path}:\n{log_tail(log_path)}")
        _reap(pid)
        if time.monotonic() - start_t > timeout_s:
            raise StartError(
                f"{name} was not healthy after {timeout_s:.0f} s (still running, pid {pid}). "
                f"Last lines of {log_path}:\n{log_tail(log_path)}"
            )
        time.sleep(0.25)


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def run_checked(
    argv: Sequence[str],
    what: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout_s: float | None = None,
) -> subprocess.CompletedProcess:
    """Run an install/CLI command; on failure raise :class:`InstallError` with its output."""
    try:
        proc = subprocess.run(
            list(argv),
            env={**os.environ, **(env or {})},
            cwd=cwd,
            timeout=timeout_s,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    except FileNotFoundError as exc:
        raise InstallError(f"{what}: command not found: {argv[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise InstallError(f"{what}: `{' '.join(argv)}` timed out after {timeout_s} s") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-LOG_TAIL_LINES:])
        raise InstallError(f"{what}: `{' '.join(argv)}` exited with {proc.returncode}:\n{tail}")
    return proc

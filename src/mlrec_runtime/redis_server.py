"""Redis: Debian's ``redis-server``, our own instance with its own config and data folder.

Why not the system service: it may be absent, differently configured or owned by someone else;
our instance lives entirely under ``.runtime/redis`` and stops with ``services-down``.
"""

from __future__ import annotations

import re
import socket

from mlrec_runtime.base import Service, apt_install, which
from mlrec_runtime.runtime import ProcessSpec

# Debian 12's redis-server series; docker-compose.yml pins the same series (tests check it).
REDIS_VERSION = "7.0"


def redis_ping(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """Send the inline ``PING`` command and expect ``+PONG`` (no client library needed)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer(Service):
    name = "redis"
    start_timeout_s = 20.0

    @property
    def port(self) -> int:
        return self.settings.redis_port

    @property
    def binary(self) -> str | None:
        return which("redis-server")

    def is_installed(self) -> bool:
        return self.binary is not None

    def install(self) -> None:
        apt_install(self.name, ["redis-server"])

    @property
    def config_path(self):
        return self.dir / "redis.conf"

    def prepare(self) -> None:
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            "# written by mlrec_runtime.redis_server on every start; edit there, not here\n"
            f"bind {self.settings.host}\n"
            f"port {self.port}\n"
            "protected-mode yes\n"
            "daemonize no\n"  # we own the process: it must stay in the foreground
            'logfile ""\n'  # stdout, which the runtime appends to redis.log
            f"dir {data}\n"
            "save 300 1\n"
            # POST /ml/event's log must survive a crash: with the append-only file each write reaches
            # the file (write(2)) before Redis replies, so a killed Redis loses no acknowledged event;
            # everysec fsyncs once a second (an OS crash or power cut can lose that last second)
            "appendonly yes\n"
            "appendfsync everysec\n"
            "maxmemory-policy noeviction\n"
        )

    def process(self) -> ProcessSpec:
        return ProcessSpec(
            self.name, [self.binary or "redis-server", str(self.config_path)], self.log_path, self.pid_path
        )

    def healthy(self) -> bool:
        return redis_ping(self.settings.host, self.port)

    def version(self) -> str | None:
        if not self.healthy():
            return None
        try:
            with socket.create_connection((self.settings.host, self.port), timeout=1.0) as sock:
                sock.sendall(b"INFO server\r\n")
                text = b""
                while b"redis_version" not in text or not text.endswith(b"\r\n"):
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    text += chunk
        except OSError:
            return None
        match = re.search(rb"redis_version:([\w.]+)", text)
        return match.group(1).decode() if match else None

"""Redis: Debian's ``redis-server``, our own instance with its own config and data folder.

Why not the system service: it may be absent, differently configured or owned by someone else;
our instance lives entirely under ``.runtime/redis`` and stops with ``services-down``.
"""

from __future__ import annotations

import re
import socket
import time

from mlrec_runtime.base import Service, apt_install, progress, which
from mlrec_runtime.runtime import ProcessSpec, StartError

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
    _migrate_aof = False  # set by prepare(): this start loads an RDB snapshot, ready() switches the AOF on

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

    @property
    def data_dir(self):
        return self.dir / "data"

    def _needs_aof_migration(self) -> bool:
        """A data folder from before the append-only file: an RDB snapshot and no append-only folder.
        Started with ``appendonly yes`` Redis would ignore the snapshot and come up empty."""
        return (self.data_dir / "dump.rdb").is_file() and not (self.data_dir / "appendonlydir").exists()

    def prepare(self) -> None:
        data = self.data_dir
        data.mkdir(parents=True, exist_ok=True)
        self._migrate_aof = self._needs_aof_migration()
        if self._migrate_aof:
            progress(self.name, "an RDB snapshot from before the append-only file: loading it, then switching on")
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
            f"appendonly {'no' if self._migrate_aof else 'yes'}\n"
            "appendfsync everysec\n"
            "maxmemory-policy noeviction\n"
        )

    def process(self) -> ProcessSpec:
        return ProcessSpec(
            self.name, [self.binary or "redis-server", str(self.config_path)], self.log_path, self.pid_path
        )

    def healthy(self) -> bool:
        return redis_ping(self.settings.host, self.port)

    def ready(self) -> None:
        """After a start that loaded a pre-append-only snapshot: ``CONFIG SET appendonly yes`` (Redis
        rewrites the append-only file from the loaded data), and wait until that file is written."""
        if not self._migrate_aof:
            return
        if not self._command(b"CONFIG SET appendonly yes").startswith(b"+OK"):
            raise StartError(f"{self.name}: could not switch the append-only file on; see {self.log_path}")
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline:
            info = self._command(b"INFO persistence")
            if b"aof_enabled:1" in info and b"aof_rewrite_in_progress:0" in info and b"aof_rewrite_scheduled:0" in info:
                self._migrate_aof = False
                progress(self.name, "append-only file written from the snapshot")
                return
            time.sleep(0.2)
        raise StartError(f"{self.name}: the append-only file was not written within 60 s; see {self.log_path}")

    def _command(self, command: bytes) -> bytes:
        """One inline command's raw reply (no client library in the runtime)."""
        with socket.create_connection((self.settings.host, self.port), timeout=5.0) as sock:
            sock.sendall(command + b"\r\n")
            reply = sock.recv(65536)
            if reply.startswith(b"$"):  # a bulk string: read until its announced length has arrived
                size = int(reply[1 : reply.index(b"\r\n")])
                while len(reply) < size + len(str(size)) + 5:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    reply += chunk
            return reply

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


class RedisReplica(RedisServer):
    """The cluster profile's Redis replica (``redis-replica``): a live copy of the primary.

    It follows every write of the primary (``replicaof``) and is read-only; what it buys is a warm
    standby holding the data (promote it with ``REPLICAOF NO ONE`` if the primary's disk is lost) and a
    place to read from. It does not take over by itself: that needs Redis Sentinel (docs/services.md)."""

    name = "redis-replica"

    @property
    def port(self) -> int:
        return self.settings.redis_replica_port

    def _needs_aof_migration(self) -> bool:
        return False  # a replica loads everything from its primary

    def prepare(self) -> None:
        super().prepare()
        with self.config_path.open("a") as fh:
            fh.write(f"replicaof {self.settings.host} {self.settings.redis_port}\nreplica-read-only yes\n")

    def linked(self) -> bool:
        """Whether the replica is connected to its primary and in sync."""
        return b"master_link_status:up" in self._command(b"INFO replication")

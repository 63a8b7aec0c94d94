"""The native Redis keeps its data when a data folder from before the append-only file is started with it:
the snapshot is loaded, then the append-only file is written from it, and later starts read that file."""

from __future__ import annotations

import dataclasses
import os
import signal

import redis

from mlrec.core.settings import Settings
from mlrec_runtime import runtime
from mlrec_runtime.manager import start_service, wait_service
from mlrec_runtime.redis_server import RedisServer


def _start(server: RedisServer) -> redis.Redis:
    assert start_service(server)
    wait_service(server)
    return redis.Redis(host=server.settings.host, port=server.port, socket_timeout=5)


def test_an_rdb_only_data_folder_is_migrated_to_the_append_only_file(services: Settings, free_port, tmp_path):
    server = RedisServer(dataclasses.replace(services, redis_port=free_port, runtime_dir=tmp_path))
    try:
        client = _start(server)
        client.set("kept", "from the snapshot")
        client.save()  # dump.rdb
        runtime.stop(server.pid_path)
        for f in sorted((server.data_dir / "appendonlydir").iterdir()):  # a folder as before the AOF
            f.unlink()
        (server.data_dir / "appendonlydir").rmdir()

        client = _start(server)  # loads the snapshot, then writes the append-only file from it
        assert client.get("kept") == b"from the snapshot"
        assert (server.data_dir / "appendonlydir").is_dir()
        client.set("after", "append-only")  # not in any snapshot: only the append-only file has it
        os.killpg(runtime.read_pid(server.pid_path), signal.SIGKILL)
        server.pid_path.unlink(missing_ok=True)

        client = _start(server)
        assert (client.get("kept"), client.get("after")) == (b"from the snapshot", b"append-only")
        assert b"appendonly yes" in server.config_path.read_bytes()
    finally:
        runtime.stop(server.pid_path)

"""``up`` / ``down`` / ``status`` over the four native servers.

Idempotent by design: a service whose pidfile names a live process of ours is left as it is; a
port already answering health checks for a server we did not start (a ``docker compose`` stack,
a system Redis) is used as it is and never stopped. ``up`` returns the names it started, so a
caller (the test fixture) can stop exactly those.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from mlrec.core.log import summary
from mlrec.core.paths import Paths
from mlrec.core.settings import Settings
from mlrec_runtime import runtime
from mlrec_runtime.base import Service, progress
from mlrec_runtime.elasticsearch_server import ElasticsearchServer
from mlrec_runtime.feast_server import FeastPushServer, FeastServer
from mlrec_runtime.redis_server import RedisReplica, RedisServer
from mlrec_runtime.runtime import ServiceError, StartError
from mlrec_runtime.triton_server import TritonServer

log = logging.getLogger(__name__)

_SINGLE: dict[str, Callable[[Settings, Paths | None], Service]] = {
    "redis": RedisServer,
    "elasticsearch": ElasticsearchServer,
    "feast": FeastServer,
    "feast-push": FeastPushServer,
    "triton": TritonServer,
}
SERVICE_NAMES = tuple(_SINGLE)  # the single profile's, in start order


def _service_classes(settings: Settings) -> dict[str, Callable[[Settings, Paths | None], Service]]:
    """name -> constructor of each service of ``settings.profile``, in start order.

    The cluster profile: Redis and its replica, three Elasticsearch nodes of one cluster (instead of the
    single node), two feature servers (plus the push server) and two Triton servers."""
    if settings.profile != "cluster":
        return _SINGLE
    classes: dict[str, Callable[[Settings, Paths | None], Service]] = {"redis": RedisServer}
    classes["redis-replica"] = RedisReplica
    for node in range(settings.nodes("elasticsearch")):
        classes[f"elasticsearch-{node + 1}"] = partial(ElasticsearchServer, node=node)
    for node in range(settings.nodes("feast")):
        name = f"feast-{node + 1}" if node else "feast"
        classes[name] = partial(FeastServer, port=settings.feast_node_port(node), name=name)
    classes["feast-push"] = FeastPushServer
    for node in range(settings.nodes("triton")):
        classes[f"triton-{node + 1}" if node else "triton"] = partial(TritonServer, node=node)
    return classes


def service_names(settings: Settings) -> tuple[str, ...]:
    """Every service of ``settings.profile``, in start order."""
    return tuple(_service_classes(settings))


def make_services(settings: Settings, names: Iterable[str] | None = None, paths: Paths | None = None) -> list[Service]:
    """Service objects for ``names`` (all of the profile's by default), in start order."""
    classes = _service_classes(settings)
    names = list(names or classes)
    if not settings.feast_push_port or settings.feast_push_port == settings.feast_port:
        names = [n for n in names if n != "feast-push"]  # the worker pushes to the one feature server
    unknown = sorted(set(names) - set(classes))
    if unknown:
        raise ValueError(f"unknown service(s) {unknown} in the {settings.profile} profile: choose from {list(classes)}")
    return [build(settings, paths) for name, build in classes.items() if name in names]


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: str  # running (ours) | external (not started by us) | starting | stopped
    version: str | None
    ports: dict[str, int]
    pid: int | None
    log: str

    def line(self) -> str:
        ports = " ".join(f"{k}={v}" for k, v in self.ports.items())
        pid = f" pid={self.pid}" if self.pid else ""
        return f"{self.name:<16} {self.state:<9} version={self.version or '-'} {ports}{pid} log={self.log}"


def service_status(service: Service) -> ServiceStatus:
    pid = runtime.read_pid(service.pid_path)
    healthy = service.healthy()
    state = ("running" if healthy else "starting") if pid is not None else ("external" if healthy else "stopped")
    return ServiceStatus(
        service.name, state, service.version() if healthy else None, service.ports, pid, str(service.log_path)
    )


def start_service(service: Service) -> bool:
    """Start ``service`` unless it already runs (ours or someone else's); True if this call launched it.

    Does not wait for health: see :func:`wait_service`.
    """
    if runtime.read_pid(service.pid_path) is not None:
        return False
    if service.healthy():
        progress(service.name, f"already served on port {service.port} by a process we did not start; using it")
        return False
    if runtime.port_open(service.settings.host, service.port):
        raise StartError(
            f"{service.name}: port {service.port} on {service.settings.host} is taken by another "
            f"program that is not a healthy {service.name}; stop it or choose another port "
            f"(see docs/services.md for the MLREC_*_PORT variables)"
        )
    service.dir.mkdir(parents=True, exist_ok=True)
    service.prepare()
    runtime.start(service.process())
    return True


def wait_service(service: Service) -> None:
    """Wait until ``service`` answers its health probe; raise :class:`StartError` with its log tail."""
    if runtime.read_pid(service.pid_path) is not None:
        runtime.wait_healthy(service.name, service.healthy, service.pid_path, service.log_path, service.start_timeout_s)
        service.ready()
    elif not service.healthy():
        raise StartError(f"{service.name} is not healthy on port {service.port}; see {service.log_path}")


def up(settings: Settings | None = None, names: Iterable[str] | None = None, paths: Paths | None = None) -> list[str]:
    """Install what is missing, start what is not running, wait for health; returns names started.

    Installs run in parallel (they are downloads and pip resolves); starts are launched together
    and then awaited, so the slowest server (Elasticsearch) sets the pace.
    """
    settings = settings or Settings.from_env()
    t0 = time.perf_counter()
    services = make_services(settings, names, paths)
    missing = [s for s in services if not s.is_installed()]
    if missing:
        with ThreadPoolExecutor(max_workers=len(missing)) as pool:
            for future in [pool.submit(s.install) for s in missing]:
                future.result()
    started = [s for s in services if start_service(s)]
    try:
        for service in services:
            wait_service(service)
    except ServiceError:
        for service in started:  # do not leave half a stack behind
            runtime.stop(service.pid_path)
        raise
    summary(
        "services-up",
        None,
        started=",".join(s.name for s in started) or "none",
        installed=",".join(s.name for s in missing) or "none",
        seconds=round(time.perf_counter() - t0, 1),
    )
    return [s.name for s in started]


def down(settings: Settings | None = None, names: Iterable[str] | None = None, paths: Paths | None = None) -> list[str]:
    """Stop the services we started (by pidfile); anything else is left alone. Returns names stopped."""
    settings = settings or Settings.from_env()
    stopped = [s.name for s in reversed(make_services(settings, names, paths)) if runtime.stop(s.pid_path)]
    summary("services-down", None, stopped=",".join(stopped) or "none")
    return stopped


def status(
    settings: Settings | None = None, names: Iterable[str] | None = None, paths: Paths | None = None
) -> list[ServiceStatus]:
    settings = settings or Settings.from_env()
    return [service_status(s) for s in make_services(settings, names, paths)]


def restart(settings: Settings | None = None, names: Iterable[str] = ("feast",), paths: Paths | None = None) -> None:
    """Stop (if ours) and start again, e.g. feast right after a loader's ``apply``."""
    settings = settings or Settings.from_env()
    down(settings, names, paths)
    up(settings, names, paths)

"""What every native server looks like to the manager, plus the install helpers they share.

A :class:`Service` knows how to install itself (once), prepare its config, describe its process
and answer a health probe. The manager (``mlrec_runtime.manager``) does the rest: idempotent
``up``, ``down`` of only what we started, and ``status``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from pathlib import Path

from mlrec.core.io import write_json
from mlrec.core.paths import Paths
from mlrec.core.settings import Settings
from mlrec_runtime.runtime import InstallError, ProcessSpec, run_checked


def progress(name: str, message: str) -> None:
    """One progress line for a long install step (installs are rare and slow: say so)."""
    print(f"[services] {name}: {message}", flush=True)


def http_get_json(url: str, timeout_s: float = 2.0, auth: tuple[str, str] | None = None) -> dict | None:
    """GET ``url`` and decode JSON; None on any connection or HTTP error (a probe, not a client)."""
    request = urllib.request.Request(url)
    if auth is not None:
        import base64

        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            body = resp.read()
    except (urllib.error.URLError, OSError, ValueError):
        return None
    try:
        return json.loads(body) if body else {}
    except json.JSONDecodeError:
        return {}


def apt_install(name: str, packages: list[str]) -> None:
    """``apt-get install`` Debian packages; only root can, so others get the exact command to run."""
    if os.geteuid() != 0:
        raise InstallError(
            f"{name}: needs Debian packages {' '.join(packages)}; run "
            f"`sudo apt-get update && sudo apt-get install -y {' '.join(packages)}` and retry"
        )
    progress(name, f"apt-get install {' '.join(packages)}")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    try:
        run_checked(["apt-get", "install", "-y", "-q", *packages], f"{name} install", env=env)
    except InstallError:  # a fresh machine has no package lists yet
        run_checked(["apt-get", "update", "-q"], f"{name} install", env=env)
        run_checked(["apt-get", "install", "-y", "-q", *packages], f"{name} install", env=env)


def venv_ready(venv: Path, requirements: list[str]) -> bool:
    """True if :func:`ensure_venv` already installed exactly ``requirements`` into ``venv``."""
    marker = venv / ".mlrec-requirements.json"
    try:
        return (venv / "bin" / "python").exists() and json.loads(marker.read_text()) == requirements
    except (OSError, json.JSONDecodeError):
        return False


def ensure_venv(name: str, venv: Path, requirements: list[str]) -> Path:
    """Create ``venv`` with exactly ``requirements`` (once); returns its python.

    Why a marker file: pip resolves for tens of seconds even when nothing changes, while a
    marker naming the requirements makes a warm ``up`` instant and re-installs when pins change.
    """
    python = venv / "bin" / "python"
    if venv_ready(venv, requirements):
        return python
    progress(name, f"creating venv {venv} with {' '.join(requirements)} (first time, about a minute)")
    if not python.exists():
        run_checked([sys.executable, "-m", "venv", str(venv)], f"{name} venv")
    run_checked(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements], f"{name} pip install"
    )
    write_json(venv / ".mlrec-requirements.json", requirements)  # last: marks the venv as complete
    return python


def venv_site_packages(venv: Path) -> Path:
    """``lib/pythonX.Y/site-packages`` of a venv made by :func:`ensure_venv` (same Python as ours)."""
    return venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def which(program: str) -> str | None:
    return shutil.which(program) or next(
        (str(p) for p in (Path("/usr/sbin") / program, Path("/usr/bin") / program) if p.exists()), None
    )


class Service(ABC):
    """One native server under ``<runtime_dir>/<name>/`` (config, data, pidfile, log)."""

    name: str = ""
    start_timeout_s: float = 60.0

    def __init__(self, settings: Settings, paths: Paths | None = None) -> None:
        self.settings = settings
        self.paths = paths or Paths.from_env()

    @property
    def dir(self) -> Path:
        return self.settings.runtime_dir / self.name

    @property
    def pid_path(self) -> Path:
        return self.dir / f"{self.name}.pid"

    @property
    def log_path(self) -> Path:
        return self.dir / f"{self.name}.log"

    @property
    @abstractmethod
    def port(self) -> int:
        """The port whose health decides whether the service is up."""

    @property
    def ports(self) -> dict[str, int]:
        return {"port": self.port}

    @abstractmethod
    def is_installed(self) -> bool: ...

    @abstractmethod
    def install(self) -> None:
        """Fetch binaries / create venvs; runs only when :meth:`is_installed` is False."""

    def prepare(self) -> None:  # noqa: B027 - an optional hook: most services need no preparation
        """Write config files and create data folders before each start."""

    def ready(self) -> None:  # noqa: B027 - an optional hook: most services need nothing after start
        """Run once the server this runtime started answers its health probe (e.g. a data migration)."""

    @abstractmethod
    def process(self) -> ProcessSpec: ...

    @abstractmethod
    def healthy(self) -> bool: ...

    @abstractmethod
    def version(self) -> str | None:
        """The running server's version as it reports it (None if it does not answer)."""

"""Triton Inference Server: the real ``tritonserver`` binary from the PyPI wheel ``nvidia-pytriton``.

Why this wheel: it ships Triton 2.51 (the same server as the NGC ``24.10-py3`` image used by
``docker-compose.yml``) with the Python backend but no ONNX Runtime backend, so natively a model
is served by a generic ``model.py`` that runs the ONNX file with onnxruntime
(``mlrec.loaders.triton_repo`` writes both repository flavours from one ``model.onnx``).

What the binary needs, measured: a ``--backend-directory`` holding the wheel's
``backends/python/*`` plus the ``triton_python_backend_stub`` built for our Python version,
``LD_LIBRARY_PATH`` = the wheel's ``nvidia_pytriton.libs``, and ``PYTHONPATH`` = the venv's
site-packages. The stub links the system ``libpython3.X`` (Debian's, installed if missing) and
runs it in *isolated* mode, which ignores ``PYTHONPATH``; the generic ``model.py`` therefore adds
``PYTHONPATH`` to ``sys.path`` itself before importing numpy<2 and onnxruntime. Models load in explicit mode (all
existing ones at start), so a loader can ``load_model`` a new version without a restart.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from mlrec.core.paths import Paths
from mlrec.core.settings import Settings
from mlrec_runtime.base import Service, apt_install, ensure_venv, http_get_json, venv_ready, venv_site_packages
from mlrec_runtime.runtime import InstallError, ProcessSpec

PYTRITON_VERSION = "0.7.0"
TRITON_VERSION = "2.51.0"  # the server inside nvidia-pytriton 0.7.0 (NGC release 24.10)
TRITON_IMAGE_TAG = "24.10-py3"
TRITON_REQUIREMENTS = [f"nvidia-pytriton=={PYTRITON_VERSION}", "numpy<2", "onnxruntime==1.32.0"]
_INSTALL_LOCK = threading.Lock()  # the cluster profile's servers share one venv and backend folder


def native_model_repository(triton_dir: Path) -> Path:
    """The Python-backend model repository the native server serves (under the data dir)."""
    return triton_dir / "model_repository_native"


def docker_model_repository(triton_dir: Path) -> Path:
    """The onnxruntime model repository the docker-compose ``triton`` service mounts."""
    return triton_dir / "model_repository"


class TritonServer(Service):
    """Triton server ``node`` (0-based; the cluster profile runs two, ``triton`` and ``triton-2``).

    Every server serves the same model repository; a loader loads the model on each."""

    name = "triton"
    start_timeout_s = 90.0

    def __init__(self, settings: Settings, paths: Paths | None = None, node: int = 0) -> None:
        super().__init__(settings, paths)
        self.node = node
        if node:
            self.name = f"triton-{node + 1}"

    @property
    def venv(self) -> Path:
        return self.settings.runtime_dir / "venvs" / "triton"

    @property
    def wheel_dir(self) -> Path:
        return venv_site_packages(self.venv)

    @property
    def binary(self) -> Path:
        return self.wheel_dir / "pytriton" / "tritonserver" / "bin" / "tritonserver"

    @property
    def backend_dir(self) -> Path:
        return self.settings.runtime_dir / "triton" / "backends"

    @property
    def model_repository(self) -> Path:
        return native_model_repository(self.paths.triton_dir)

    @property
    def port(self) -> int:
        return self.ports["http"]

    @property
    def ports(self) -> dict[str, int]:
        return self.settings.triton_node_ports(self.node)

    def is_installed(self) -> bool:
        return venv_ready(self.venv, TRITON_REQUIREMENTS) and (self.backend_dir / "python").is_dir()

    def install(self) -> None:
        with _INSTALL_LOCK:
            if self.is_installed():  # another server of the cluster profile installed it meanwhile
                return
            ensure_venv("triton", self.venv, TRITON_REQUIREMENTS)
            self._assemble_backends()

    def _assemble_backends(self) -> None:
        """``backends/python/`` = the wheel's Python backend + the stub for this Python version."""
        server_dir = self.wheel_dir / "pytriton" / "tritonserver"
        pyver = f"{sys.version_info.major}.{sys.version_info.minor}"
        stub = server_dir / "python_backend_stubs" / pyver / "triton_python_backend_stub"
        if not stub.is_file():
            raise InstallError(
                f"triton: nvidia-pytriton {PYTRITON_VERSION} has no Python-backend stub for "
                f"Python {pyver} (looked for {stub}); use Python 3.8-3.13"
            )
        target = self.backend_dir / "python"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for item in (server_dir / "backends" / "python").iterdir():
            if item.is_file():
                shutil.copy2(item, target / item.name)
        shutil.copy2(stub, target / stub.name)
        self._ensure_libpython(target / stub.name)

    def _ensure_libpython(self, stub: Path) -> None:
        """The stub needs the system's shared libpython of our version (Debian ``libpython3.X``)."""
        out = subprocess.run(
            ["ldd", str(stub)],
            capture_output=True,
            text=True,
            env={"LD_LIBRARY_PATH": str(self.wheel_dir / "nvidia_pytriton.libs")},
        ).stdout
        if re.search(r"libpython\S+ => not found", out):
            apt_install(self.name, [f"libpython{sys.version_info.major}.{sys.version_info.minor}"])

    def prepare(self) -> None:
        self.model_repository.mkdir(parents=True, exist_ok=True)

    def process(self) -> ProcessSpec:
        s, ports = self.settings, self.ports
        argv = [
            str(self.binary),
            f"--model-repository={self.model_repository}",
            f"--backend-directory={self.backend_dir}",
            "--model-control-mode=explicit",
            "--load-model=*",  # whatever models exist at start; later ones via load_model
            f"--http-address={s.host}",
            f"--http-port={ports['http']}",
            f"--grpc-address={s.host}",
            f"--grpc-port={ports['grpc']}",
            f"--metrics-address={s.host}",
            f"--metrics-port={ports['metrics']}",
            "--allow-gpu-metrics=false",
            "--exit-on-error=false",  # one broken model must not take the server (and the others) down
            # server readiness = the server is up; a model's readiness is asked per model. With the
            # default (strict), one unloaded or failed model marks the whole server not ready.
            "--strict-readiness=false",
            "--log-verbose=0",
        ]
        env = {"LD_LIBRARY_PATH": str(self.wheel_dir / "nvidia_pytriton.libs"), "PYTHONPATH": str(self.wheel_dir)}
        return ProcessSpec(self.name, argv, self.log_path, self.pid_path, env=env)

    @property
    def http_url(self) -> str:
        return f"http://{self.settings.host}:{self.port}"

    def healthy(self) -> bool:
        return http_get_json(f"{self.http_url}/v2/health/ready") is not None

    def version(self) -> str | None:
        meta = http_get_json(f"{self.http_url}/v2")
        return meta.get("version") if meta else None

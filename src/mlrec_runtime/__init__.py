"""The four online servers (Redis, Elasticsearch 8, Feast, Triton), installed and run natively.

``python -m mlrec_runtime up|down|status [names...]`` (``make services-up`` etc.); state, data,
pids and logs live under ``Settings.runtime_dir`` (``.runtime/``). ``docker-compose.yml`` runs the
same versions on the same ports for users with Docker. See docs/services.md.
"""

from mlrec_runtime.feast_server import FEATURE_REPO, FeastCommandError, run_feast
from mlrec_runtime.manager import SERVICE_NAMES, ServiceStatus, down, restart, status, up
from mlrec_runtime.runtime import InstallError, ServiceError, StartError

__all__ = [
    "FEATURE_REPO",
    "SERVICE_NAMES",
    "FeastCommandError",
    "InstallError",
    "ServiceError",
    "ServiceStatus",
    "StartError",
    "down",
    "restart",
    "run_feast",
    "status",
    "up",
]

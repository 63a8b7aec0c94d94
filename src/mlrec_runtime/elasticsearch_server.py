"""Elasticsearch 8: the distribution Elastic publishes on Maven Central, on the machine's Java 17.

Why this artifact: ``org.elasticsearch.distribution.integ-test-zip:elasticsearch`` is the only
Elasticsearch 8 server package reachable from a package registry. It is the real server (Lucene
HNSW ``dense_vector`` kNN, ``terms`` queries, aliases, bulk) with the ``x-pack-security`` module,
so the ``elastic`` password works as in the official image. It has no bundled JDK and only four
modules (apm, transport-netty4, x-pack-core, x-pack-security): there is no ``GET /`` (so
``Elasticsearch.info()`` and ``ping()`` fail with 405 - probe ``cluster.health()`` instead), no
Painless scripting and no ``analysis-common`` analyzers. See docs/services.md.

Elasticsearch refuses to run as root, so as root we run it as the system user ``mlrec-es``.

The cluster profile runs three nodes of one cluster (``elasticsearch-1..3``) from the same unpacked
distribution, each with its own config, data and ports (:meth:`Settings.es_node_ports`), bound to
loopback like the single node, so Elasticsearch stays in development mode (no production bootstrap checks).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import stat
import subprocess
import threading
import zipfile
from pathlib import Path

from mlrec.core.paths import Paths
from mlrec.core.settings import Settings
from mlrec_runtime.base import Service, apt_install, http_get_json, progress, which
from mlrec_runtime.runtime import InstallError, ProcessSpec, run_checked

# The latest 8.x published as integ-test-zip that runs on Java 17 (ES 9 needs Java 21).
ES_VERSION = "8.19.21"
ES_ARTIFACT = f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{ES_VERSION}:zip"
ES_HEAP = "512m"
ES_USER = "mlrec-es"
MIN_JAVA = 17
CLUSTER_NAME = "mlrec-cluster"
_INSTALL_LOCK = threading.Lock()  # the cluster's nodes share one unpacked distribution: unpack it once


def java_home() -> Path:
    """``$ES_JAVA_HOME``, else the JDK of ``java`` on PATH; it must be Java >= 17."""
    if os.environ.get("ES_JAVA_HOME"):
        home = Path(os.environ["ES_JAVA_HOME"])
    else:
        java = shutil.which("java")
        if java is None:
            raise InstallError(
                f"elasticsearch: no `java` on PATH; install Java {MIN_JAVA}+ "
                "(apt-get install openjdk-17-jre-headless) or set ES_JAVA_HOME"
            )
        home = Path(java).resolve().parents[1]
    out = subprocess.run([str(home / "bin" / "java"), "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)', out)
    if not match or int(match.group(1)) < MIN_JAVA:
        raise InstallError(
            f"elasticsearch: {home} is not Java {MIN_JAVA}+ ({out.strip()!r}); set ES_JAVA_HOME to a Java 17+ home"
        )
    return home


def es_auth(password: str, user: str = "elastic") -> tuple[str, str] | None:
    return (user, password) if password else None


def node_name(node: int) -> str:
    """Elasticsearch's ``node.name`` of the cluster profile's node ``node`` (0-based): es-1, es-2, ..."""
    return f"es-{node + 1}"


class ElasticsearchServer(Service):
    """The single node (``node`` None) or node ``node`` (0-based) of the cluster profile."""

    name = "elasticsearch"
    start_timeout_s = 120.0

    def __init__(self, settings: Settings, paths: Paths | None = None, node: int | None = None) -> None:
        super().__init__(settings, paths)
        self.node = node
        if node is not None:
            self.name = f"elasticsearch-{node + 1}"

    @property
    def port(self) -> int:
        return self.settings.es_port if self.node is None else self.settings.es_node_ports(self.node)[0]

    @property
    def url(self) -> str:
        return f"{self.settings.es_scheme}://{self.settings.host}:{self.port}"

    @property
    def home(self) -> Path:
        """The unpacked distribution, shared by every node (each has its own config and data)."""
        return self.settings.runtime_dir / "elasticsearch" / f"elasticsearch-{ES_VERSION}"

    @property
    def conf_dir(self) -> Path:
        return self.dir / "config"

    @property
    def download_dir(self) -> Path:
        return self.settings.runtime_dir / "downloads"

    def is_installed(self) -> bool:
        return (self.home / "bin" / "elasticsearch").is_file() and self.conf_dir.is_dir()

    def install(self) -> None:
        with _INSTALL_LOCK:
            if not (self.home / "bin" / "elasticsearch").is_file():
                self._install_distribution()
            if not self.conf_dir.is_dir():
                shutil.copytree(self.home / "config", self.conf_dir)

    def _install_distribution(self) -> None:
        if shutil.which("java") is None and not os.environ.get("ES_JAVA_HOME"):
            apt_install(self.name, ["openjdk-17-jre-headless"])
        java_home()
        if which("mvn") is None:
            apt_install(self.name, ["maven"])
        zip_path = self.download_dir / f"elasticsearch-{ES_VERSION}.zip"
        if not zip_path.is_file():
            progress(self.name, f"mvn dependency:copy {ES_ARTIFACT} (~100 MB, cached in ~/.m2)")
            self.download_dir.mkdir(parents=True, exist_ok=True)
            run_checked(
                [
                    "mvn",
                    "-B",
                    "-q",
                    "dependency:copy",
                    f"-Dartifact={ES_ARTIFACT}",
                    f"-DoutputDirectory={self.download_dir}",
                ],
                "elasticsearch download",
                cwd=self.download_dir,
            )  # a folder without pom.xml: mvn runs the goal standalone
        progress(self.name, f"unpacking {zip_path.name}")
        self.home.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.home, ignore_errors=True)
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(self.home.parent)
        for script in (self.home / "bin").iterdir():  # zipfile drops the executable bits
            script.chmod(0o755)

    @property
    def security(self) -> bool:
        """Security (the ``elastic`` password) is on exactly when ELASTIC_PASSWORD is set."""
        return bool(self.settings.es_password)

    def prepare(self) -> None:
        for sub in ("data", "logs", "tmp"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "elasticsearch.yml").write_text(
            "# written by mlrec_runtime.elasticsearch_server on every start; edit there, not here\n"
            + self._discovery()
            + f"network.host: {self.settings.host}\n"
            f"http.port: {self.port}\n"
            f"path.data: {self.dir / 'data'}\n"
            f"path.logs: {self.dir / 'logs'}\n"
            f"xpack.security.enabled: {str(self.security).lower()}\n"
            "xpack.security.http.ssl.enabled: false\n"  # loopback only: plain HTTP like the compose file
            "xpack.security.transport.ssl.enabled: false\n"
            "action.destructive_requires_name: false\n"
        )
        if os.geteuid() == 0:
            self._chown_to_es_user()
        if self.security:
            self._set_bootstrap_password()

    def _discovery(self) -> str:
        """The single node forms no cluster; a cluster node finds the others on their transport ports
        and the three bootstrap the cluster together on its first start."""
        if self.node is None:
            return "cluster.name: mlrec\nnode.name: mlrec-node\ndiscovery.type: single-node\n"
        nodes = range(self.settings.nodes("elasticsearch"))
        seeds = ", ".join(f'"{self.settings.host}:{self.settings.es_node_ports(n)[1]}"' for n in nodes)
        return (
            f"cluster.name: {CLUSTER_NAME}\n"
            f"node.name: {node_name(self.node)}\n"
            f"transport.port: {self.settings.es_node_ports(self.node)[1]}\n"
            f"discovery.seed_hosts: [{seeds}]\n"
            f"cluster.initial_master_nodes: [{', '.join(node_name(n) for n in nodes)}]\n"
        )

    def _keystore(self, *args: str, stdin: str | None = None) -> None:
        env = {**os.environ, "ES_PATH_CONF": str(self.conf_dir), "ES_JAVA_HOME": str(java_home())}
        user = ES_USER if os.geteuid() == 0 else None  # the keystore must stay owned by the server's user
        proc = subprocess.run(
            [str(self.home / "bin" / "elasticsearch-keystore"), *args],
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            user=user,
            group=user,
        )
        if proc.returncode != 0:
            raise InstallError(f"elasticsearch: elasticsearch-keystore {args[0]} failed:\n{proc.stdout}{proc.stderr}")

    def _set_bootstrap_password(self) -> None:
        """The official image's mechanism: ``bootstrap.password`` in the keystore sets ``elastic``'s."""
        if not (self.conf_dir / "elasticsearch.keystore").is_file():
            self._keystore("create")
        self._keystore("add", "-x", "-f", "bootstrap.password", stdin=self.settings.es_password)

    def _chown_to_es_user(self) -> None:
        try:
            pw = pwd.getpwnam(ES_USER)
        except KeyError:
            run_checked(
                ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", ES_USER],
                "elasticsearch user",
            )
            pw = pwd.getpwnam(ES_USER)
        for root, dirs, files in os.walk(self.dir):
            for name in (*dirs, *files):
                os.lchown(os.path.join(root, name), pw.pw_uid, pw.pw_gid)
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self._allow_traversal()

    def _allow_traversal(self) -> None:
        """The server's user must be able to walk down to its folder: a checkout under a private
        folder (e.g. ``mktemp -d``, mode 0700) gets search permission (``o+x``, no listing) on
        each parent that lacks it."""
        for parent in self.dir.resolve().parents:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                os.chmod(parent, mode | stat.S_IXOTH)

    def process(self) -> ProcessSpec:
        env = {
            "ES_JAVA_HOME": str(java_home()),
            "ES_PATH_CONF": str(self.conf_dir),
            "ES_TMPDIR": str(self.dir / "tmp"),
            "ES_JAVA_OPTS": f"-Xms{ES_HEAP} -Xmx{ES_HEAP}",
        }
        return ProcessSpec(
            self.name,
            [str(self.home / "bin" / "elasticsearch")],
            self.log_path,
            self.pid_path,
            env=env,
            cwd=self.home,
            user=ES_USER if os.geteuid() == 0 else None,
        )

    def _health(self) -> dict | None:
        return http_get_json(f"{self.url}/_cluster/health", auth=es_auth(self.settings.es_password))

    def healthy(self) -> bool:
        """Answers with a green or yellow cluster; a cluster node's cluster must be the profile's
        (so a single node on the same port is never taken for node 1)."""
        health = self._health()
        if health is None or health.get("status") not in ("green", "yellow"):
            return False
        return self.node is None or health.get("cluster_name") == CLUSTER_NAME

    def version(self) -> str | None:
        nodes = http_get_json(
            f"{self.url}/_nodes/_local?filter_path=nodes.*.version", auth=es_auth(self.settings.es_password)
        )
        if not nodes or not nodes.get("nodes"):
            return None
        return next(iter(nodes["nodes"].values()))["version"]

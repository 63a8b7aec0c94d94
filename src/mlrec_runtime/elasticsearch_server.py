"""Elasticsearch 8: the distribution Elastic publishes on Maven Central, on the machine's Java 17.

Why this artifact: ``org.elasticsearch.distribution.integ-test-zip:elasticsearch`` is the only
Elasticsearch 8 server package reachable from a package registry. It is the real server (Lucene
HNSW ``dense_vector`` kNN, ``terms`` queries, aliases, bulk) with the ``x-pack-security`` module,
so the ``elastic`` password works as in the official image. It has no bundled JDK and only four
modules (apm, transport-netty4, x-pack-core, x-pack-security): there is no ``GET /`` (so
``Elasticsearch.info()`` and ``ping()`` fail with 405 - probe ``cluster.health()`` instead), no
Painless scripting and no ``analysis-common`` analyzers. See docs/services.md.

Elasticsearch refuses to run as root, so as root we run it as the system user ``mlrec-es``.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

from mlrec_runtime.base import Service, apt_install, http_get_json, progress, which
from mlrec_runtime.runtime import InstallError, ProcessSpec, run_checked

# The latest 8.x published as integ-test-zip that runs on Java 17 (ES 9 needs Java 21).
ES_VERSION = "8.19.21"
ES_ARTIFACT = f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{ES_VERSION}:zip"
ES_HEAP = "512m"
ES_USER = "mlrec-es"
MIN_JAVA = 17


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


class ElasticsearchServer(Service):
    name = "elasticsearch"
    start_timeout_s = 120.0

    @property
    def port(self) -> int:
        return self.settings.es_port

    @property
    def home(self) -> Path:
        return self.dir / f"elasticsearch-{ES_VERSION}"

    @property
    def conf_dir(self) -> Path:
        return self.dir / "config"

    @property
    def download_dir(self) -> Path:
        return self.settings.runtime_dir / "downloads"

    def is_installed(self) -> bool:
        return (self.home / "bin" / "elasticsearch").is_file() and self.conf_dir.is_dir()

    def install(self) -> None:
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
        self.dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.home, ignore_errors=True)
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(self.dir)
        for script in (self.home / "bin").iterdir():  # zipfile drops the executable bits
            script.chmod(0o755)
        shutil.rmtree(self.conf_dir, ignore_errors=True)
        shutil.copytree(self.home / "config", self.conf_dir)

    @property
    def security(self) -> bool:
        """Security (the ``elastic`` password) is on exactly when ELASTIC_PASSWORD is set."""
        return bool(self.settings.es_password)

    def prepare(self) -> None:
        for sub in ("data", "logs", "tmp"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "elasticsearch.yml").write_text(
            "# written by mlrec_runtime.elasticsearch_server on every start; edit there, not here\n"
            "cluster.name: mlrec\n"
            "node.name: mlrec-node\n"
            "discovery.type: single-node\n"  # no cluster formation, no production bootstrap checks
            f"network.host: {self.settings.host}\n"
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
        return http_get_json(f"{self.settings.es_url}/_cluster/health", auth=es_auth(self.settings.es_password))

    def healthy(self) -> bool:
        health = self._health()
        return health is not None and health.get("status") in ("green", "yellow")

    def version(self) -> str | None:
        nodes = http_get_json(
            f"{self.settings.es_url}/_nodes/_local?filter_path=nodes.*.version", auth=es_auth(self.settings.es_password)
        )
        if not nodes or not nodes.get("nodes"):
            return None
        return next(iter(nodes["nodes"].values()))["version"]

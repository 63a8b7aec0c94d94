"""Where the prep steps run: numpy in this process (the default), or the SQL of :mod:`mlrec.offline.prep_sql`
on DuckDB (one machine, out of core) or Apache Spark (``local[*]`` here, any cluster under ``spark-submit``).

An SQL engine reads and writes parquet only. Every table it writes is consolidated into one parquet file,
cast to the artifact's dtypes (Spark has no unsigned types), in its part files' order, so the later
steps read the same artifacts whichever engine wrote them.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mlrec.core import io
from mlrec.core.errors import MlrecError

if TYPE_CHECKING:
    import pandas as pd

    from mlrec.core.settings import Settings

ENGINES = ("numpy", "duckdb", "spark")


class EngineError(MlrecError, RuntimeError):
    """An engine cannot start (its package missing, no Java for Spark) or was named wrong."""


class SqlEngine(Protocol):
    name: str

    def register_parquet(self, view: str, path: Path) -> None: ...

    def register_frame(self, view: str, frame: pd.DataFrame) -> None: ...

    def materialize(self, view: str, sql: str) -> None: ...

    def rows(self, sql: str) -> list[tuple]: ...

    def write(self, sql: str, path: Path, dtypes: Mapping[str, str]) -> int: ...

    def close(self) -> None: ...


def check_engine(name: str) -> str:
    if name not in ENGINES:
        raise EngineError(f"unknown engine {name!r}", f"use one of {', '.join(ENGINES)} (--engine or MLREC_ENGINE)")
    return name


def open_engine(name: str, staging: Path, settings: Settings | None = None) -> SqlEngine:
    """A started SQL engine; ``staging`` is a scratch folder for the small tables it is handed."""
    from mlrec.core.settings import Settings

    settings = settings or Settings.from_env()
    if check_engine(name) == "duckdb":
        return DuckDBEngine(staging, settings.duckdb_memory)
    if name == "spark":
        return SparkEngine(staging, settings)
    raise EngineError("the numpy engine runs in process, not as SQL", "call the numpy step functions instead")


class DuckDBEngine:
    """DuckDB in this process: the SQL path without a JVM (and what the fast equality tests run)."""

    name = "duckdb"

    def __init__(self, staging: Path, memory_limit: str = "") -> None:
        import duckdb

        self.staging = Path(staging)
        self.con = duckdb.connect()
        self.con.execute("SET preserve_insertion_order = true")
        self.con.execute(f"SET temp_directory = '{self.staging / 'spill'}'")  # not ./.tmp in the working dir
        if memory_limit:
            try:
                self.con.execute(f"SET memory_limit = '{memory_limit}'")
            except duckdb.Error as exc:
                raise EngineError(
                    f"MLREC_DUCKDB_MEMORY={memory_limit!r} is not a DuckDB memory limit ({exc})",
                    "set it like 2GB or 512MB, or unset it",
                ) from exc

    def register_parquet(self, view: str, path: Path) -> None:
        self.con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM read_parquet('{path}')")

    def register_frame(self, view: str, frame: pd.DataFrame) -> None:
        self.con.register(view, frame)  # DuckDB scans the frame in place, no copy

    def materialize(self, view: str, sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {view} AS {sql}")

    def rows(self, sql: str) -> list[tuple]:
        return self.con.execute(sql).fetchall()

    def write(self, sql: str, path: Path, dtypes: Mapping[str, str]) -> int:
        with io.scratch_dir(path) as parts:
            self.con.execute(f"COPY ({sql}) TO '{parts / 'part-00000.parquet'}' (FORMAT parquet)")
            return io.consolidate_parquet(sorted(parts.glob("part-*.parquet")), path, dtypes)

    def close(self) -> None:
        self.con.close()


class SparkEngine:
    """Spark SQL through PySpark. Started here it is ``local[*]`` (``MLREC_SPARK_MASTER`` to change);
    under ``spark-submit`` the master and the resources are the ones given there."""

    name = "spark"

    def __init__(self, staging: Path, settings: Settings) -> None:
        try:
            with _quiet_pyspark():
                from pyspark.sql import SparkSession
        except ImportError as exc:
            raise EngineError(
                "PySpark is not installed", "run `make offline ENGINE=spark` or `pip install -e .[spark]`"
            ) from exc
        self.staging = Path(staging)
        builder = SparkSession.builder.appName("mlrec-prep")
        if "PYSPARK_GATEWAY_PORT" not in os.environ:  # not under spark-submit: this process starts the JVM
            builder = builder.master(settings.spark_master).config("spark.driver.memory", settings.spark_memory)
            builder = builder.config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={self._log4j()}")
            if settings.spark_master.startswith("local"):
                os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # local mode: no "resolves to loopback" warning
        # Spark's own stage progress bar stands in for tqdm: shown on a terminal unless MLREC_PROGRESS=0
        progress = settings.progress and sys.stderr.isatty()
        conf = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": str(progress).lower()}
        if settings.spark_partitions:  # exactly this many: adaptive execution would merge small ones
            conf["spark.sql.shuffle.partitions"] = str(settings.spark_partitions)
            conf["spark.sql.adaptive.coalescePartitions.enabled"] = "false"
        for key, value in conf.items():
            builder = builder.config(key, value)
        try:
            with _quiet_pyspark():
                self.spark = builder.getOrCreate()
        except Exception as exc:  # py4j / Java start-up errors come in several types
            raise EngineError(
                f"Spark did not start ({exc})", "Spark needs Java 17 or 21 on PATH or JAVA_HOME (`java -version`)"
            ) from exc
        self.spark.sparkContext.setLogLevel("ERROR")

    def _log4j(self) -> Path:
        """Spark's own logging at ERROR (its default profile prints start-up notices at WARN and INFO)."""
        path = self.staging / "log4j2.properties"
        path.write_text(
            "rootLogger.level = error\nrootLogger.appenderRef.stderr.ref = console\n"
            "appender.console.type = Console\nappender.console.name = console\nappender.console.target = SYSTEM_ERR\n"
            "appender.console.layout.type = PatternLayout\nappender.console.layout.pattern = spark %p %c{1}: %m%n\n"
        )
        return path

    def register_parquet(self, view: str, path: Path) -> None:
        self.spark.read.parquet(Path(path).resolve().as_uri()).createOrReplaceTempView(view)

    def register_frame(self, view: str, frame: pd.DataFrame) -> None:
        # through a parquet file, not createDataFrame(pandas): no pandas/Spark type conversion, and on a
        # cluster the executors read it from the shared data folder instead of the driver's memory
        path = self.staging / f"{view}.parquet"
        io.write_parquet(frame, path)
        self.register_parquet(view, path)

    def materialize(self, view: str, sql: str) -> None:
        from pyspark import StorageLevel

        self.spark.sql(sql).persist(StorageLevel.MEMORY_AND_DISK).createOrReplaceTempView(view)

    def rows(self, sql: str) -> list[tuple]:
        return [tuple(row) for row in self.spark.sql(sql).collect()]

    def write(self, sql: str, path: Path, dtypes: Mapping[str, str]) -> int:
        # Spark writes one part file per partition of the sorted result, numbered in sort order
        with io.scratch_dir(path) as parts:
            self.spark.sql(sql).write.mode("overwrite").parquet(parts.resolve().as_uri())
            return io.consolidate_parquet(sorted(parts.glob("part-*.parquet")), path, dtypes)

    def close(self) -> None:
        self.spark.stop()  # drops the persisted tables with the session


class _quiet_pyspark(warnings.catch_warnings):
    """PySpark 4.3 warns that it "does not yet fully support pandas >= 3.0.0"; no pandas frame crosses into
    Spark here (every table goes through parquet), so that warning is not ours to act on."""

    def __enter__(self) -> None:
        super().__enter__()
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)

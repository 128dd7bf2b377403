"""The one way citylake gets a SparkSession with Delta Lake, whatever the deployment.

Embedded default: ``local[*]`` with the Delta jars from the set-up cache. Settings alone switch
to a cluster master (``spark://``, ``yarn``, ``k8s://``) or a Spark Connect server, and to an
``s3a://`` warehouse on MinIO or any S3.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import sys
import threading
from typing import TYPE_CHECKING

from citylake.jars import cached_jars, spark_artifacts
from citylake.settings import PROJECT_ROOT, Settings, get_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LOG4J_CONFIG = PROJECT_ROOT / "infra" / "spark" / "log4j2.properties"
DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}
# Fixed when a Spark starts (static, or the driver's own): a Connect server gets them at its
# start (citylake/spark_connect.py), and its clients send only the rest.
SERVER_CONF = (
    "spark.sql.extensions",
    "spark.sql.warehouse.dir",
    "spark.sql.codegen.cache.",
    "spark.ui.",
    "spark.driver.",
    "spark.jars",
)


class JavaMissingError(RuntimeError):
    pass


def _require_java() -> None:
    if os.environ.get("JAVA_HOME") or shutil.which("java"):
        return
    raise JavaMissingError(
        "Spark needs Java 17 or newer and none was found: install a JDK "
        "(Debian: apt-get install openjdk-17-jdk-headless) or set JAVA_HOME."
    )


def spark_conf(settings: Settings) -> dict[str, str]:
    conf = {
        **DELTA_CONF,
        "spark.app.name": settings.spark.app_name,
        "spark.sql.session.timeZone": settings.timezone,
        # Small tables dominate: Delta's default of 50 snapshot partitions costs seconds each.
        "spark.databricks.delta.snapshotPartitions": "2",
        # Cached frames live for one build step: compressing them cost more CPU than it saved.
        "spark.sql.inMemoryColumnarStorage.compressed": "false",
        # A build runs hundreds of queries of a few shapes, day after day: with Spark's default
        # of 100 compiled classes they were compiled (and JIT-warmed) again and again. A warm
        # city-day rebuild's JVM used 179.3 s of CPU with room for 2,000, 211.6 s without (#4).
        "spark.sql.codegen.cache.maxEntries": "2000",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.driver.memory": settings.spark.driver_memory,
        # Derby metastore and spark-warehouse stay under ./var, never in the working dir.
        "spark.sql.warehouse.dir": str(settings.var_dir / "spark-warehouse"),
        # The throughput collector: a build is batch work on few cores, and G1's concurrent
        # marking cost more CPU (a one-day build used 8 % less CPU with it, benchmarks/pipeline.py).
        "spark.driver.extraJavaOptions": (
            f"-Dderby.system.home={settings.var_dir / 'derby'} "
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG} -XX:+UseParallelGC"
        ),
    }
    partitions = settings.spark.shuffle_partitions
    if partitions is None and settings.spark.master.startswith("local"):
        partitions = os.cpu_count() or 1
    if partitions is not None:
        conf["spark.sql.shuffle.partitions"] = str(partitions)
    if settings.spark.master.startswith("local") and not settings.spark.connect_url:
        # Embedded mode serves nobody else: the driver listens on loopback only.
        conf |= {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
    if settings.is_remote_warehouse:
        s3 = settings.s3
        conf |= {
            "spark.hadoop.fs.s3a.endpoint": s3.endpoint,
            "spark.hadoop.fs.s3a.access.key": s3.access_key,
            "spark.hadoop.fs.s3a.secret.key": s3.secret_key.get_secret_value(),
            "spark.hadoop.fs.s3a.path.style.access": str(s3.path_style).lower(),
            "spark.hadoop.fs.s3a.endpoint.region": s3.region,
            "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        }
    return conf | settings.spark.extra_conf


_STARTING = threading.Lock()


def start_in_background(settings: Settings | None = None) -> None:
    """Begin the process's SparkSession on a thread and return at once: the JVM starts (~8 s,
    in a process of its own) while the caller imports the pipelines (~7 s, Great Expectations
    most of it), instead of after them; measured 18.5 → 15.2 s to a first job. A start that
    fails here fails again, with its error, at the caller's own `get_spark`."""

    # Imported here, on the caller's thread: pyspark's modules import each other in cycles, and
    # two threads importing them at once can each find the other's module half-made (CI saw
    # "cannot import name '_dedup_names' from partially initialized module"). The pipelines
    # import these anyway, so this moves the ~0.3 s (Connect: ~1.5 s) earlier, not adds it.
    settings = settings or get_settings()
    remote = settings.spark.connect_url
    importlib.import_module("pyspark.sql." + ("connect.session" if remote else "classic.dataframe"))

    def start() -> None:
        with contextlib.suppress(Exception):  # reported by the caller's own get_spark
            get_spark(settings)

    threading.Thread(target=start, name="spark-start", daemon=True).start()


def get_spark(settings: Settings | None = None) -> SparkSession:
    """Return the process's SparkSession, creating it on first use (a JVM start costs ~10 s)."""
    settings = settings or get_settings()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    with _STARTING:  # one start at a time (the jars are fetched once): a second thread waits
        return _start(settings)


def _start(settings: Settings) -> SparkSession:
    from pyspark.sql import SparkSession

    _require_java()
    # The driver's Python must be the one running us, not whatever `python3` is on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    if settings.spark.connect_url:
        builder = builder.remote(settings.spark.connect_url)
    else:
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        jars = ",".join(str(p) for p in cached_jars(settings, spark_artifacts(settings)))
        builder = builder.master(settings.spark.master).config("spark.jars", jars)
    for key, value in spark_conf(settings).items():
        if settings.spark.connect_url and key.startswith(SERVER_CONF):
            continue
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if not settings.spark.connect_url:
        spark.sparkContext.setLogLevel("ERROR")
    return spark

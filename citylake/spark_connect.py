"""The Spark Connect server (with Delta) that `citylake up` runs for Airflow's tasks.

docs/decisions/spark-under-airflow.md chose one long-lived server over a JVM per task: every
task process connects to it by ``CITYLAKE_SPARK__CONNECT_URL`` (set in Airflow's environment,
`citylake.orchestrator.environment`) instead of starting Spark of its own. The server is
pyspark's own ``SparkConnectServer`` (its jar ships in pyspark) started by ``spark-submit`` with
the Delta jars from the set-up cache and citylake's `spark_conf` (Delta's SQL extension and
catalog, ``var/`` for the warehouse dir and Derby), bound to 127.0.0.1 and stopped by its pid.

Delta's own Connect plugin (the server half of the Python ``DeltaTable`` API over Connect) is
not published for Delta 4.4.0; the pipelines need none of it: Delta reads and writes, MERGE and
``REPLACE WHERE`` are DataFrame and SQL work, which the extension and catalog serve.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from citylake import processes
from citylake.jars import cached_jars, spark_artifacts
from citylake.processes import Service
from citylake.settings import PROJECT_ROOT, Settings, get_settings
from citylake.spark import _require_java, spark_conf

NAME = "spark-connect"
HOST = "127.0.0.1"
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


def url(settings: Settings) -> str:
    """Where Airflow's tasks find Spark: `spark.connect_url` if set, else this stack's server."""
    return settings.spark.connect_url or f"sc://{HOST}:{settings.spark.connect_port}"


def command(settings: Settings) -> list[str]:
    """spark-submit of the Connect server, configured like a local citylake session."""
    import pyspark

    conf = spark_conf(settings) | {
        "spark.app.name": "citylake-connect",
        "spark.connect.grpc.binding.address": HOST,
        "spark.connect.grpc.binding.port": str(settings.spark.connect_port),
        "spark.connect.session.manager.defaultSessionTimeout": (
            settings.spark.connect_session_timeout
        ),
    }
    if settings.spark.master.startswith("local"):
        # Serves this machine's tasks only: the driver's own ports stay on loopback too.
        conf |= {"spark.driver.host": HOST, "spark.driver.bindAddress": HOST}
    jars = ",".join(str(p) for p in cached_jars(settings, spark_artifacts(settings)))
    return [
        str(Path(pyspark.__file__).parent / "bin" / "spark-submit"),
        "--class",
        SERVER_CLASS,
        "--master",
        settings.spark.master,
        "--driver-memory",
        settings.spark.driver_memory,
        "--jars",
        jars,
        *(arg for key, value in conf.items() for arg in ("--conf", f"{key}={value}")),
        "spark-internal",
    ]


def start(settings: Settings | None = None) -> Service:
    """Start the server unless it runs, and wait until it accepts connections."""
    settings = settings or get_settings()
    port = settings.spark.connect_port
    svc = processes.service(NAME, settings)
    if not svc.running:
        if processes.port_taken(HOST, port):
            raise RuntimeError(
                f"{HOST}:{port} is already taken by another program; choose another port "
                "(CITYLAKE_SPARK__CONNECT_PORT)"
            )
        _require_java()
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        env = {
            # The server's Python workers run the pipelines' UDFs (USCC and resident-ID checks,
            # the PII HMAC): this Python, the project's packages and the same settings.
            "PYSPARK_PYTHON": sys.executable,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])
            ),
            "CITYLAKE_VAR_DIR": str(settings.var_dir),
            "CITYLAKE_WAREHOUSE": settings.warehouse,
            "CITYLAKE_LANDING": settings.landing,
        }
        # spark-class execs java: the recorded pid is the server JVM's.
        svc = processes.start(NAME, command(settings), env=env, cwd=PROJECT_ROOT, settings=settings)
    processes.wait_for_port(
        HOST, port, timeout=settings.spark.connect_start_timeout_seconds, svc=svc
    )
    return svc


def stop(settings: Settings | None = None) -> bool:
    return processes.stop(NAME, settings=settings)

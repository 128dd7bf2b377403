"""The stack's Spark Connect server, as configured (no JVM here): Airflow's tasks get its URL,
it serves Delta on loopback only, and the embedded default stays a local session.

The server itself runs in the stack tier: tests/test_airflow_stack.py starts it with
`citylake up` and runs the payment layer DAG's tasks on it.
"""

from __future__ import annotations

from pathlib import Path

from citylake import orchestrator, spark_connect, stack
from citylake.settings import Settings
from citylake.spark import DELTA_CONF


def settings(tmp_path: Path, **spark: object) -> Settings:
    return Settings(var_dir=tmp_path / "var", spark={"connect_port": 15123, **spark})


def confs(argv: list[str]) -> dict[str, str]:
    pairs = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--conf"]
    return dict(pair.split("=", 1) for pair in pairs)


def test_airflow_tasks_run_on_the_stacks_connect_server(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert s.spark.connect_url is None  # `citylake build`, the demo and tests: local Spark
    assert orchestrator.environment(s)["CITYLAKE_SPARK__CONNECT_URL"] == "sc://127.0.0.1:15123"
    remote = settings(tmp_path, connect_url="sc://spark.example:15002")
    assert orchestrator.environment(remote)["CITYLAKE_SPARK__CONNECT_URL"] == (
        "sc://spark.example:15002"
    )


def test_the_server_serves_delta_on_loopback_and_starts_before_airflow(tmp_path: Path) -> None:
    argv = spark_connect.command(settings(tmp_path))
    assert argv[argv.index("--class") + 1] == spark_connect.SERVER_CLASS
    conf = confs(argv)
    assert DELTA_CONF.items() <= conf.items()
    assert conf["spark.connect.grpc.binding.address"] == "127.0.0.1"
    assert conf["spark.connect.grpc.binding.port"] == "15123"
    assert conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert str(tmp_path / "var") in conf["spark.sql.warehouse.dir"]
    assert "delta-spark_2.13" in argv[argv.index("--jars") + 1]
    names = [s.name for s in stack.SERVICES]
    assert names.index("spark-connect") < names.index("airflow-scheduler")

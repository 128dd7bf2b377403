"""The services `citylake up` runs on this machine, in start order.

Each binds to 127.0.0.1, keeps its data under ``var/`` and is stopped by the pid it was started
with (`citylake.processes`). The source stand-ins come first, then the platform's own
services (MinIO, then Trino, which may read the warehouse on MinIO), the Spark Connect server
that Airflow's tasks run on, then Airflow's three processes (metadata on the same PostgreSQL
server); later ones (Superset, OpenMetadata) join this list; production runs the same services
from ``infra/``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from citylake.processes import Service, service
from citylake.settings import Settings, get_settings


@dataclass(frozen=True)
class StackService:
    name: str  # its pid/log name under var/run
    role: str
    start: Callable[[Settings], Service]
    stop: Callable[[Settings], bool]
    address: Callable[[Settings], str]


def _start_source_db(settings: Settings) -> Service:
    from citylake.postgres import connect_source_db, start_source_db
    from sources.payment_db import create_schema

    svc = start_source_db(settings)
    with connect_source_db(settings) as conn:
        create_schema(conn)
    return svc


def _stop_source_db(settings: Settings) -> bool:
    from citylake.postgres import stop_source_db

    return stop_source_db(settings)


def _start_minio(settings: Settings) -> Service:
    from citylake.minio import start_minio

    return start_minio(settings)


def _stop_minio(settings: Settings) -> bool:
    from citylake.minio import stop_minio

    return stop_minio(settings)


def _start_trino(settings: Settings) -> Service:
    from citylake.trino import register_warehouse, start_trino

    svc = start_trino(settings)
    register_warehouse(settings)  # tables built while Trino was down become queryable
    return svc


def _stop_trino(settings: Settings) -> bool:
    from citylake.trino import stop_trino

    return stop_trino(settings)


def _start_superset(settings: Settings) -> Service:
    from citylake.superset import start_superset

    return start_superset(settings)


def _stop_superset(settings: Settings) -> bool:
    from citylake.superset import stop_superset

    return stop_superset(settings)


def _start_exchange(settings: Settings) -> Service:
    from sources.gov_exchange import start_exchange

    return start_exchange(settings)


def _stop_exchange(settings: Settings) -> bool:
    from sources.gov_exchange import stop_exchange

    return stop_exchange(settings)


def _start_spark_connect(settings: Settings) -> Service:
    from citylake.spark_connect import start

    return start(settings)


def _stop_spark_connect(settings: Settings) -> bool:
    from citylake.spark_connect import stop

    return stop(settings)


def _airflow(name: str, role: str) -> StackService:
    """One of Airflow's three processes (citylake/orchestrator.py): the api-server first, which
    prepares the metadata DB on the project's PostgreSQL."""

    def start(settings: Settings) -> Service:
        from citylake import orchestrator

        starters = {
            orchestrator.API_SERVER: orchestrator.start_api_server,
            orchestrator.SCHEDULER: orchestrator.start_scheduler,
            orchestrator.DAG_PROCESSOR: orchestrator.start_dag_processor,
        }
        return starters[name](settings)

    def stop(settings: Settings) -> bool:
        from citylake import orchestrator

        return orchestrator.stop(name, settings)

    return StackService(name, role, start, stop, lambda s: s.airflow.url)


SERVICES: tuple[StackService, ...] = (
    StackService(
        "postgres",
        "payment source database (PostgreSQL; pay_* feeds)",
        _start_source_db,
        _stop_source_db,
        lambda s: f"postgresql://{s.source_db.host}:{s.source_db.port}/{s.source_db.dbname}",
    ),
    StackService(
        "gov-exchange",
        "government data-sharing exchange (REST; gov_* feeds)",
        _start_exchange,
        _stop_exchange,
        lambda s: s.exchange.url,
    ),
    StackService(
        "minio",
        "object storage (MinIO, S3 API; s3a:// warehouses)",
        _start_minio,
        _stop_minio,
        lambda s: s.s3.endpoint,
    ),
    StackService(
        "trino",
        "SQL engine (Trino, Delta Lake connector over the warehouse)",
        _start_trino,
        _stop_trino,
        lambda s: f"{s.trino.url} (catalog {s.trino.catalog})",
    ),
    StackService(
        "superset",
        "cockpit (Superset; dashboards by `citylake cockpit deploy`)",
        _start_superset,
        _stop_superset,
        lambda s: s.superset.url,
    ),
    StackService(
        "spark-connect",
        "Spark Connect server with Delta (Airflow's tasks run on it)",
        _start_spark_connect,
        _stop_spark_connect,
        lambda s: f"sc://127.0.0.1:{s.spark.connect_port}",
    ),
    _airflow("airflow-api-server", "orchestrator API and UI (Airflow; JWT at /auth/token)"),
    _airflow("airflow-scheduler", "orchestrator scheduler (Airflow, LocalExecutor)"),
    _airflow("airflow-dag-processor", "orchestrator DAG parsing (Airflow; DAGs from contracts)"),
)
# The city's systems that the platform pulls from (stand-ins here); the demo runs only these.
SOURCES = ("postgres", "gov-exchange")


def select(names: list[str] | None) -> list[StackService]:
    if not names:
        return list(SERVICES)
    known = {s.name: s for s in SERVICES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KeyError(f"unknown service(s) {unknown}; known: {sorted(known)}")
    return [s for s in SERVICES if s.name in names]


def up(names: list[str] | None = None, settings: Settings | None = None) -> list[Service]:
    settings = settings or get_settings()
    return [s.start(settings) for s in select(names)]


def down(names: list[str] | None = None, settings: Settings | None = None) -> list[str]:
    """Stop in reverse start order; the names of those that were running."""
    settings = settings or get_settings()
    return [s.name for s in reversed(select(names)) if s.stop(settings)]


def status(settings: Settings | None = None) -> list[tuple[StackService, Service]]:
    settings = settings or get_settings()
    return [(s, service(s.name, settings)) for s in SERVICES]

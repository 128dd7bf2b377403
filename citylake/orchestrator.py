"""Airflow as native services: api-server, scheduler and dag-processor under `citylake up`.

Each is one background process of `citylake.processes` (pid file and log under ``var/run``),
bound to 127.0.0.1 and stopped by its pid; the tasks LocalExecutor forks live in the
scheduler's process group and stop with it. Airflow's home is ``var/airflow`` (task logs,
the generated secrets); its metadata is the database ``airflow`` on the project's PostgreSQL
(`citylake.postgres`), which starts first. The DAGs are the project's ``dags/`` folder, and the
tasks see the same settings as the command that started Airflow (warehouse, landing, var).

Secrets are generated once into ``var/airflow/secrets.json`` (mode 0600): the metadata DB
password, the API user's password, and the keys that sign the API's and the task runners' JWTs
(all three processes must share them).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from citylake import processes, spark_connect
from citylake.processes import Service
from citylake.settings import PROJECT_ROOT, Settings, get_settings

API_SERVER = "airflow-api-server"
SCHEDULER = "airflow-scheduler"
DAG_PROCESSOR = "airflow-dag-processor"
SPARK_POOL = "citylake_spark"  # one slot: pipelines.orchestration puts every Spark task in it
AIRFLOW = Path(sys.executable).with_name("airflow")


def home(settings: Settings) -> Path:
    return settings.var_dir / "airflow"


def _secrets(settings: Settings) -> dict[str, str]:
    path = home(settings) / "secrets.json"
    if path.is_file():
        return json.loads(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    values = {k: secrets.token_urlsafe(24) for k in ("db", "user", "jwt", "api")}
    path.touch(mode=0o600)
    path.write_text(json.dumps(values))
    return values


def api_password(settings: Settings | None = None) -> str:
    """The password of the API's admin user (`settings.airflow.user`)."""
    return _secrets(settings or get_settings())["user"]


def environment(settings: Settings) -> dict[str, str]:
    """Airflow's configuration for all three services and the tasks they run."""
    af, db = settings.airflow, settings.source_db
    secret = _secrets(settings)
    root = home(settings)
    passwords = root / "passwords.json"
    passwords.touch(mode=0o600)
    passwords.write_text(json.dumps({af.user: secret["user"]}))
    dsn = f"{af.db_user}:{secret['db']}@{db.host}:{db.port}/{af.db_name}"
    return {
        "AIRFLOW_HOME": str(root),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(af.parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(af.parallelism),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{af.url}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{af.user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg://{dsn}",
        # psycopg 3 speaks asyncio too: no asyncpg driver needed beside it.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": f"postgresql+psycopg_async://{dsn}",
        "AIRFLOW__API__HOST": af.host,
        "AIRFLOW__API__PORT": str(af.port),
        "AIRFLOW__API__WORKERS": "1",  # 2 cores: one API worker is plenty
        "AIRFLOW__API__BASE_URL": af.url,
        "AIRFLOW__API__SECRET_KEY": secret["api"],
        "AIRFLOW__API_AUTH__JWT_SECRET": secret["jwt"],
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(root / "logs"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",  # a new contract shows within 30 s
        "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
        # Tasks import pipelines/ and read the same warehouse and var/ as this command.
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])
        ),
        "CITYLAKE_VAR_DIR": str(settings.var_dir),
        "CITYLAKE_WAREHOUSE": settings.warehouse,
        "CITYLAKE_LANDING": settings.landing,
        # Tasks run on the stack's Spark Connect server (citylake/spark_connect.py), not a JVM
        # each: docs/decisions/spark-under-airflow.md.
        "CITYLAKE_SPARK__CONNECT_URL": spark_connect.url(settings),
        "GX_ANALYTICS_ENABLED": "false",
    }


def _airflow(settings: Settings, *args: str) -> None:
    """Run one `airflow` CLI command to completion (its output kept in the error)."""
    done = subprocess.run(
        [str(AIRFLOW), *args],
        env={**os.environ, **environment(settings)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"airflow {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        )


def prepare(settings: Settings) -> None:
    """The metadata database on our PostgreSQL (started if needed), migrated, with the pool."""
    from citylake.postgres import ensure_database, start_source_db

    start_source_db(settings)
    af = settings.airflow
    ensure_database(settings, af.db_name, af.db_user, _secrets(settings)["db"])
    _airflow(settings, "db", "migrate")
    _airflow(settings, "pools", "set", SPARK_POOL, "1", "one Spark JVM at a time")


def _start(name: str, argv: list[str], settings: Settings) -> Service:
    return processes.start(
        name, [str(AIRFLOW), *argv], env=environment(settings), cwd=PROJECT_ROOT, settings=settings
    )


def start_api_server(settings: Settings | None = None) -> Service:
    """Prepare the metadata DB, start the api-server and wait until it is healthy."""
    settings = settings or get_settings()
    af = settings.airflow
    svc = processes.service(API_SERVER, settings)
    if not svc.running:
        if processes.port_taken(af.host, af.port):
            raise RuntimeError(
                f"{af.host}:{af.port} is already taken by another program; choose another port "
                "(CITYLAKE_AIRFLOW__PORT)"
            )
        prepare(settings)
        argv = ["api-server", "--host", af.host, "--port", str(af.port), "--workers", "1"]
        svc = _start(API_SERVER, argv, settings)
    processes.wait_for_port(af.host, af.port, timeout=af.start_timeout_seconds, svc=svc)
    deadline = time.monotonic() + af.start_timeout_seconds
    while httpx.get(f"{af.url}/api/v2/monitor/health", timeout=10).status_code != 200:
        if time.monotonic() > deadline:
            raise TimeoutError(f"Airflow's api-server at {af.url} is not healthy")
        time.sleep(1)
    return svc


def start_scheduler(settings: Settings | None = None) -> Service:
    # Its task-log server would listen on every interface (its host is fixed); the api-server
    # reads the task logs from the shared log folder instead.
    return _start(SCHEDULER, ["scheduler", "--skip-serve-logs"], settings or get_settings())


def start_dag_processor(settings: Settings | None = None) -> Service:
    return _start(DAG_PROCESSOR, ["dag-processor"], settings or get_settings())


def stop(name: str, settings: Settings | None = None) -> bool:
    """Stop the service by its pid, then whatever of its session outlived it: the scheduler's
    task processes (and their Spark JVMs) run in process groups of their own."""
    settings = settings or get_settings()
    svc = processes.service(name, settings)
    leader = svc.pid if svc.running else None
    was_running = processes.stop(name, settings=settings)
    if leader is not None:
        left = processes.session(leader)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while (left := processes.session(leader)) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return was_running


def token(settings: Settings | None = None) -> str:
    """A JWT for the REST API (POST /auth/token with the admin user's password)."""
    settings = settings or get_settings()
    af = settings.airflow
    response = httpx.post(
        f"{af.url}/auth/token",
        json={"username": af.user, "password": api_password(settings)},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["access_token"]

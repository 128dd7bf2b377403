"""An isolated, throw-away Airflow home for tests.

Airflow reads its configuration once, when ``airflow`` is first imported in the process, so
``configure()`` must run before that import: test modules call it at the top, before any
``import airflow``. The home (SQLite metadata DB, logs, airflow.cfg) is a temporary directory
outside the repository, removed when the process exits.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DAGS_FOLDER = PROJECT_ROOT / "dags"
_HOME_MARKER = "CITYLAKE_TEST_AIRFLOW_HOME"


def configure() -> Path:
    """Point Airflow at a fresh temporary home (idempotent within a process); return it."""
    if home := os.environ.get(_HOME_MARKER):
        return Path(home)
    if "airflow" in sys.modules:
        raise RuntimeError(
            "airflow was imported before tests/airflow_home.configure(): its configuration "
            "would point at the real AIRFLOW_HOME. Call configure() before importing airflow."
        )
    home = Path(tempfile.mkdtemp(prefix="citylake-airflow-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    os.environ.update(
        {
            _HOME_MARKER: str(home),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW_CONFIG": str(home / "airflow.cfg"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__LOGGING__DAG_PROCESSOR_CHILD_PROCESS_LOG_DIRECTORY": str(
                home / "logs" / "dag_processor"
            ),
        }
    )
    return home


def migrate() -> None:
    """Create the metadata DB schema in the temporary home (≈ 3 s, in process)."""
    configure()
    from airflow.utils import db

    db.initdb()

"""The cockpit's server: Apache Superset as a native service under `citylake up`.

Superset's pins (SQLAlchemy 1.4, Flask-AppBuilder) collide with Airflow's, so it lives in a
virtual environment of its own, ``.venv-superset``, installed by the set-up from
``infra/superset/requirements.txt`` (re-synced only when that file changes). Its state::

    <var>/superset/superset_config.py   written from the settings on every start
    <var>/superset/secrets.json         generated once (mode 0600): SECRET_KEY unless the
                                        settings name one, the metadata DB's and the admin's
                                        passwords
    <var>/superset/initialized          stamp: `db upgrade`, `fab create-admin` and `init`
                                        ran for this Superset version on this metadata DB

The metadata is the database ``superset`` on the project's PostgreSQL (`citylake.postgres`),
which starts first. gunicorn serves the app on 127.0.0.1 with its log and pid under
``var/run`` (`citylake.processes`); it is stopped by that pid, its workers with its group.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg

from citylake import processes
from citylake.processes import Service
from citylake.settings import PROJECT_ROOT, Settings, get_settings

SERVICE = "superset"
VERSION = "6.1.0"
VENV = PROJECT_ROOT / ".venv-superset"
REQUIREMENTS = PROJECT_ROOT / "infra" / "superset" / "requirements.txt"
_LOOPBACK = ("127.0.0.1", "localhost")
# The UI's languages: both needed for the Chinese UI, which is blank without a LANGUAGES entry.
LANGUAGES = {"zh": {"flag": "cn", "name": "简体中文"}, "en": {"flag": "us", "name": "English"}}


class SupersetError(RuntimeError):
    pass


def root_dir(settings: Settings) -> Path:
    return settings.var_dir / "superset"


def bin_path(name: str) -> Path:
    return VENV / "bin" / name


def _requirements_digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]


def installed() -> bool:
    stamp = VENV / ".installed"
    return (
        bin_path("superset").is_file()
        and stamp.is_file()
        and stamp.read_text().strip() == _requirements_digest()
    )


def install() -> Path:
    """Create ``.venv-superset`` with the pinned requirements; a no-op when they are unchanged."""
    if installed():
        return VENV
    if not (VENV / "bin" / "python").is_file():
        # The base interpreter of the running one (venv resolves it), not the main venv's.
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    uv = Path(sys.executable).with_name("uv")
    uv_cmd = str(uv) if uv.is_file() else shutil.which("uv")
    if uv_cmd is None:
        argv = [str(bin_path("python")), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)]
    else:  # uv: minutes faster than pip for Superset's ~240 packages
        argv = [uv_cmd, "pip", "sync", "-q", "--python", str(bin_path("python")), str(REQUIREMENTS)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SupersetError(
            f"installing Superset failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        )
    (VENV / ".installed").write_text(_requirements_digest() + "\n")
    return VENV


def _secrets(settings: Settings) -> dict[str, str]:
    path = root_dir(settings) / "secrets.json"
    if path.is_file():
        return json.loads(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    values = {k: secrets.token_urlsafe(32) for k in ("secret_key", "db", "admin")}
    path.touch(mode=0o600)
    path.write_text(json.dumps(values))
    return values


def admin_password(settings: Settings | None = None) -> str:
    """The password of the admin user (`settings.superset.user`)."""
    return _secrets(settings or get_settings())["admin"]


def _secret_key(settings: Settings) -> str:
    configured = settings.superset.secret_key
    return configured.get_secret_value() if configured else _secrets(settings)["secret_key"]


def metadata_uri(settings: Settings) -> str:
    ss, db = settings.superset, settings.source_db
    return f"postgresql+psycopg2://{ss.db_user}:{_secrets(settings)['db']}@{db.host}:{db.port}/{ss.db_name}"


# The most rows a chart's query returns (Superset's default cap): a year of a daily line with
# six series is 2,196 points, and a chart cut short draws a wrong picture without a word.
ROW_LIMIT = 10_000


def config_text(settings: Settings) -> str:
    """superset_config.py: every value a Python literal (repr), nothing evaluated from input."""
    ss = settings.superset
    values = {
        "SECRET_KEY": _secret_key(settings),
        "SQLALCHEMY_DATABASE_URI": metadata_uri(settings),
        "BABEL_DEFAULT_LOCALE": ss.locale,
        "LANGUAGES": LANGUAGES,
        # Forms keep CSRF; API clients fetch /api/v1/security/csrf_token/ in their session.
        "WTF_CSRF_ENABLED": True,
        "WTF_CSRF_TIME_LIMIT": None,
        "SUPERSET_WEBSERVER_TIMEOUT": 120,
        # Chart results: a file cache all gunicorn workers share (the default caches nothing).
        "DATA_CACHE_CONFIG": {
            "CACHE_TYPE": "FileSystemCache" if ss.cache_seconds else "NullCache",
            "CACHE_DIR": str(root_dir(settings) / "cache"),
            "CACHE_DEFAULT_TIMEOUT": ss.cache_seconds,
            "CACHE_KEY_PREFIX": "citylake_chart_",
        },
        # Superset's own cache beside it (a page's bootstrap data, a database's table lists):
        # the default NullCache recomputed them on every request.
        "CACHE_CONFIG": {
            "CACHE_TYPE": "FileSystemCache" if ss.cache_seconds else "NullCache",
            "CACHE_DIR": str(root_dir(settings) / "cache" / "app"),
            "CACHE_DEFAULT_TIMEOUT": ss.cache_seconds,
            "CACHE_KEY_PREFIX": "citylake_app_",
        },
        "ROW_LIMIT": ROW_LIMIT,
        # No gzip in the worker: Flask-Compress compressed every response anew, the ~15 MB
        # JavaScript bundle of a fresh browser included, on the worker's CPU; on loopback the
        # bytes cost nothing (behind a proxy, the proxy compresses and caches).
        "COMPRESS_REGISTER": False,
        # Dashboards come from `citylake cockpit deploy` (no examples are ever loaded).
    }
    lines = ["# Written by citylake (citylake/superset.py) on every start; edit the settings."]
    lines += [f"{name} = {value!r}" for name, value in values.items()]
    return "\n".join(lines) + "\n"


def configure(settings: Settings) -> Path:
    root = root_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    path = root / "superset_config.py"
    partial = path.with_name(path.name + ".part")
    partial.touch(mode=0o600)  # it holds the secret key and the DB password
    partial.write_text(config_text(settings))
    partial.replace(path)
    return path


def environment(settings: Settings) -> dict[str, str]:
    root = root_dir(settings)
    return {
        "SUPERSET_CONFIG_PATH": str(root / "superset_config.py"),
        "SUPERSET_HOME": str(root),
        "FLASK_APP": "superset.app:create_app()",
        "PYTHONPATH": "",  # the project's venv and paths stay out of Superset's interpreter
    }


def _superset(settings: Settings, *args: str, timeout: float = 1800) -> str:
    done = subprocess.run(
        [str(bin_path("superset")), *args],
        env={**os.environ, **environment(settings)},
        cwd=root_dir(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise SupersetError(
            f"superset {' '.join(args[:2])} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        )
    return done.stdout


def _stamp(settings: Settings) -> str:
    return f"{VERSION} {settings.source_db.port} {settings.superset.db_name}"


def _initialized(settings: Settings) -> bool:
    """The stamp matches and the metadata DB really holds our admin (a recreated PostgreSQL
    cluster under var/ would not)."""
    stamp = root_dir(settings) / "initialized"
    if not stamp.is_file() or stamp.read_text().strip() != _stamp(settings):
        return False
    ss, db = settings.superset, settings.source_db
    try:
        with psycopg.connect(
            host=db.host,
            port=db.port,
            dbname=ss.db_name,
            user=ss.db_user,
            password=_secrets(settings)["db"],
            connect_timeout=5,
        ) as conn:
            found = conn.execute("SELECT 1 FROM ab_user WHERE username = %s", [ss.user]).fetchone()
    except psycopg.Error:
        return False
    return found is not None


def prepare(settings: Settings) -> None:
    """The metadata DB on our PostgreSQL (started if needed), migrated, with the admin user and
    the roles and permissions (`superset init`): once per version, by stamp."""
    from citylake.postgres import ensure_database, start_source_db

    if not installed():
        raise SupersetError(
            f"Superset {VERSION} is not installed in {VENV}: run `make setup` (or `citylake setup`)"
        )
    start_source_db(settings)
    ss = settings.superset
    ensure_database(settings, ss.db_name, ss.db_user, _secrets(settings)["db"])
    configure(settings)
    if _initialized(settings):
        return
    _superset(settings, "db", "upgrade")
    _superset(
        settings,
        "fab",
        "create-admin",
        "--username",
        ss.user,
        "--firstname",
        "citylake",
        "--lastname",
        "admin",
        "--email",
        f"{ss.user}@localhost",
        "--password",
        admin_password(settings),
    )
    _superset(settings, "init")
    (root_dir(settings) / "initialized").write_text(_stamp(settings) + "\n")


def _server_argv(settings: Settings) -> list[str]:
    ss = settings.superset
    return [
        str(bin_path("gunicorn")),
        "--bind",
        f"{ss.host}:{ss.port}",
        "--workers",
        str(ss.workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(ss.threads),
        "--timeout",
        "120",
        "--limit-request-line",
        "0",
        "--limit-request-field_size",
        "0",
        "superset.app:create_app()",
    ]


def start_superset(settings: Settings | None = None) -> Service:
    """Prepare the metadata DB, start gunicorn (a running one is reused), wait for /health."""
    settings = settings or get_settings()
    ss = settings.superset
    if ss.host not in _LOOPBACK:
        raise SupersetError(
            f"superset.host is {ss.host}: that server is not ours to start (the project starts "
            "Superset on 127.0.0.1 only)"
        )
    svc = processes.service(SERVICE, settings)
    if not svc.running:
        if processes.port_taken(ss.host, ss.port):
            raise SupersetError(
                f"{ss.host}:{ss.port} is already taken by another program; choose another port "
                "(CITYLAKE_SUPERSET__PORT)"
            )
        prepare(settings)
        svc = processes.start(
            SERVICE,
            _server_argv(settings),
            env=environment(settings),
            cwd=root_dir(settings),
            settings=settings,
        )
    try:
        _wait_healthy(settings, svc)
    except BaseException:
        processes.stop(SERVICE, settings=settings)
        raise
    return svc


def _wait_healthy(settings: Settings, svc: Service) -> None:
    ss = settings.superset
    deadline = time.monotonic() + ss.start_timeout_seconds
    while True:
        try:
            if httpx.get(f"{ss.url}/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if not svc.running:
            tail = svc.log_file.read_text(errors="replace")[-3000:] if svc.log_file.exists() else ""
            raise SupersetError(f"Superset exited during start-up; its log ends:\n{tail}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"Superset not healthy at {ss.url} after the start timeout")
        time.sleep(0.5)


def stop_superset(settings: Settings | None = None) -> bool:
    """Stop gunicorn (and its workers, in its process group) by its pid; True if it ran."""
    return processes.stop(SERVICE, settings=settings or get_settings())


def running(settings: Settings | None = None) -> bool:
    return processes.service(SERVICE, settings or get_settings()).running

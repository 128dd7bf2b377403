"""The project's own PostgreSQL server: the payment source database in tests and the demo.

Debian's server binaries run a cluster whose files all live under ``<var>/postgres/``::

    data/                  the cluster (PGDATA), owned by the server's account, mode 0700
    socket/                its unix socket, reachable by that account only
    superuser.password     the bootstrap superuser's random password (ours only, mode 0600)

The server listens on 127.0.0.1 only and every login needs a password (SCRAM), also on the
socket. The role and database named by ``Settings.source_db`` are created on start; that role
is not a superuser. The postmaster runs in the foreground under `citylake.processes`, so the pid
recorded is the postmaster's own, and it is stopped by exactly that pid.

PostgreSQL refuses to run as root. Run as root, the server runs as Debian's ``postgres``
system account (``setpriv`` switches to it and then execs, keeping the pid); run as anyone
else, it runs as that user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from citylake import processes
from citylake.processes import Service
from citylake.settings import Settings, get_settings

SERVICE = "postgres"
SUPERUSER = "postgres"
SERVER_ACCOUNT = "postgres"  # Debian's system user, used when we run as root
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
_SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes including the terminating NUL
_LOOPBACK = ("127.0.0.1", "localhost")
_HBA = """\
# Written by citylake: loopback only, and a password (SCRAM) for every login.
local   all   all                  scram-sha-256
host    all   all   127.0.0.1/32   scram-sha-256
"""


@dataclass(frozen=True)
class _Account:
    """Who the server runs as: `prefix` turns a command into one that runs as that account."""

    prefix: tuple[str, ...]
    uid: int | None  # None: the current user
    gid: int | None
    groups: tuple[int, ...]


def root_dir(settings: Settings) -> Path:
    return settings.var_dir / "postgres"


def data_dir(settings: Settings) -> Path:
    return root_dir(settings) / "data"


def socket_dir(settings: Settings) -> Path:
    return root_dir(settings) / "socket"


def server_bindir() -> Path:
    """Where Debian's `initdb` and `postgres` are: `pg_config --bindir`, else the newest
    /usr/lib/postgresql/<major>/bin."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    majors = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(majors, key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0))[::-1]
    for bindir in candidates:
        if (bindir / "postgres").is_file() and (bindir / "initdb").is_file():
            return bindir
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, postgres) not found via pg_config --bindir or "
        "/usr/lib/postgresql/*/bin. `make setup` installs Debian's postgresql package "
        "(infra/setup/bootstrap.sh), or run: apt-get install postgresql"
    )


def _account() -> _Account:
    if os.geteuid() != 0:
        return _Account((), None, None, ())
    try:
        pw = pwd.getpwnam(SERVER_ACCOUNT)
    except KeyError:
        raise RuntimeError(
            f"PostgreSQL does not run as root and there is no {SERVER_ACCOUNT!r} account to run "
            "it as; Debian's postgresql package creates it (apt-get install postgresql)"
        ) from None
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise RuntimeError("setpriv (util-linux) is needed to run PostgreSQL as 'postgres'")
    # setpriv execs the server in place (no fork), so the pid we record is the postmaster's.
    prefix = (setpriv, f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", "--")
    groups = tuple(os.getgrouplist(SERVER_ACCOUNT, pw.pw_gid))
    return _Account(prefix, pw.pw_uid, pw.pw_gid, groups)


def _give(path: Path, account: _Account, mode: int) -> None:
    if account.uid is not None:
        os.chown(path, account.uid, account.gid if account.gid is not None else -1)
    path.chmod(mode)


def _ensure_reachable(path: Path, account: _Account, var_dir: Path) -> None:
    """The server's account must be able to traverse every directory above its files."""
    if account.uid is None:
        return
    for directory in [path, *path.parents]:
        st = directory.stat()
        searchable = (
            st.st_mode & 0o001
            or (st.st_gid in account.groups and st.st_mode & 0o010)
            or (st.st_uid == account.uid and st.st_mode & 0o100)
        )
        if searchable:
            continue
        if directory == var_dir or var_dir in directory.parents:
            # Our own runtime tree: let the server pass through (search only, not list).
            directory.chmod(st.st_mode | 0o001)
            continue
        raise RuntimeError(
            f"PostgreSQL runs as {SERVER_ACCOUNT!r}, which cannot enter {directory} "
            f"(mode {st.st_mode & 0o777:o}); keep var_dir under a directory it can traverse "
            f"or allow it: chmod o+x {directory}"
        )


def _superuser_password(settings: Settings) -> str:
    return (root_dir(settings) / "superuser.password").read_text().strip()


def _initdb(settings: Settings, bindir: Path, account: _Account) -> None:
    """Create the cluster once. initdb writes into a scratch directory that is renamed into
    place when complete, so a crash mid-way leaves nothing that looks initialised."""
    data = data_dir(settings)
    if (data / "PG_VERSION").is_file():
        return
    root = root_dir(settings)
    scratch = root / "data.initdb"
    shutil.rmtree(scratch, ignore_errors=True)
    if data.exists():  # an empty or partial directory from an older interrupted attempt
        shutil.rmtree(data)
    scratch.mkdir()
    _give(scratch, account, 0o700)

    password = secrets.token_urlsafe(24)
    keep = root / "superuser.password"
    keep.write_text(password + "\n")
    keep.chmod(0o600)
    pwfile = root / "initdb.pw"  # initdb reads it as the server's account; deleted right after
    pwfile.write_text(password + "\n")
    _give(pwfile, account, 0o600)
    try:
        subprocess.run(
            [
                *account.prefix,
                str(bindir / "initdb"),
                "--pgdata",
                str(scratch),
                "--username",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",  # byte order for text keys: the pull's keyset order is plain
                "--no-instructions",
            ],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"initdb failed:\n{exc.stdout}{exc.stderr}") from None
    finally:
        pwfile.unlink(missing_ok=True)
    hba = scratch / "pg_hba.conf"
    hba.write_text(_HBA)
    _give(hba, account, 0o600)
    scratch.rename(data)


def _server_argv(settings: Settings, bindir: Path, account: _Account) -> list[str]:
    db = settings.source_db
    sockets = socket_dir(settings)
    # A unix socket path longer than the kernel allows stops the server; TCP alone then.
    socket_dirs = str(sockets) if len(f"{sockets}/.s.PGSQL.{db.port}") <= _SOCKET_PATH_MAX else ""
    return [
        *account.prefix,
        str(bindir / "postgres"),
        "-D",
        str(data_dir(settings)),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        f"port={db.port}",
        "-c",
        f"unix_socket_directories={socket_dirs}",
        "-c",
        "unix_socket_permissions=0700",
    ]


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _connect_superuser(settings: Settings, dbname: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1",
        port=settings.source_db.port,
        dbname=dbname,
        user=SUPERUSER,
        password=_superuser_password(settings),
        connect_timeout=5,
        autocommit=True,
    )


def _wait_ready(settings: Settings, svc: Service) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if not svc.running:
            tail = svc.log_file.read_text(errors="replace")[-2000:] if svc.log_file.exists() else ""
            raise RuntimeError(f"PostgreSQL exited during start-up; its log ends:\n{tail}")
        try:
            with _connect_superuser(settings):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _provision(settings: Settings) -> None:
    """Create (or re-password) the role and the database named by the settings."""
    db = settings.source_db
    ensure_database(settings, db.dbname, db.user, db.password.get_secret_value())


def ensure_database(settings: Settings, dbname: str, user: str, password: str) -> None:
    """Create (or re-password) the login role `user` and its database `dbname` on our running
    server: the payment source database, and Airflow's metadata database beside it."""
    with _connect_superuser(settings) as conn:
        role, secret = sql.Identifier(user), sql.Literal(password)
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [user]).fetchone()
        verb = sql.SQL("ALTER" if exists else "CREATE")
        conn.execute(sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(verb, role, secret))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone():
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(dbname), role)
            )


def start_source_db(settings: Settings | None = None) -> Service:
    """Start the source database (initialising it on first use) and wait until it answers;
    a server already running is just re-provisioned. Returns its service record."""
    settings = settings or get_settings()
    db = settings.source_db
    if db.host not in _LOOPBACK:
        raise RuntimeError(
            f"source_db.host is {db.host}: that database is not ours to start (the project "
            "starts PostgreSQL on 127.0.0.1 only)"
        )
    svc = processes.service(SERVICE, settings)
    if not svc.running:
        bindir = server_bindir()
        account = _account()
        root = root_dir(settings)
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o711)  # the server passes through; only we list it
        _ensure_reachable(root, account, settings.var_dir)
        _initdb(settings, bindir, account)
        sockets = socket_dir(settings)
        sockets.mkdir(exist_ok=True)
        _give(sockets, account, 0o700)
        if _port_taken(db.port):
            raise RuntimeError(
                f"127.0.0.1:{db.port} is already taken by another program; choose another "
                "port (CITYLAKE_SOURCE_DB__PORT)"
            )
        svc = processes.start(
            SERVICE, _server_argv(settings, bindir, account), cwd=root, settings=settings
        )
    _wait_ready(settings, svc)
    _provision(settings)
    return svc


def stop_source_db(settings: Settings | None = None) -> bool:
    """Stop the server by the pid it was started with; True if it was running.

    SIGINT is PostgreSQL's fast shutdown (sessions end, a checkpoint is written); only if the
    postmaster outlives that does `processes.stop` terminate its process group.
    """
    settings = settings or get_settings()
    svc = processes.service(SERVICE, settings)
    pid, was_running = svc.pid, svc.running
    if pid is not None and was_running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT
        while svc.running and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)
    processes.stop(SERVICE, settings=settings)
    return was_running


def connect_source_db(
    settings: Settings | None = None, *, autocommit: bool = False
) -> psycopg.Connection:
    """A connection to the payment source database as the settings' role."""
    db = (settings or get_settings()).source_db
    return psycopg.connect(
        host=db.host,
        port=db.port,
        dbname=db.dbname,
        user=db.user,
        password=db.password.get_secret_value(),
        connect_timeout=10,
        autocommit=autocommit,
    )

"""A real PostgreSQL for tests: the payment source database on a free loopback port."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from citylake.postgres import start_source_db, stop_source_db
from citylake.settings import Settings, SourceDatabaseSettings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def server_pids(postmaster: int) -> list[int]:
    """The postmaster and the processes it forked (checkpointer, backends, ...)."""
    children = Path(f"/proc/{postmaster}/task/{postmaster}/children")
    return [postmaster, *(int(p) for p in children.read_text().split())]


@contextmanager
def running_source_db() -> Iterator[Settings]:
    """Start a private server (its own ./var in a fresh temporary directory) and stop it by its
    pid afterwards, failing if any of its processes is left.

    The directory is not under pytest's tmp_path: that tree is private to us (mode 0700) and
    the server, run as the `postgres` account when we are root, could not enter it.
    """
    var = Path(tempfile.mkdtemp(prefix="citylake-pg-"))
    var.chmod(0o711)
    settings = Settings(
        var_dir=var, source_db=SourceDatabaseSettings(port=free_port(), watermark_lag_seconds=0)
    )
    try:
        svc = start_source_db(settings)
        assert svc.pid is not None
        pids = server_pids(svc.pid)
        yield settings
        assert stop_source_db(settings)
        assert not [p for p in pids if alive(p)], "PostgreSQL processes left after stop"
    finally:
        stop_source_db(settings)
        shutil.rmtree(var, ignore_errors=True)

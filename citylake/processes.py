"""Background services the project starts: one pid file and one log per service under ``var/run``.

A service is started detached (its own session, so a Ctrl-C in the terminal does not reach it),
recorded by the pid it was started with, and stopped by exactly that pid: SIGTERM, then SIGKILL
after a grace period. Nothing is found by name, so another user's process is never touched.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from citylake.settings import Settings, get_settings


@dataclass(frozen=True)
class Service:
    name: str
    pid_file: Path
    log_file: Path

    @property
    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    @property
    def running(self) -> bool:
        pid = self.pid
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return _state(pid) != "Z"  # a zombie (exited, not yet reaped) is not running


def service(name: str, settings: Settings | None = None) -> Service:
    run = (settings or get_settings()).var_dir / "run"
    return Service(name, run / f"{name}.pid", run / "log" / f"{name}.log")


def start(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    settings: Settings | None = None,
) -> Service:
    """Start `argv` in the background unless `name` already runs; return its service record."""
    svc = service(name, settings)
    if svc.running:
        return svc
    svc.log_file.parent.mkdir(parents=True, exist_ok=True)
    with svc.log_file.open("ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    svc.pid_file.write_text(f"{proc.pid}\n")
    return svc


def stop(name: str, *, grace_seconds: float = 20.0, settings: Settings | None = None) -> bool:
    """Stop the service by the pid it was started with; True if it was running.

    Returns only once that process is gone: a zombie whose other threads are still exiting
    is not gone yet, so "stopped" never means "still holding its port or files".
    """
    svc = service(name, settings)
    pid = svc.pid
    was_running = svc.running
    if pid is not None and was_running:
        _signal_group(pid, signal.SIGTERM)
        if not _wait_gone(pid, grace_seconds):
            _signal_group(pid, signal.SIGKILL)
            _wait_gone(pid, 30.0)
    elif pid is not None:
        _wait_gone(pid, 1.0)  # an exited child of ours: reap it
    svc.pid_file.unlink(missing_ok=True)
    return was_running


def session(leader: int) -> set[int]:
    """The live processes of the session `leader` started (it and whatever it forked and did not
    detach with setsid), e.g. task processes that moved to a process group of their own."""
    members = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[3]) == leader and fields[0] != "Z":  # fields[3]: the session id
            members.add(int(stat.parent.name))
    return members


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return None


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait until `pid` no longer exists (reaping it if it is our child); False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True  # our child, reaped: gone
        except ChildProcessError:  # not our child: its parent (or init) reaps it
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            if _state(pid) == "Z":  # dead; only its own parent can reap it
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # The service leads its own session: signal its group so helpers it forked stop too.
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def port_taken(host: str, port: int) -> bool:
    """True if something already accepts connections on `host:port`."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_for_port(host: str, port: int, *, timeout: float, svc: Service | None = None) -> None:
    """Wait until `host:port` accepts connections; fail early if the service died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return
        if svc is not None and not svc.running:
            tail = svc.log_file.read_text(errors="replace")[-2000:] if svc.log_file.exists() else ""
            raise RuntimeError(f"{svc.name} exited during start-up; its log ends:\n{tail}")
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f} s")

"""The project's own MinIO server: object storage for an ``s3a://`` warehouse.

MinIO publishes its community server as source only, so the set-up builds it once with
``go install`` from a pinned module version into ``.cache/minio/<version>/minio``. The server
runs single-drive from ``<var>/minio/``::

    data/     the drive (buckets and objects)
    certs/    its certificate folder (empty: plain HTTP on loopback)

It listens on the host and port of ``Settings.s3.endpoint``, which must be loopback; the web
console is off (it would listen on every interface). The root credentials are the settings'
access and secret key, and the buckets named by the settings (``s3.buckets``, the warehouse's
and the landing zone's) are created on every start. It is stopped by the pid it was started
with (`citylake.processes`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from citylake import processes
from citylake.processes import Service
from citylake.settings import Settings, get_settings

SERVICE = "minio"
MODULE = "github.com/minio/minio"
# The community repository's last commit (maintenance mode since 2025-12): the last release
# tag, RELEASE.2025-10-15T17-29-55Z (commit 9e49d5e7a648), plus four server fixes (one a
# POST-policy check). The Go module proxy serves only this pseudo-version of the module, not
# the release tag's; pinned so every machine builds the same server.
VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
START_TIMEOUT = 60.0
_LOOPBACK = ("127.0.0.1", "localhost")


def binary(settings: Settings) -> Path:
    return settings.cache_dir / "minio" / VERSION / "minio"


def root_dir(settings: Settings) -> Path:
    return settings.var_dir / "minio"


def _go() -> str:
    # Go's own tarball installs to /usr/local/go without always being on PATH.
    found = shutil.which("go") or next(
        (p for p in ("/usr/local/go/bin/go", "/usr/lib/go/bin/go") if Path(p).is_file()), None
    )
    if found is None:
        raise RuntimeError(
            "Go (1.24 or newer) is needed once to build the MinIO server: install it "
            "(https://go.dev/doc/install, or Debian's golang-go if new enough) and rerun "
            "`citylake setup`"
        )
    return found


def install(settings: Settings | None = None) -> Path:
    """Build the pinned MinIO server once (a few minutes on 2 cores); the cached binary after."""
    settings = settings or get_settings()
    target = binary(settings)
    if target.is_file():
        return target
    scratch = target.parent / "build"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    env = {
        **os.environ,
        "GOBIN": str(scratch),
        # A static binary, as MinIO's own release builds: no C toolchain or libc version tie.
        "CGO_ENABLED": "0",
    }
    result = subprocess.run(
        [_go(), "install", "-trimpath", f"{MODULE}@{VERSION}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        raise RuntimeError(
            f"go install {MODULE}@{VERSION} failed (it needs the Go module proxy):\n"
            f"{result.stderr[-3000:]}"
        )
    (scratch / "minio").replace(target)  # only a finished build takes the cached name
    shutil.rmtree(scratch, ignore_errors=True)
    return target


def address(settings: Settings) -> tuple[str, int]:
    """Host and port MinIO listens on: those of the S3 endpoint the platform uses."""
    url = urlsplit(settings.s3.endpoint)
    if url.scheme != "http" or url.hostname is None:
        raise RuntimeError(f"s3.endpoint {settings.s3.endpoint} is not an http:// URL")
    return url.hostname, url.port or 80


def buckets(settings: Settings) -> list[str]:
    """The settings' buckets, plus those the warehouse and landing zone live in."""
    named = list(settings.s3.buckets)
    for location in (settings.warehouse, settings.landing):
        scheme, _, rest = location.partition("://")
        if scheme in ("s3a", "s3") and rest:
            named.append(rest.split("/", 1)[0])
    return list(dict.fromkeys(named))


def _health_url(settings: Settings) -> str:
    return settings.s3.endpoint.rstrip("/") + "/minio/health/ready"


def _ready(settings: Settings) -> bool:
    try:
        with urllib.request.urlopen(_health_url(settings), timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, TimeoutError, OSError):
        return False


def _wait_ready(settings: Settings, svc: Service) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not _ready(settings):
        if not svc.running:
            tail = svc.log_file.read_text(errors="replace")[-2000:] if svc.log_file.exists() else ""
            raise RuntimeError(f"MinIO exited during start-up; its log ends:\n{tail}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"MinIO not ready at {_health_url(settings)} after {START_TIMEOUT}s")
        time.sleep(0.2)


def create_buckets(settings: Settings) -> list[str]:
    """Create the settings' buckets that are missing (an existing one is left as it is)."""
    from pyarrow import fs

    s3 = settings.s3
    url = urlsplit(s3.endpoint)
    store = fs.S3FileSystem(
        access_key=s3.access_key,
        secret_key=s3.secret_key.get_secret_value(),
        endpoint_override=url.netloc,
        scheme=url.scheme,
        region=s3.region,
        allow_bucket_creation=True,
    )
    named = buckets(settings)
    for bucket in named:
        if store.get_file_info(bucket).type == fs.FileType.NotFound:
            store.create_dir(bucket)
    return named


def _server_argv(settings: Settings, host: str, port: int) -> list[str]:
    root = root_dir(settings)
    return [
        str(binary(settings)),
        "server",
        str(root / "data"),
        "--address",
        f"{host}:{port}",
        "--certs-dir",
        str(root / "certs"),
    ]


def start_minio(settings: Settings | None = None) -> Service:
    """Start MinIO (a running one is reused) and create the buckets; its service record."""
    settings = settings or get_settings()
    host, port = address(settings)
    if host not in _LOOPBACK:
        raise RuntimeError(
            f"s3.endpoint is on {host}: that object store is not ours to start (the project "
            "starts MinIO on 127.0.0.1 only)"
        )
    svc = processes.service(SERVICE, settings)
    if not svc.running:
        server = binary(settings)
        if not server.is_file():
            raise RuntimeError(
                f"the MinIO server is not built ({server} is missing): run `make setup` "
                "(or `citylake setup`) once with the Go module proxy reachable"
            )
        if processes.port_taken(host, port):
            raise RuntimeError(
                f"{host}:{port} is already taken by another program; choose another port "
                "(CITYLAKE_S3__ENDPOINT)"
            )
        for sub in ("data", "certs"):
            (root_dir(settings) / sub).mkdir(parents=True, exist_ok=True)
        s3 = settings.s3
        env = {
            "MINIO_ROOT_USER": s3.access_key,
            "MINIO_ROOT_PASSWORD": s3.secret_key.get_secret_value(),
            "MINIO_SITE_REGION": s3.region,
            "MINIO_BROWSER": "off",  # the console would listen on every interface
            "MINIO_UPDATE": "off",
        }
        svc = processes.start(
            SERVICE, _server_argv(settings, "127.0.0.1", port), env=env, settings=settings
        )
    try:
        _wait_ready(settings, svc)
        create_buckets(settings)
    except BaseException:
        processes.stop(SERVICE, settings=settings)
        raise
    return svc


def stop_minio(settings: Settings | None = None) -> bool:
    """Stop MinIO by the pid it was started with; True if it was running."""
    return processes.stop(SERVICE, settings=settings or get_settings())

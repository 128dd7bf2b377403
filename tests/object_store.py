"""A real MinIO for tests: the project's pinned server on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from citylake.minio import start_minio, stop_minio
from citylake.settings import S3Settings, Settings
from tests.source_db import alive, free_port

WAREHOUSE = "s3a://lake/warehouse"


def s3_env(settings: Settings) -> dict[str, str]:
    """The environment that points a citylake process at this MinIO and its warehouse."""
    return {
        "CITYLAKE_WAREHOUSE": settings.warehouse,
        "CITYLAKE_S3__ENDPOINT": settings.s3.endpoint,
        "CITYLAKE_S3__ACCESS_KEY": settings.s3.access_key,
        "CITYLAKE_S3__SECRET_KEY": settings.s3.secret_key.get_secret_value(),
    }


@contextmanager
def running_minio(var: Path) -> Iterator[Settings]:
    """Start MinIO with its ./var under `var`, stop it by its pid afterwards, and fail if the
    process is left."""
    settings = Settings(
        var_dir=var,
        warehouse=WAREHOUSE,
        landing=str(var / "landing"),
        s3=S3Settings(endpoint=f"http://127.0.0.1:{free_port()}", secret_key="test-secret-1"),
    )
    try:
        svc = start_minio(settings)
        assert svc.pid is not None
        yield settings
        assert stop_minio(settings)
        assert not alive(svc.pid), "MinIO left running after stop"
    finally:
        stop_minio(settings)

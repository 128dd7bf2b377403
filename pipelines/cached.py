"""Frames a piece of work caches, released when that work ends.

The build runs its domains' units side by side on one Spark session (pipelines/build.py), so
no unit may clear the session's whole cache: `spark.catalog.clearCache()` would drop the frames
another unit is still reading. A unit opens ``releasing()`` and caches through ``cached()``;
leaving the block unpersists exactly the frames cached inside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pyspark.sql import DataFrame

_HELD: ContextVar[list[DataFrame] | None] = ContextVar("cached_frames", default=None)


def cached(df: DataFrame) -> DataFrame:
    """`df` cached, and released when the innermost ``releasing()`` block ends (kept cached
    for the session when no block is open)."""
    df = df.cache()
    held = _HELD.get()
    if held is not None:
        held.append(df)
    return df


@contextmanager
def releasing() -> Iterator[None]:
    """Unpersist every frame ``cached()`` inside the block when it ends, on error too."""
    held: list[DataFrame] = []
    token = _HELD.set(held)
    try:
        yield
    finally:
        _HELD.reset(token)
        for df in held:
            df.unpersist()

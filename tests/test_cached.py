"""A unit's cached frames are its own (pipelines/cached.py): released when its block ends, and
no other frame with them."""

from __future__ import annotations

import pytest

from pipelines.cached import cached, releasing


def test_leaving_the_block_releases_exactly_the_frames_cached_inside_it(spark) -> None:
    other = spark.range(10).cache()  # another unit's frame, cached meanwhile
    with releasing():
        mine = cached(spark.range(5))
        with releasing():
            inner = cached(spark.range(3))
        assert not inner.is_cached and mine.is_cached
    assert not mine.is_cached and other.is_cached
    other.unpersist()


def test_an_error_still_releases(spark) -> None:
    with pytest.raises(RuntimeError), releasing():
        mine = cached(spark.range(5))
        raise RuntimeError("gate broke")
    assert not mine.is_cached

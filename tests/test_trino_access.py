"""Trino enforces the department grants: rules generated from PostgreSQL, reread by a running
server (no restart). No Spark: the ADS table is written by delta-rs."""

from __future__ import annotations

import time

import pytest

from catalog import grants
from catalog.trino_rules import trino_user, write_rules
from citylake import trino
from citylake.settings import Settings, TrinoSettings
from tests.ads_tables import trade_daily_rows, write_ads
from tests.source_db import alive, free_port, running_source_db

pytestmark = pytest.mark.stack

SQL = "SELECT count(*) FROM ads.ads_trade_daily"


def _as(settings: Settings, user: str) -> Settings:
    return settings.model_copy(update={"trino": settings.trino.model_copy(update={"user": user})})


def _until(check, timeout: float = 20.0):
    """Trino rereads the rules every second: wait for the new answer."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, trino.TrinoError):  # not yet the new answer
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.timeout(1200)  # Trino alone starts in 40 s idle, minutes on a busy machine
def test_department_denied_then_granted_then_revoked() -> None:
    with running_source_db() as pg:
        settings = pg.model_copy(
            update={
                "warehouse": str(pg.var_dir / "lakehouse"),
                "trino": TrinoSettings(port=free_port(), start_timeout_seconds=900),
            }
        )
        write_ads(settings, "ads_trade_daily", trade_daily_rows(2))
        write_ads(settings, "ads_tax_monthly", [])  # another product, never granted
        pid = trino.start_trino(settings).pid
        assert pid is not None
        try:
            names = [("ads", "ads_trade_daily"), ("ads", "ads_tax_monthly")]
            assert trino.register(names, settings) == ["ads.ads_trade_daily", "ads.ads_tax_monthly"]
            assert trino.query(SQL, settings).rows == [[48]]  # the platform user reads all
            tax = _as(settings, trino_user("市税务局", settings))
            with pytest.raises(trino.TrinoError, match="Access Denied"):
                trino.query(SQL, tax)

            gid = grants.request(
                "ads_trade_daily", department="市税务局", purpose="p", by="a", settings=settings
            )["id"]
            grants.approve(gid, by="b", department="市商务局", settings=settings)
            write_rules(settings)
            assert _until(lambda: trino.query(SQL, tax).rows) == [[48]]
            # The grant opens exactly that table: another ADS table stays closed.
            with pytest.raises(trino.TrinoError, match="Access Denied"):
                trino.query("SELECT count(*) FROM ads.ads_tax_monthly", tax)

            grants.revoke(gid, by="b", department="市商务局", reason="r", settings=settings)
            write_rules(settings)

            def denied() -> None:
                try:
                    trino.query(SQL, tax)
                except trino.TrinoError as exc:
                    assert "Access Denied" in str(exc), exc
                    return
                raise AssertionError("still readable after the revocation")

            _until(denied)
        finally:
            trino.stop_trino(settings)
        assert not alive(pid)

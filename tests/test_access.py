"""Department access grants on a real PostgreSQL started by the test (no JVM), and the Trino
rules generated from them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from catalog import grants, trino_rules
from tests.source_db import running_source_db

pytestmark = pytest.mark.stack

UTC = dt.UTC


@pytest.fixture(scope="module")
def settings():
    with running_source_db() as base:
        yield base


def test_request_approve_revoke_with_history(settings):
    row = grants.request(
        "ads_trade_daily", department="市税务局", purpose="税源分析", by="赵六", settings=settings
    )
    gid = row["id"]
    assert row["status"] == "requested"
    assert grants.active_grants("市税务局", settings=settings) == []
    with pytest.raises(grants.AccessError, match="already has a pending request"):
        grants.request(
            "ads_trade_daily", department="市税务局", purpose="again", by="x", settings=settings
        )
    with pytest.raises(grants.UnknownProduct, match="unknown data product 'ads_nothing'"):
        grants.request("ads_nothing", department="市税务局", purpose="p", by="x", settings=settings)
    with pytest.raises(grants.UnknownProduct):  # a DWD table is not a data product
        grants.request(
            "dwd_pay_transaction", department="市税务局", purpose="p", by="x", settings=settings
        )
    # Only the owning department (市商务局 owns ads_trade_daily) decides.
    with pytest.raises(grants.AccessError, match="owned by 市商务局"):
        grants.approve(gid, by="赵六", department="市税务局", settings=settings)
    with pytest.raises(grants.AccessError, match="is requested: cannot move to revoked"):
        grants.revoke(gid, by="钱七", department="市商务局", reason="r", settings=settings)

    expires = dt.datetime.now(UTC) + dt.timedelta(days=30)
    approved = grants.approve(
        gid, by="钱七", department="市商务局", expires_at=expires, settings=settings
    )
    assert approved["status"] == "approved" and approved["decided_by"] == "钱七"
    with pytest.raises(grants.AccessError, match="is approved: cannot move to approved"):
        grants.approve(gid, by="钱七", department="市商务局", settings=settings)
    with pytest.raises(grants.AccessError, match="already has an active grant"):
        grants.request(
            "ads_trade_daily", department="市税务局", purpose="again", by="x", settings=settings
        )

    active = grants.active_grants("市税务局", settings=settings)
    assert [(g.id, g.product) for g in active] == [(gid, "ads_trade_daily")]
    # Expiry: not in force after it, in force before it.
    later = expires + dt.timedelta(seconds=1)
    assert grants.active_grants("市税务局", later, settings=settings) == []
    assert grants.active_grants("其他部门", settings=settings) == []

    grants.revoke(gid, by="钱七", department="市商务局", reason="项目结束", settings=settings)
    assert grants.active_grants("市税务局", settings=settings) == []
    with pytest.raises(grants.AccessError, match="is revoked"):
        grants.revoke(gid, by="钱七", department="市商务局", reason="again", settings=settings)

    events = grants.get(gid, settings=settings)["events"]
    assert [
        (e["from_status"], e["to_status"], e["actor"], e["actor_department"]) for e in events
    ] == [
        (None, "requested", "赵六", "市税务局"),
        ("requested", "approved", "钱七", "市商务局"),
        ("approved", "revoked", "钱七", "市商务局"),
    ]
    assert events[0]["reason"] == "税源分析" and events[2]["reason"] == "项目结束"
    # After the revocation the department may apply again.
    assert (
        grants.request(
            "ads_trade_daily", department="市税务局", purpose="续期", by="赵六", settings=settings
        )["id"]
        != gid
    )


def test_reject_needs_reason_and_past_expiry_refused(settings):
    gid = grants.request(
        "ads_tax_monthly", department="市统计局", purpose="月报", by="孙八", settings=settings
    )["id"]
    with pytest.raises(grants.AccessError, match="a reason"):
        grants.reject(gid, by="周九", department="市税务局", reason=" ", settings=settings)
    with pytest.raises(grants.AccessError, match="already past"):
        past = dt.datetime.now(UTC) - dt.timedelta(days=1)
        grants.approve(gid, by="周九", department="市税务局", expires_at=past, settings=settings)
    grants.reject(gid, by="周九", department="市税务局", reason="涉及纳税人隐私", settings=settings)
    with pytest.raises(grants.AccessError, match="is rejected: cannot move to approved"):
        grants.approve(gid, by="周九", department="市税务局", settings=settings)
    with pytest.raises(grants.GrantNotFound):
        grants.approve(999999, by="周九", department="市税务局", settings=settings)
    rejected = grants.list_requests(status="rejected", settings=settings)
    assert [(r["id"], r["decided_by"]) for r in rejected] == [(gid, "周九")]


def test_cli_request_approve_revoke_writes_trino_rules(settings, monkeypatch):
    from typer.testing import CliRunner

    from citylake.cli import app
    from citylake.settings import get_settings

    monkeypatch.setenv("CITYLAKE_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("CITYLAKE_SOURCE_DB__PORT", str(settings.source_db.port))
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        asked = runner.invoke(
            app,
            [
                "access", "request", "ads_fund_backflow_monthly", "--department", "市大数据中心",
                "--purpose", "驾驶舱", "--by", "吴十",
            ],
        )  # fmt: skip
        assert asked.exit_code == 0, asked.output
        gid = int(asked.output.split("#")[1].split(":")[0])
        refused = runner.invoke(
            app, ["access", "approve", str(gid), "--by", "吴十", "--department", "市大数据中心"]
        )
        assert refused.exit_code == 2 and "owned by 市商务局" in refused.output
        ok = runner.invoke(
            app,
            [
                "access", "approve", str(gid), "--by", "郑一", "--department", "市商务局",
                "--expires", "2099-12-31",
            ],
        )  # fmt: skip
        assert ok.exit_code == 0, ok.output
        assert "until 2100-01-01T00:00+08:00" in ok.output

        path = trino_rules.rules_path(get_settings())
        tables = json.loads(path.read_text())["tables"]
        assert {
            "user": "^dept_bigdata$",
            "catalog": "^lake$",
            "schema": "^ads$",
            "table": "^ads_fund_backflow_monthly$",
            "privileges": ["SELECT"],
        } in tables
        listed = runner.invoke(app, ["access", "list", "--active", "--json"])
        assert [r["id"] for r in json.loads(listed.output)] == [gid]

        revoked = runner.invoke(
            app,
            ["access", "revoke", str(gid), "--by", "郑一", "--department", "市商务局",
             "--reason", "到期前收回"],
        )  # fmt: skip
        assert revoked.exit_code == 0, revoked.output
        tables = json.loads(path.read_text())["tables"]
        assert not [t for t in tables if t.get("user") == "^dept_bigdata$"]
    finally:
        get_settings.cache_clear()


def test_the_access_rules_dag_closes_an_expired_grant_in_trino(settings, monkeypatch):
    """No one runs `citylake access` after an approval: the scheduled DAG's task alone drops the
    grant from Trino's rules once its expiry has passed."""
    import time

    from citylake.settings import get_settings
    from pipelines.orchestration import ACCESS_RULES_DAG, generate

    monkeypatch.setenv("CITYLAKE_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("CITYLAKE_SOURCE_DB__PORT", str(settings.source_db.port))
    get_settings.cache_clear()
    try:
        task = generate()[ACCESS_RULES_DAG].task_dict["write_rules"]
        gid = grants.request(
            "ads_fuel_inventory_check", department="市统计局", purpose="核查", by="王五",
            settings=settings,
        )["id"]  # fmt: skip
        expires = dt.datetime.now(UTC) + dt.timedelta(seconds=2)
        grants.approve(gid, by="孙二", department="市商务局", expires_at=expires, settings=settings)
        granted = {"user": "^dept_stats$", "table": "^ads_fuel_inventory_check$"}

        def in_rules() -> bool:
            path = task.python_callable()
            tables = json.loads(Path(path).read_text(encoding="utf-8"))["tables"]
            return any(granted.items() <= t.items() for t in tables)

        assert in_rules()
        time.sleep(max(0.0, (expires - dt.datetime.now(UTC)).total_seconds()) + 0.5)
        assert not in_rules()
    finally:
        get_settings.cache_clear()

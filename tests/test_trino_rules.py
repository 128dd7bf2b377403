"""Trino's access rules generated from grants (pure: no server)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from catalog.grants import Grant
from catalog.trino_rules import access_control_properties, rules, trino_user
from citylake.settings import Settings

EXPIRES = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)


def _settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path / "var")


def test_granted_tables_readable_everything_else_denied(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    active = [
        Grant(1, "ads_trade_daily", "市税务局", EXPIRES),
        Grant(2, "ads_tax_monthly", "市税务局", EXPIRES),
        Grant(3, "ads_trade_daily", "新设部门", EXPIRES),
    ]
    got = rules(active, settings)
    other = trino_user("新设部门", settings)
    assert other.startswith("dept_") and other.isascii() and len(other) == 15
    # The platform user first, with everything.
    assert got["catalogs"][0] == {"user": "^citylake$", "catalog": ".*", "allow": "all"}
    assert (
        got["tables"][0]["user"] == "^citylake$" and "OWNERSHIP" in got["tables"][0]["privileges"]
    )
    assert {(c["user"], c["catalog"], c["allow"]) for c in got["catalogs"][1:]} == {
        ("^dept_tax$", "^lake$", "read-only"),
        (f"^{other}$", "^lake$", "read-only"),
    }
    grants = {(t["user"], t["table"]) for t in got["tables"][1:-1]}
    assert grants == {
        ("^dept_tax$", "^ads_trade_daily$"),
        ("^dept_tax$", "^ads_tax_monthly$"),
        (f"^{other}$", "^ads_trade_daily$"),
    }
    assert all(
        t["privileges"] == ["SELECT"] and t["schema"] == "^ads$" for t in got["tables"][1:-1]
    )
    assert got["tables"][-1] == {"privileges": []}  # the catch-all: nothing


def test_no_grants_leaves_only_the_platform(tmp_path: Path) -> None:
    got = rules([], _settings(tmp_path))
    assert [c["user"] for c in got["catalogs"]] == ["^citylake$"]
    assert got["tables"] == [got["tables"][0], {"privileges": []}]


def test_access_control_properties_refresh(tmp_path: Path) -> None:
    props = access_control_properties(_settings(tmp_path))
    assert props["access-control.name"] == "file"
    assert props["security.refresh-period"] == "1s"
    assert props["security.config-file"].endswith("var/trino/access-rules.json")

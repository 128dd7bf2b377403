"""The data-product API on a real PostgreSQL (grants, tokens, audit) and ADS tables written by
delta-rs in the test's warehouse; requests through FastAPI's TestClient (lifespan included)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from catalog import grants
from citylake.settings import ApiSettings, Settings
from serving import tokens
from serving.app import create_app
from tests.ads_tables import trade_daily_rows, write_ads
from tests.source_db import running_source_db

pytestmark = pytest.mark.stack

TRADE = "/products/ads_trade_daily"


@pytest.fixture(scope="module")
def base() -> Iterator[Settings]:
    with running_source_db() as pg:
        settings = pg.model_copy(
            update={
                "warehouse": str(pg.var_dir / "lakehouse"),
                "api": ApiSettings(workers=1, audit_flush_seconds=0.1, version_check_seconds=0.2),
            }
        )
        write_ads(settings, "ads_trade_daily", trade_daily_rows(3))  # 72 rows
        yield settings


@pytest.fixture(scope="module")
def tax_token(base: Settings) -> str:
    return tokens.create("tax-app", "市税务局", settings=base)


def _client(settings: Settings, **kw) -> TestClient:
    return TestClient(create_app(settings), **kw)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _until(check, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _audit(settings: Settings, app: str) -> list[dict]:
    with grants.connect(settings) as conn:
        return conn.execute(
            "SELECT app, department, product, filters, rows, status FROM access.api_audit"
            " WHERE app IS NOT DISTINCT FROM %s ORDER BY id",
            [app],
        ).fetchall()


def test_auth_grant_paging_filters_revocation_and_audit(base: Settings, tax_token: str) -> None:
    with _client(base) as client:
        assert client.get(TRADE).status_code == 401
        assert client.get(TRADE, headers=_auth("clk_wrong")).status_code == 401
        refused = client.get(TRADE, headers=_auth(tax_token))
        assert refused.status_code == 403 and "no active grant" in refused.json()["detail"]
        assert client.get("/products/ads_nothing", headers=_auth(tax_token)).status_code == 404
        assert client.get("/products", headers=_auth(tax_token)).json()["products"] == []

        gid = grants.request(
            "ads_trade_daily", department="市税务局", purpose="p", by="a", settings=base
        )["id"]
        grants.approve(gid, by="b", department="市商务局", settings=base)
        # The grant cache lives at most a second.
        first = _until(lambda: _ok(client.get(TRADE, headers=_auth(tax_token))))
        assert (first["total"], first["limit"], first["offset"]) == (72, 100, 0)
        assert len(first["rows"]) == 72
        keys = [
            (r["biz_date"], r["district_code"], r["sector"], r["channel"]) for r in first["rows"]
        ]
        assert keys == sorted(keys)  # primary-key order: stable pages
        listed = client.get("/products", headers=_auth(tax_token)).json()["products"]
        assert [p["name"] for p in listed] == ["ads_trade_daily"]
        assert "biz_date_from" in listed[0]["filters"]

        page = _ok(
            client.get(
                TRADE,
                params={"biz_date_from": "2024-11-02", "district_code": "431103", "limit": 4},
                headers=_auth(tax_token),
            )
        )
        assert page["total"] == 12 and len(page["rows"]) == 4  # 2 days x 6 rows of 431103
        assert {r["district_code"] for r in page["rows"]} == {"431103"}
        assert min(r["biz_date"] for r in page["rows"]) == "2024-11-02"
        rest = _ok(
            client.get(
                TRADE,
                params={
                    "biz_date_from": "2024-11-02",
                    "district_code": "431103",
                    "limit": 4,
                    "offset": 8,
                },
                headers=_auth(tax_token),
            )
        )
        assert len(rest["rows"]) == 4 and rest["rows"][-1]["biz_date"] == "2024-11-03"
        one_day = _ok(
            client.get(
                TRADE,
                params={"biz_date": "2024-11-01", "biz_date_to": "2024-11-01"},
                headers=_auth(tax_token),
            )
        )
        assert one_day["total"] == 24
        too_big = client.get(TRADE, params={"limit": 100_000}, headers=_auth(tax_token))
        assert too_big.status_code == 422

        # A new Delta version replaces the snapshot (checked every 0.2 s here).
        write_ads(base, "ads_trade_daily", trade_daily_rows(1), mode="append")

        def grown() -> None:
            assert _ok(client.get(TRADE, headers=_auth(tax_token)))["total"] == 96

        _until(grown)

        grants.revoke(gid, by="b", department="市商务局", reason="r", settings=base)
        started = time.monotonic()
        _until(lambda: _status(client.get(TRADE, headers=_auth(tax_token)), 403), timeout=3)
        assert time.monotonic() - started < 1.5  # revocation within about a second

    # The lifespan's end flushed the rest of the audit.
    calls = _audit(base, "tax-app")
    statuses = [c["status"] for c in calls]
    assert statuses[:2] == [403, 404] and statuses[-1] == 403 and 200 in statuses
    filtered = [c for c in calls if c["filters"].get("district_code") == "431103"]
    assert [(c["rows"], c["filters"]["biz_date_from"]) for c in filtered] == [
        (4, "2024-11-02"),
        (4, "2024-11-02"),
    ]
    assert all(c["department"] == "市税务局" for c in calls)
    assert {c["status"] for c in _audit(base, None)} == {401}  # no token: no app


def _ok(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def _status(response, code: int) -> None:
    assert response.status_code == code, response.text


def test_rate_limits_answer_429_with_retry_after(base: Settings) -> None:
    token = tokens.create("busy-app", "市大数据中心", settings=base)
    gid = grants.request(
        "ads_trade_daily", department="市大数据中心", purpose="p", by="a", settings=base
    )["id"]
    grants.approve(gid, by="b", department="市商务局", settings=base)
    settings = base.model_copy(
        update={"api": base.api.model_copy(update={"app_rate": 0.5, "app_burst": 3})}
    )
    with _client(settings) as client:
        codes = [client.get(TRADE, headers=_auth(token)).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        limited = client.get(TRADE, headers=_auth(token))
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    settings = base.model_copy(
        update={"api": base.api.model_copy(update={"product_rate": 0.5, "product_burst": 2})}
    )
    with _client(settings) as client:
        codes = [client.get(TRADE, headers=_auth(token)).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        # The product's bucket, not the app's, stopped it: another product still answers.
        assert client.get("/products/ads_tax_monthly", headers=_auth(token)).status_code == 403


def test_client_allow_and_deny_lists(base: Settings, tax_token: str) -> None:
    api = base.api.model_copy(update={"allow_cidrs": ["10.0.0.0/8"], "deny_cidrs": ["10.9.0.0/16"]})
    settings = base.model_copy(update={"api": api})
    app = create_app(settings)
    with TestClient(app, client=("10.1.2.3", 5000)) as inside:
        assert inside.get(TRADE, headers=_auth(tax_token)).status_code == 403  # no grant now
        assert inside.get(TRADE).status_code == 401  # allowed network, no token
    with TestClient(app, client=("10.9.1.1", 5000)) as denied:
        refused = denied.get(TRADE)
        assert refused.status_code == 403 and "client address" in refused.json()["detail"]
    with TestClient(app, client=("192.168.1.1", 5000)) as outside:
        assert outside.get("/products").status_code == 403


def test_openapi_documents_each_product_and_its_filters(base: Settings) -> None:
    with _client(base) as client:
        spec = client.get("/openapi.json").json()
        assert client.get("/docs").status_code == 200
    params = {p["name"] for p in spec["paths"][TRADE]["get"]["parameters"]}
    assert {
        "limit",
        "offset",
        "biz_date",
        "biz_date_from",
        "biz_date_to",
        "district_code",
    } <= params
    assert "/products/ads_tax_monthly" in spec["paths"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


def test_cli_token_create_prints_once_and_stores_hash(base: Settings, monkeypatch) -> None:
    from typer.testing import CliRunner

    from citylake.cli import app
    from citylake.settings import get_settings

    monkeypatch.setenv("CITYLAKE_VAR_DIR", str(base.var_dir))
    monkeypatch.setenv("CITYLAKE_SOURCE_DB__PORT", str(base.source_db.port))
    get_settings.cache_clear()
    try:
        made = CliRunner().invoke(
            app, ["api", "token", "create", "--app", "cli-app", "--department", "市统计局"]
        )
        assert made.exit_code == 0, made.output
        token = made.stdout.strip().splitlines()[0]
        assert token.startswith("clk_")
    finally:
        get_settings.cache_clear()
    with grants.connect(base) as conn:
        row = conn.execute(
            "SELECT department, token_sha256 FROM access.app_token WHERE app = 'cli-app'"
        ).fetchone()
    assert row == {"department": "市统计局", "token_sha256": tokens.digest(token)}
    assert token not in str(row)

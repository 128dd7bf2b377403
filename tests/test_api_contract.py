"""schemathesis against the data-product API's own OpenAPI: no input makes it answer 5xx.

Calls go in-process through ASGI, with a token whose department holds a grant (so the
generated filters and pages reach the data path), on a real PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from catalog import grants
from citylake.settings import ApiSettings
from serving import tokens
from serving.app import create_app
from tests.ads_tables import trade_daily_rows, write_ads
from tests.source_db import running_source_db

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def api() -> Iterator[tuple]:
    """The schema read from the running app, and a token of a department with a grant."""
    with running_source_db() as pg:
        base = pg.model_copy(
            update={
                "warehouse": str(pg.var_dir / "lakehouse"),
                # Generous limits: the contract test probes inputs, not the rate limits.
                "api": ApiSettings(workers=1, app_rate=1e6, app_burst=10**6),
            }
        )
        write_ads(base, "ads_trade_daily", trade_daily_rows(2))
        token = tokens.create("contract-app", "市税务局", settings=base)
        gid = grants.request(
            "ads_trade_daily", department="市税务局", purpose="p", by="a", settings=base
        )["id"]
        grants.approve(gid, by="b", department="市商务局", settings=base)
        app = create_app(base)
        with TestClient(app):  # runs the lifespan: grants, tokens and snapshots kept fresh
            yield schemathesis.openapi.from_asgi("/openapi.json", app), token


def test_no_server_errors(api) -> None:
    # schemathesis' pytest plugin (from_fixture) does not run under pytest 9: hypothesis
    # drives each operation's strategy here instead.
    schema, token = api
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9  # /products, one route per ADS product, the fallback
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def probe(case) -> None:
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            assert response.status_code < 500, (case.path, case.query, response.text)
            anonymous = case.call(headers={"Authorization": "Bearer clk_nobody"})
            assert anonymous.status_code in (401, 403, 404, 422), anonymous.text

        probe()

"""The government data-sharing exchange: the stand-in server (fast tier, in-process) and the
resumable client pulling into ODS against the real server process (spark tier)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyspark.sql.functions as F
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from citylake import processes
from citylake.settings import Settings, get_settings
from pipelines import tables
from pipelines.channels import exchange, staging
from pipelines.channels.exchange import ExchangeError, fetch_page, pull_exchange
from sources.gov_exchange import (
    SERVICE,
    create_app,
    database_path,
    publish,
    start_exchange,
    stop_exchange,
)

FEED = "gov_enterprise_registry"
PATH = f"/api/v1/feeds/{FEED}"
T0 = dt.datetime(2024, 11, 5, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def registry(
    n: int, *, first: int = 0, at: dt.datetime = T0, version: int = 1
) -> list[dict[str, str | None]]:
    """`n` enterprises (numbers first…), one minute apart from `at`, as the registry sends them."""
    return [
        {
            "uscc": f"91431100MA4L{i:05d}X",
            "name": f"永州市第{i}商贸有限公司",
            "legal_rep_id": None,
            "legal_rep_name": f"张{i}",
            "reg_capital_wan": f"{1000 * version + i}",
            "established_date": "2019-03-01",
            "status": "存续",
            "industry_code": "5212",
            "district_code": "431102",
            "address": f"零陵区南津路{i}号",
            "scale": "小",
            "above_designated_size": "N",
            "updated_at": (at + dt.timedelta(minutes=k)).isoformat(),
        }
        for k, i in enumerate(range(first, first + n))
    ]


def _auth(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.exchange.token.get_secret_value()}"}


@pytest.fixture
def api(lake: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(lake), headers=_auth(lake)) as client:
        yield client


# ---------------------------------------------------------------- the server (fast tier)


def test_every_request_needs_the_token(lake: Settings, api: TestClient) -> None:
    publish(FEED, registry(3), lake)
    anonymous = TestClient(create_app(lake))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        for response in (
            anonymous.get(PATH, headers=headers),
            anonymous.get(PATH, params={"page": 0}, headers=headers),  # 401 comes before 422
            anonymous.get("/api/v1/feeds/gov_nope", headers=headers),  # and before 404
            anonymous.post(PATH, json={"records": registry(1)}, headers=headers),
        ):
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
    assert api.get(PATH).json()["total"] == 3


def test_only_the_gov_feeds_are_published(api: TestClient) -> None:
    for feed in ("gov_enterprise_registry", "gov_tax_monthly", "gov_social_insurance"):
        assert api.get(f"/api/v1/feeds/{feed}").status_code == 200
    for feed in ("gov_nope", "pay_transactions"):
        response = api.get(f"/api/v1/feeds/{feed}")
        assert response.status_code == 404
        assert "gov_tax_monthly" in response.json()["detail"]


@pytest.mark.parametrize(
    "params",
    [
        {"page": 0},
        {"page": "two"},
        {"page_size": 0},
        {"page_size": 50_001},
        {"updated_since": "yesterday"},
        {"updated_since": "2024/11/05"},
    ],
)
def test_bad_parameters_are_422(api: TestClient, params: dict[str, Any]) -> None:
    assert api.get(PATH, params=params).status_code == 422


def test_pages_cover_the_change_feed_in_updated_at_order(lake: Settings, api: TestClient) -> None:
    records = registry(120)
    published = publish(FEED, reversed(records), lake)  # a batch lands in change order
    assert published == records
    pages = [api.get(PATH, params={"page": p, "page_size": 50}).json() for p in (1, 2, 3, 4)]
    assert [len(p["records"]) for p in pages] == [50, 50, 20, 0]
    assert [p["has_more"] for p in pages] == [True, True, False, False]
    assert {p["total"] for p in pages} == {120}
    assert [p["page"] for p in pages] == [1, 2, 3, 4]
    assert pages[0]["updated_since"] is None and pages[0]["feed"] == FEED
    assert [r for p in pages for r in p["records"]] == records
    assert api.get(PATH).json()["page_size"] == lake.exchange.page_size  # the default


def test_republishing_unchanged_records_is_a_noop(lake: Settings, api: TestClient) -> None:
    records = registry(5)
    assert len(publish(FEED, records, lake)) == 5
    assert publish(FEED, records, lake) == []  # a department re-sends the same data
    changed = {**records[2], "status": "注销"}
    assert [r["uscc"] for r in publish(FEED, [*records, changed], lake)] == [records[2]["uscc"]]
    assert api.get(PATH).json()["total"] == 6


def test_updated_since_is_strictly_after(lake: Settings, api: TestClient) -> None:
    records = publish(FEED, registry(120), lake)
    since = records[59]["updated_at"]
    assert since == "2024-11-05T09:59:00+08:00"
    answer = api.get(PATH, params={"updated_since": since}).json()
    assert answer["total"] == 60 and answer["records"] == records[60:]
    assert answer["updated_since"] == since
    # The same instant unescaped in a URL (the + arrives as a space), in UTC, without offset.
    for same in (
        "2024-11-05T09:59:00 08:00",
        "2024-11-05T01:59:00+00:00",
        "2024-11-05T01:59:00Z",
        "2024-11-05 09:59:00",
    ):
        assert api.get(PATH, params={"updated_since": same}).json()["records"] == records[60:]
    assert api.get(PATH, params={"updated_since": records[-1]["updated_at"]}).json() == {
        "feed": FEED,
        "updated_since": records[-1]["updated_at"],
        "page": 1,
        "page_size": lake.exchange.page_size,
        "total": 0,
        "has_more": False,
        "records": [],
    }


def test_each_version_gets_a_strictly_increasing_updated_at(lake: Settings) -> None:
    first = publish(FEED, registry(3), lake)
    assert [r["updated_at"] for r in first] == [  # valid and in order: the producer's own
        "2024-11-05T09:00:00+08:00",
        "2024-11-05T09:01:00+08:00",
        "2024-11-05T09:02:00+08:00",
    ]
    late = registry(2, at=T0 - dt.timedelta(days=1))  # older than what the exchange holds
    tied = registry(2, first=10, at=T0 + dt.timedelta(minutes=2))  # ties the newest version
    undated = registry(2, first=20)
    undated[0]["updated_at"], undated[1]["updated_at"] = "2024年11月5日", None
    before = dt.datetime.now(dt.UTC)
    stamped = publish(FEED, [*late, *tied, *undated], lake)
    times = [dt.datetime.fromisoformat(r["updated_at"]) for r in first + stamped]
    assert all(a < b for a, b in itertools.pairwise(times))
    assert times[3] == times[2] + dt.timedelta(microseconds=1)
    assert stamped[-2]["uscc"] == undated[0]["uscc"] and times[-2] >= before  # publication time
    assert all(r["updated_at"].endswith("+08:00") for r in stamped)


def test_offsets_stay_put_while_new_versions_are_published(lake: Settings, api: TestClient) -> None:
    """A version changed after page 1 was read appends at the end instead of shifting page 2."""
    records = publish(FEED, registry(100), lake)
    page1 = api.get(PATH, params={"page": 1, "page_size": 50}).json()
    changed = publish(FEED, registry(10, at=T0, version=2), lake)  # keys of page 1, older times
    page2 = api.get(PATH, params={"page": 2, "page_size": 50}).json()
    page3 = api.get(PATH, params={"page": 3, "page_size": 50}).json()
    assert page1["records"] + page2["records"] == records
    assert page3["records"] == changed and not page3["has_more"]
    assert [r["uscc"] for r in changed] == [r["uscc"] for r in records[:10]]


def test_publishing_checks_the_columns_unless_schema_drift_is_wanted(
    lake: Settings, api: TestClient
) -> None:
    drifted = registry(1)[0] | {"remark": "新增字段"}
    with pytest.raises(ValueError, match=r"remark"):
        publish(FEED, [drifted], lake)
    with pytest.raises(KeyError, match="does not publish"):
        publish("pay_transactions", registry(1), lake)
    assert api.post(PATH, json={"records": [drifted]}).status_code == 422
    assert publish(FEED, [drifted], lake, strict=False)[0]["remark"] == "新增字段"
    assert publish(FEED, [], lake) == []
    answer = api.post(PATH, json={"records": registry(2, first=5)}).json()
    assert answer["published"] == 2 and answer["last_updated_at"] == "2024-11-05T09:01:00+08:00"
    assert [r["uscc"] for r in api.get(PATH).json()["records"]][1:] == [
        "91431100MA4L00005X",
        "91431100MA4L00006X",
    ]
    assert database_path(lake).is_relative_to(lake.var_dir)


# ---------------------------------------------------------------- the client's HTTP (fast tier)


def _mock_client(lake: Settings, answers: list[Any]) -> tuple[httpx.Client, list[str]]:
    """A client whose requests get `answers` in turn (a status code or an exception)."""
    asked: list[str] = []

    def reply(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if answer == 200:
            body = {"feed": FEED, "page": 1, "has_more": False, "records": registry(2)}
            return httpx.Response(200, json=body)
        return httpx.Response(answer, json={"detail": "no"})

    return exchange.exchange_client(lake, transport=httpx.MockTransport(reply)), asked


def test_transient_failures_are_retried_then_a_clear_error(
    lake: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exchange, "RETRY_DELAYS", (0.0, 0.0, 0.0))
    client, asked = _mock_client(lake, [503, httpx.ConnectError("refused"), 200])
    page = fetch_page(client, FEED, updated_since=None, page=1, page_size=50)
    assert len(asked) == 3 and len(page.records) == 2 and not page.has_more
    client, asked = _mock_client(lake, [httpx.ReadTimeout("slow")] * 4)
    with pytest.raises(ExchangeError, match=r"after 4 attempts .* ReadTimeout"):
        fetch_page(client, FEED, updated_since=None, page=1, page_size=50)


@pytest.mark.parametrize(("status", "says"), [(401, "refused the token"), (404, "not publish")])
def test_a_refusal_is_a_clear_error_at_once(lake: Settings, status: int, says: str) -> None:
    client, asked = _mock_client(lake, [status])
    with pytest.raises(ExchangeError, match=says) as raised:
        fetch_page(client, FEED, updated_since=None, page=1, page_size=50)
    assert raised.value.status == status and len(asked) == 1
    assert lake.exchange.token.get_secret_value() not in str(raised.value)


def test_the_client_speaks_the_servers_wire_format(lake: Settings, api: TestClient) -> None:
    records = publish(FEED, registry(7), lake)
    since = records[1]["updated_at"]
    page = fetch_page(api, FEED, updated_since=since, page=2, page_size=2)
    assert page.records == records[4:6] and page.has_more and page.page == 2
    query = parse_qs(urlsplit(page.url).query)
    assert query == {"updated_since": [since], "page": ["2"], "page_size": ["2"]}


# ---------------------------------------------------------------- pulling into ODS (spark tier)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served(lake: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The exchange running as its own process on a free loopback port, pages of 50."""
    monkeypatch.setenv("CITYLAKE_EXCHANGE__URL", f"http://127.0.0.1:{_free_port()}")
    monkeypatch.setenv("CITYLAKE_EXCHANGE__PAGE_SIZE", "50")
    get_settings.cache_clear()
    settings = get_settings()
    svc = start_exchange(settings)
    pid = svc.pid
    assert pid is not None and database_path(settings).parent.is_relative_to(settings.var_dir)
    yield settings
    assert stop_exchange(settings)
    assert not processes.service(SERVICE, settings).running and not svc.pid_file.exists()
    with pytest.raises(ProcessLookupError):  # the very process it started is gone
        os.kill(pid, 0)


def _log(spark, settings: Settings) -> list[dict[str, Any]]:
    rows = tables.read(spark, tables.contract("ods_delivery_log"), settings=settings)
    rows = rows.where(F.col("feed") == FEED).orderBy("finished_at").collect()
    return [r.asDict() | {"cursor": json.loads(r["cursor"])} for r in rows]


def _ods(spark, settings: Settings):
    return tables.read(spark, tables.feed_contract(FEED), settings=settings)


@pytest.fixture
def fetched(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Page numbers the client fetches from the exchange, in order."""
    pages: list[int] = []
    real = exchange.fetch_page

    def counting(*args: Any, **kwargs: Any) -> exchange.Page:
        pages.append(kwargs["page"])
        return real(*args, **kwargs)

    monkeypatch.setattr(exchange, "fetch_page", counting)
    return pages


@pytest.mark.spark
def test_pulls_load_every_version_once_and_a_repull_is_a_noop(
    spark, served: Settings, fetched: list[int]
) -> None:
    records = registry(120)
    records[9]["remark"] = records[74]["remark"] = "新增字段"  # drift: ODS must quarantine them
    published = publish(FEED, records, served, strict=False)

    first = pull_exchange(FEED, settings=served)
    assert fetched == [1, 2, 3]
    assert [(r.delivered, r.loaded, r.quarantined) for r in first] == [
        (50, 49, 1),
        (50, 49, 1),
        (20, 20, 0),
    ]
    assert all(r.reconciles and not r.already_ingested for r in first)
    log = _log(spark, served)
    assert [row["cursor"] for row in log] == [
        {
            "updated_since": None,
            "page": p,
            "page_size": 50,
            "has_more": p < 3,
            "max_updated_at": published[min(50 * p, 120) - 1]["updated_at"],
        }
        for p in (1, 2, 3)
    ]
    assert {row["channel"] for row in log} == {"exchange"}
    assert [row["source"] for row in log] == [r.source for r in first]
    assert all(f"page={p}&page_size=50" in r.source for p, r in zip((1, 2, 3), first, strict=True))
    assert _ods(spark, served).count() == 118
    quarantine = tables.read(spark, tables.contract("ods_quarantine"), settings=served).collect()
    # Page/offset of each quarantined record: record 10 is offset 10 of page 1, 75 is 25 of 2.
    assert sorted((q.source_file, q.source_line, q.reason_code) for q in quarantine) == [
        (first[0].source, 10, "malformed_row"),
        (first[1].source, 25, "malformed_row"),
    ]

    # New versions of 30 enterprises arrive in the next pull, and nothing older comes again.
    changed = publish(FEED, registry(30, at=T0 + dt.timedelta(days=1), version=2), served)
    fetched.clear()
    second = pull_exchange(FEED, settings=served)
    assert fetched == [1] and [(r.delivered, r.loaded) for r in second] == [(30, 30)]
    cursor = _log(spark, served)[-1]["cursor"]
    assert cursor == {
        "updated_since": published[-1]["updated_at"],
        "page": 1,
        "page_size": 50,
        "has_more": False,
        "max_updated_at": changed[-1]["updated_at"],
    }
    ods = _ods(spark, served)
    assert ods.count() == 148
    assert ods.where(F.col("reg_capital_wan").startswith("2")).count() == 30  # version 2

    # Nothing new: no delivery, no log row, no ODS row.
    log_rows = len(_log(spark, served))
    assert pull_exchange(FEED, settings=served) == []
    assert len(_log(spark, served)) == log_rows and _ods(spark, served).count() == 148

    bad_token = served.exchange.model_copy(update={"token": SecretStr("not-the-token")})
    wrong = served.model_copy(update={"exchange": bad_token})
    publish(FEED, registry(1, first=500, at=T0 + dt.timedelta(days=2)), served)
    with pytest.raises(ExchangeError, match="refused the token") as raised:
        pull_exchange(FEED, settings=wrong)
    assert raised.value.status == 401 and len(_log(spark, served)) == log_rows


@pytest.mark.spark
@pytest.mark.parametrize("crash", ["staged", "committed"])
def test_a_crash_after_page_two_resumes_at_page_three(
    spark, served: Settings, fetched: list[int], monkeypatch: pytest.MonkeyPatch, crash: str
) -> None:
    """Crash once page 2 is staged (before its ingest) or once it is committed: the rerun
    ingests what is staged without fetching it again and continues at page 3."""
    published = publish(FEED, registry(120), served)
    real = staging.ingest_batch
    calls = 0

    def crashing(batch: staging.StagedBatch, settings: Settings | None = None):
        nonlocal calls
        calls += 1
        if calls == 2 and crash == "staged":
            raise RuntimeError("crash before ingesting page 2")
        result = real(batch, settings)
        if calls == 2:
            raise RuntimeError("crash after committing page 2")
        return result

    with monkeypatch.context() as patch:
        patch.setattr(staging, "ingest_batch", crashing)
        with pytest.raises(RuntimeError, match="crash"):
            pull_exchange(FEED, settings=served)
    assert fetched == [1, 2]
    committed = [row["cursor"]["page"] for row in _log(spark, served)]
    staged = [b.cursor["page"] for b in staging.pending(FEED, served)]
    assert (committed, staged) == (([1], [2]) if crash == "staged" else ([1, 2], []))

    fetched.clear()
    rerun = pull_exchange(FEED, settings=served)
    assert fetched == [3]
    assert [r.delivered for r in rerun] == ([50, 20] if crash == "staged" else [20])
    log = _log(spark, served)
    assert [row["cursor"]["page"] for row in log] == [1, 2, 3]
    assert log[-1]["cursor"]["max_updated_at"] == published[-1]["updated_at"]
    assert all(row["loaded"] + row["quarantined"] == row["delivered"] for row in log)
    ods = _ods(spark, served)
    assert ods.count() == 120 and ods.select("uscc").distinct().count() == 120
    assert staging.pending(FEED, served) == []
    assert pull_exchange(FEED, settings=served) == [] and fetched == [3, 1]

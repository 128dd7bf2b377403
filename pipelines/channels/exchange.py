"""Pulling ``gov_*`` feeds from the government data-sharing exchange, one committed page at a time.

The exchange serves each feed as a change feed in ``updated_at`` order (see
``sources/gov_exchange.py`` for the wire format). A *run* reads the versions after one
``updated_since`` S page by page; every page is staged and ingested as one delivery whose
cursor records where the run stands::

    {"updated_since": S, "page": p, "page_size": m, "has_more": bool, "max_updated_at": M}

M is the newest ``updated_at`` the run has seen. The cursor commits in the same
``ods_delivery_log`` row as the page's data, so the watermark never runs ahead of the data. The
next pull first ingests pages that were staged but not ingested (never fetching them again),
then continues at page p+1 of S with the same page size while the last page said ``has_more``;
otherwise it starts a new run with S = M, which holds exactly the versions not yet committed
because the exchange's ``updated_at`` is strictly increasing in publication order. A page
fetched but not yet staged when a crash hits was never committed: it is simply fetched again.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from citylake.settings import Settings, get_settings
from pipelines import tables
from pipelines.channels import staging
from pipelines.ingest import DeliveryResult

log = logging.getLogger(__name__)

# Seconds to wait before each retry of a failed request (connection error, timeout, 5xx, 429).
RETRY_DELAYS: Sequence[float] = (0.5, 1.0, 2.0, 4.0, 8.0)
_CST = dt.timezone(dt.timedelta(hours=8))


class ExchangeError(RuntimeError):
    """The exchange refused or failed a request; nothing of that page was committed."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Page:
    url: str  # the request as sent (the token travels in a header, never here)
    page: int
    has_more: bool
    records: list[dict[str, Any]]


@dataclass(frozen=True)
class _Position:
    updated_since: str | None
    page: int
    page_size: int
    max_updated_at: str | None  # newest updated_at committed by this run (or before it)


def exchange_client(
    settings: Settings | None = None, *, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    settings = settings or get_settings()
    return httpx.Client(
        base_url=settings.exchange.url,
        headers={"Authorization": f"Bearer {settings.exchange.token.get_secret_value()}"},
        timeout=settings.exchange.timeout_seconds,
        transport=transport,
    )


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail) if detail else response.text[:300]


def _page(response: httpx.Response, feed: str, page: int) -> Page:
    url = str(response.request.url)
    status = response.status_code
    if status == 401:
        raise ExchangeError(
            f"the exchange at {response.request.url.host}:{response.request.url.port} refused "
            f"the token for {feed} (HTTP 401): check exchange.token (CITYLAKE_EXCHANGE__TOKEN)",
            status,
        )
    if status == 404:
        raise ExchangeError(
            f"the exchange does not publish {feed} (HTTP 404 for {url}): {_detail(response)}",
            status,
        )
    if status != 200:
        raise ExchangeError(f"the exchange rejected {url} (HTTP {status}): {_detail(response)}")
    try:
        body = response.json()
    except ValueError:
        raise ExchangeError(f"the exchange answered {url} with something not JSON") from None
    records = body.get("records") if isinstance(body, dict) else None
    if (
        not isinstance(records, list)
        or not isinstance(body.get("has_more"), bool)
        or body.get("page") != page
    ):
        raise ExchangeError(f"the exchange's answer to {url} lacks records, has_more or page")
    for offset, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise ExchangeError(f"record {offset} of {url} is not a JSON object")
    return Page(url, page, body["has_more"], records)


def fetch_page(
    client: httpx.Client,
    feed: str,
    *,
    updated_since: str | None,
    page: int,
    page_size: int,
) -> Page:
    """One page of `feed`'s versions after `updated_since`; transient failures are retried
    (`RETRY_DELAYS`), a refusal (401, 404, other 4xx) is an `ExchangeError` at once."""
    params: dict[str, str | int] = {}
    if updated_since is not None:
        params["updated_since"] = updated_since
    params |= {"page": page, "page_size": page_size}
    last = ""
    for delay in (*RETRY_DELAYS, None):
        try:
            response = client.get(f"/api/v1/feeds/{feed}", params=params)
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code < 500 and response.status_code != 429:
                return _page(response, feed, page)
            last = f"HTTP {response.status_code}: {_detail(response)}"
        if delay is None:
            break
        log.warning("exchange %s page %d failed (%s); retrying in %.1f s", feed, page, last, delay)
        time.sleep(delay)
    raise ExchangeError(
        f"the exchange at {client.base_url} did not serve {feed} page {page} after "
        f"{len(RETRY_DELAYS) + 1} attempts (is it running?); last error: {last}"
    )


def _instant(text: object) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=_CST)


def _newest(records: Sequence[Mapping[str, Any]], current: str | None) -> str | None:
    """The latest updated_at among `records` and `current`, as the exchange wrote it."""
    best, best_at = current, _instant(current)
    for record in records:
        at = _instant(record.get("updated_at"))
        if at is not None and (best_at is None or at > best_at):
            best, best_at = record["updated_at"], at
    return best


def _resume_at(cursor: staging.Cursor | None, settings: Settings) -> _Position:
    if cursor is None:  # first pull: the whole feed
        return _Position(None, 1, settings.exchange.page_size, None)
    if cursor["has_more"]:  # same run, same page size: offsets are stable within a run
        return _Position(
            cursor["updated_since"],
            cursor["page"] + 1,
            cursor["page_size"],
            cursor["max_updated_at"],
        )
    return _new_run(cursor["max_updated_at"], settings)


def _new_run(since: str | None, settings: Settings) -> _Position:
    return _Position(since, 1, settings.exchange.page_size, since)


def pull_exchange(
    feed: str,
    *,
    business_date: dt.date | None = None,
    settings: Settings | None = None,
) -> list[DeliveryResult]:
    """Pull `feed`'s new versions from the exchange, each page one delivery ingested exactly
    once; returns the deliveries of this pull ([] when nothing is new)."""
    settings = settings or get_settings()
    ods = tables.feed_contract(feed, settings)
    assert ods.feed is not None
    if ods.feed.channel != "exchange":
        raise ValueError(f"{feed} arrives through the {ods.feed.channel} channel, not the exchange")
    bdate = business_date or dt.datetime.now(ZoneInfo(settings.timezone)).date()
    results = staging.ingest_pending(feed, settings)  # a staged page is never fetched again
    at = _resume_at(staging.last_cursor(feed, settings), settings)
    with exchange_client(settings) as client:
        while True:
            got = fetch_page(
                client, feed, updated_since=at.updated_since, page=at.page, page_size=at.page_size
            )
            if not got.records:
                if at.page == 1:
                    break  # nothing new: commit nothing
                # Promised more, sent none: the change feed shrank (an exchange reset?). Every
                # version up to M is committed, so a new run after M loses nothing.
                log.warning("%s came back empty after has_more; new run after %s", got.url, at)
                at = _new_run(at.max_updated_at, settings)
                continue
            newest = _newest(got.records, at.max_updated_at)
            cursor = {
                "updated_since": at.updated_since,
                "page": at.page,
                "page_size": at.page_size,
                "has_more": got.has_more,
                "max_updated_at": newest,
            }
            batch = staging.stage(
                feed,
                got.records,
                channel="exchange",
                source=got.url,
                cursor=cursor,
                business_date=bdate,
                settings=settings,
            )
            assert batch is not None  # the page has records
            results.append(staging.ingest_batch(batch, settings))
            if not got.has_more:
                break
            at = _Position(at.updated_since, at.page + 1, at.page_size, newest)
    return results

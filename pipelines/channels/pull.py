"""Pull feeds from their channel as their contracts declare it (database or exchange)."""

from __future__ import annotations

import datetime as dt

from citylake.settings import Settings, get_settings
from pipelines import tables
from pipelines.ingest import DeliveryResult

PULLED_CHANNELS = ("database", "exchange")


class PullError(RuntimeError):
    pass


def pulled_feeds(settings: Settings | None = None) -> list[str]:
    """Every feed whose contract says the platform pulls it, in contract order."""
    return [
        c.feed.name
        for c in tables.contracts(settings).values()
        if c.feed is not None and c.feed.channel in PULLED_CHANNELS
    ]


def pull_feed(
    feed: str,
    *,
    full: bool = False,
    business_date: dt.date | None = None,
    settings: Settings | None = None,
) -> list[DeliveryResult]:
    settings = settings or get_settings()
    ods = tables.feed_contract(feed, settings)
    assert ods.feed is not None
    if ods.feed.channel == "database":
        from pipelines.channels.database import pull_database

        return pull_database(feed, full=full, business_date=business_date, settings=settings)
    if ods.feed.channel == "exchange":
        if full:
            raise PullError(f"{feed}: the exchange serves changes only; there is no full reload")
        from pipelines.channels.exchange import pull_exchange

        return pull_exchange(feed, business_date=business_date, settings=settings)
    raise PullError(f"{feed} arrives as files in the landing zone: use `citylake ingest`")


def pull_feeds(
    feeds: list[str] | None = None,
    *,
    full: bool = False,
    business_date: dt.date | None = None,
    settings: Settings | None = None,
) -> list[DeliveryResult]:
    """Pull `feeds` (default: every pulled feed) one after another.

    `full` reloads the database feeds; the exchange serves changes only, so its feeds are
    pulled incrementally as always.
    """
    settings = settings or get_settings()
    results: list[DeliveryResult] = []
    for feed in feeds or pulled_feeds(settings):
        ods = tables.feed_contract(feed, settings)
        reload = full and ods.feed is not None and ods.feed.channel == "database"
        results += pull_feed(feed, full=reload, business_date=business_date, settings=settings)
    return results

"""The feed deliveries (dwd_feed_delivery): the delivery log's rows, in one file.

Ingestion commits each delivery's log row on its own, so the log holds a file per delivery
(341 after a month of the city's eleven feeds, a year 4,000 and more). The quality scorecard
reads the deliveries several times in one query, and Spark opened every file each time: 0.8 s
a read warm, 11.5 s cold. Every build rewrites this copy before the models, in one delta-rs
commit and only when a delivery came in. The scorecard's rows record the log's version (the root
of their lineage, `input_roots`), not the copy's.
"""

from __future__ import annotations

from citylake.settings import Settings
from pipelines import tables

FEED_DELIVERY = "dwd_feed_delivery"
DELIVERY_LOG = "ods_delivery_log"


def write_feed_deliveries(settings: Settings, version: int | None = None) -> bool:
    """Rewrite dwd_feed_delivery from the delivery log (at `version`: the one the scorecard's
    rows will name; default the current) when it has a new delivery; whether it was written."""
    log = tables.contract(DELIVERY_LOG, settings)
    rows = tables.read_native_current(log, settings=settings, version=version)
    return tables.replace_small_native(rows, tables.contract(FEED_DELIVERY, settings), settings)

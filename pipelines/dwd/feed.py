"""The feed dimension (dwd_dim_feed), one row per feed from its ODS contract's `feed:` block.

The contracts are the source: the dimension is rewritten from them by every build, in one
delta-rs commit and only when its rows changed, so its Delta version moves with the contracts.
"""

from __future__ import annotations

import pyarrow as pa

from citylake.settings import Settings
from pipelines import tables
from warehouse_layers.contract import TableContract

DIM_FEED = "dwd_dim_feed"


def feed_rows(contracts: dict[str, TableContract]) -> pa.Table:
    """dwd_dim_feed's rows, by feed name."""
    feeds = {t.feed.name: (t, t.feed) for t in contracts.values() if t.feed is not None}
    rows = []
    for name in sorted(feeds):
        table, feed = feeds[name]
        rows.append(
            {
                "feed": feed.name,
                "ods_table": table.name,
                "owner_department": table.owner_department,
                "channel": feed.channel,
                "schedule": feed.schedule,
                "period": feed.period,
                "deadline_days": feed.deadline.days,
                "deadline_time": feed.deadline.time,
                "deadline_utc_offset": feed.deadline.utc_offset,
                "deadline_seconds": feed.deadline.seconds,
            }
        )
    return pa.Table.from_pylist(rows, schema=tables.arrow_schema(contracts[DIM_FEED]))


def write_feed_dimension(settings: Settings) -> bool:
    """Rewrite dwd_dim_feed from the contracts when they changed it; whether it was written."""
    contracts = tables.contracts(settings)
    return tables.replace_small_native(feed_rows(contracts), contracts[DIM_FEED], settings)

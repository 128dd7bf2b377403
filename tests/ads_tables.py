"""ADS Delta tables for tests, by delta-rs directly (no Spark): written for the API and access
tests, read back to compare two builds of the same days."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from deltalake import write_deltalake

from citylake.settings import Settings
from pipelines import tables
from pipelines.tables import arrow_schema
from warehouse_layers.contract import load_contracts

# What legitimately differs between two builds of the same days: when a row was computed, and
# which ODS versions the run that last wrote it had pinned.
RUN_STAMPS = ("_computed_at", "_input_versions")
DISTRICTS = ("431102", "431103", "431121", "431122")
SECTORS = ("catering", "retail", "lodging")
CHANNELS = ("wechat", "alipay")


def trade_daily_rows(days: int, start: dt.date = dt.date(2024, 11, 1)) -> list[dict]:
    """Every district × sector × channel on `days` days: 24 rows a day, figures from the key."""
    computed = dt.datetime(2024, 12, 1, tzinfo=dt.UTC)
    rows = []
    for d in range(days):
        day = start + dt.timedelta(days=d)
        for i, (district, sector, channel) in enumerate(
            (a, b, c) for a in DISTRICTS for b in SECTORS for c in CHANNELS
        ):
            gross = 1000 * (d + 1) + i
            rows.append(
                {
                    "biz_date": day,
                    "district_code": district,
                    "sector": sector,
                    "channel": channel,
                    "txn_count": i + 1,
                    "gross_fen": gross,
                    "refund_fen": 10,
                    "net_fen": gross - 10,
                    "active_merchants": 1 + i % 3,
                    "_computed_at": computed,
                    "_input_versions": "{}",
                }
            )
    return rows


def write_ads(settings: Settings, name: str, rows: list[dict], mode: str = "overwrite") -> str:
    """Write `rows` to the ADS table `name` in the contract's schema; its path."""
    contract = load_contracts(settings.contracts_dir)[name]
    data = pa.Table.from_pylist(rows, schema=arrow_schema(contract))
    path = settings.table_path("ads", name)
    write_deltalake(path, data, mode=mode)  # type: ignore[arg-type]
    return path


def ads_rows(settings: Settings) -> dict[str, list[tuple]]:
    """Every ADS table's rows (sorted, as text), without the stamps of the run that wrote them."""
    found = {}
    for name, table in tables.contracts(settings).items():
        if table.layer == "ads" and tables.written(table, settings):
            rows = tables.read_native(table, settings=settings).drop_columns(list(RUN_STAMPS))
            found[name] = sorted(tuple(map(str, r.values())) for r in rows.to_pylist())
    return found

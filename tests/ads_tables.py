"""ADS Delta tables for API and access tests, written by delta-rs directly (no Spark)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from deltalake import write_deltalake

from citylake.settings import Settings
from pipelines.tables import arrow_schema
from warehouse_layers.contract import load_contracts

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

"""Hand-written deliveries of the payment feeds, small enough to compute expectations by hand."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from pipelines.generator.payment import REGISTRY_COLUMNS, TXN_COLUMNS

MERCHANT_HEADER = REGISTRY_COLUMNS
TXN_HEADER = TXN_COLUMNS


def merchant(
    mid: str,
    district: str,
    sector: str = "catering",
    updated: str = "2024-11-01T09:00:00+08:00",
    status: str = "active",
) -> list[str]:
    mcc, industry = {"catering": ("5812", "6210"), "retail": ("5411", "5212")}[sector]
    return [mid, "", f"商户{mid}", mcc, industry, district, sector, "2020-01-01", status, updated]


def txn(
    tid: str,
    mid: str,
    time: str,
    amount: int | str,
    *,
    channel: str = "wechat",
    status: str = "success",
    refund_of: str = "",
    updated: str | None = None,
) -> list[str]:
    return [
        tid,
        mid,
        time,
        str(amount),
        channel,
        status,
        refund_of,
        "431102",
        "POS1",
        updated or time,
    ]


def write(
    landing: Path,
    feed: str,
    day: str,
    name: str,
    header: list[str],
    rows: list[list[str]],
    encoding: str = "utf-8",
) -> Path:
    path = landing / feed / day / name
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def registry(landing: Path, day: str = "2024-11-05", rows: list[list[str]] | None = None) -> Path:
    """A registry delivery; by default M1 (零陵区, catering) and M2 (冷水滩区, retail)."""
    rows = rows or [merchant("M1", "431102"), merchant("M2", "431103", "retail")]
    return write(landing, "merchant_registry", day, "registry.csv", MERCHANT_HEADER, rows)

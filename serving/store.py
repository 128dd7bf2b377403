"""ADS snapshots held in memory, each row serialized to JSON once per Delta version.

A product's table is read through delta-rs into Arrow, sorted by its primary key (stable
pages), and every row turned into JSON bytes once; a page is then the join of a slice of
them. The table's Delta version is looked at no more than once per ``version_check_seconds``;
a new version replaces the snapshot (and drops every page computed from the old one).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import DeltaTable

from citylake.settings import Settings
from warehouse_layers.contract import TableContract

_SCALARS = {"date", "string", "int", "bigint", "timestamp", "boolean", "double"}


@dataclass(frozen=True)
class Filter:
    """A query parameter filtering on a primary-key column: ``op`` is eq, ge or le."""

    param: str
    column: str
    op: str
    type: str


def filters_of(contract: TableContract) -> list[Filter]:
    """The filters a product offers: equality on each primary-key column, and a from/to
    range on its date and integer ones."""
    found = []
    for name in contract.primary_key:
        type_ = contract.column(name).type
        if type_ not in _SCALARS:
            continue
        found.append(Filter(name, name, "eq", type_))
        if type_ in ("date", "int", "bigint"):
            found.append(Filter(f"{name}_from", name, "ge", type_))
            found.append(Filter(f"{name}_to", name, "le", type_))
    return found


def _json_value(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


@dataclass
class Snapshot:
    version: int
    table: pa.Table  # sorted by the primary key
    rows: list[bytes]  # each row's JSON
    pages: OrderedDict = field(default_factory=OrderedDict)  # (filters, limit, offset) → bytes
    selections: dict = field(default_factory=dict)  # filters → row indices
    lock: threading.Lock = field(default_factory=threading.Lock)


class ProductStore:
    """Snapshots of the data products' tables, loaded on first use."""

    def __init__(self, settings: Settings, products: dict[str, TableContract]) -> None:
        self.settings = settings
        self.products = products
        self._snapshots: dict[str, Snapshot] = {}
        self._checked: dict[str, float] = {}
        self._load_lock = threading.Lock()

    def _options(self) -> dict[str, str] | None:
        from pipelines.tables import storage_options

        return storage_options(self.settings)

    def path(self, name: str) -> str:
        return self.settings.table_path("ads", name)

    def snapshot(self, name: str) -> Snapshot | None:
        """The snapshot of product `name` (loaded on first use); None while its table does not
        exist. Newer versions are picked up by `refresh`, off the request path."""
        snap = self._snapshots.get(name)
        if snap is None and time.monotonic() - self._checked.get(name, -1e9) >= self._check_every:
            self._refresh_one(name)
            snap = self._snapshots.get(name)
        return snap

    def refresh(self) -> None:
        """Look at every product's Delta version once; load the ones that changed."""
        for name in self.products:
            self._refresh_one(name)

    def _refresh_one(self, name: str) -> None:
        with self._load_lock:
            self._checked[name] = time.monotonic()
            try:
                table = DeltaTable(self.path(name), storage_options=self._options())
            except Exception:  # not written yet (no Delta log): nothing to serve
                return
            snap = self._snapshots.get(name)
            if snap is None or table.version() != snap.version:
                self._snapshots[name] = self._load(name, table)

    @property
    def _check_every(self) -> float:
        return self.settings.api.version_check_seconds

    def _load(self, name: str, table: DeltaTable) -> Snapshot:
        contract = self.products[name]
        # Spark writes timestamps as INT96: read them as microseconds (9999-12-31 fits).
        options = ds.ParquetReadOptions(coerce_int96_timestamp_unit="us")
        data = table.to_pyarrow_dataset(parquet_read_options=options).to_table()
        keys = [k for k in contract.primary_key if k in data.column_names]
        if keys and data.num_rows:
            data = data.sort_by([(k, "ascending") for k in keys])
        names = data.column_names
        rows = [
            json.dumps(
                {k: _json_value(v) for k, v in zip(names, values, strict=True)},
                ensure_ascii=False,
                separators=(",", ":"),
            ).encode()
            for values in zip(*(data.column(n).to_pylist() for n in names), strict=True)
        ]
        return Snapshot(table.version(), data, rows)

    def page(
        self,
        snap: Snapshot,
        filters: tuple[tuple[Filter, object], ...],
        limit: int,
        offset: int,
    ) -> tuple[bytes, int, int]:
        """(the page's rows as a JSON array, rows in it, rows matching in all)."""
        key = (filters, limit, offset)
        cached = snap.pages.get(key)
        if cached is not None:
            return cached
        selected = snap.selections.get(filters)
        if selected is None:
            selected = self._select(snap.table, filters)
            with snap.lock:
                if len(snap.selections) >= max(self.settings.api.page_cache_entries, 1):
                    snap.selections.clear()  # bounded: arbitrary filters cannot grow it
                snap.selections[filters] = selected
        chosen = selected[offset : offset + limit]
        body = b"[" + b",".join(snap.rows[i] for i in chosen) + b"]"
        result = (body, len(chosen), len(selected))
        with snap.lock:
            snap.pages[key] = result
            while len(snap.pages) > self.settings.api.page_cache_entries:
                snap.pages.popitem(last=False)
        return result

    @staticmethod
    def _select(table: pa.Table, filters: tuple[tuple[Filter, object], ...]) -> list[int] | range:
        if not filters:
            return range(table.num_rows)
        mask = None
        for f, value in filters:
            column = table.column(f.column)
            if pa.types.is_integer(column.type):  # a value beyond int32 must not overflow
                column = pc.cast(column, pa.int64())
            scalar = pa.scalar(value, type=column.type)
            test = {"eq": pc.equal, "ge": pc.greater_equal, "le": pc.less_equal}[f.op](
                column, scalar
            )
            mask = test if mask is None else pc.and_(mask, test)
        indices = pc.indices_nonzero(pc.fill_null(mask, False))
        return indices.to_pylist()

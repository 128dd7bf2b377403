"""The cockpit (驾驶舱) as code: ``cockpit/*.yaml`` → Superset dashboards over Trino.

Each YAML file is one dashboard: its charts name an ADS table, a kind (big_number, line, bar,
pie, table), their fields and metrics (SQL over the table), and their place on the grid.
`deploy` turns them into one Superset assets bundle — the Trino database (catalog from the
Trino settings), a dataset per ADS table (columns and descriptions from its contract in
``warehouse_layers/``), the charts with a saved ``query_context`` (what
``/api/v1/chart/<id>/data/`` runs) and the dashboards — and imports it through the REST API
(``/api/v1/assets/import/``, which overwrites every asset it names). Every asset has a UUID
derived from its name, so a redeploy updates the same objects and never duplicates them.
"""

from __future__ import annotations

import io
import json
import subprocess
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from citylake import superset
from citylake.settings import PROJECT_ROOT, Settings, get_settings

COCKPIT_DIR = PROJECT_ROOT / "cockpit"
RENDER_SCRIPT = COCKPIT_DIR / "render.py"
DATABASE_NAME = "citylake Trino"
_NAMESPACE = uuid.UUID("5d1b1f4e-6c1a-4f0e-9a57-c17c0c0c4e11")  # citylake's cockpit assets
_VIZ = {
    "big_number": "big_number_total",
    "line": "echarts_timeseries_line",
    "bar": "echarts_timeseries_bar",
    "pie": "pie",
    "table": "table",
}
# Contract column types as Trino names them (what Superset's dataset columns carry).
_TRINO_TYPES = {
    "string": "VARCHAR",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP(3) WITH TIME ZONE",
}


class CockpitError(RuntimeError):
    pass


class Metric(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str
    sql: str

    def adhoc(self) -> dict[str, Any]:
        return {
            "expressionType": "SQL",
            "sqlExpression": self.sql,
            "label": self.label,
            "hasCustomLabel": True,
            "optionName": f"metric_{_uid('metric', self.label, self.sql).hex[:12]}",
        }


class Chart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    table: str = Field(description="An ADS table (its contract in warehouse_layers/ads).")
    kind: Literal["big_number", "line", "bar", "pie", "table"]
    metric: Metric | None = None  # big_number, pie
    metrics: list[Metric] = Field(default_factory=list)  # line, bar, aggregated table
    x: str | None = None  # line, bar: the x axis
    grain: str | None = Field(default=None, description="Time grain of a date x axis: P1D, P1M")
    series: list[str] = Field(default_factory=list)  # line, bar: one series per value
    stack: bool = False
    groupby: list[str] = Field(default_factory=list)  # pie, aggregated table
    columns: list[str] = Field(default_factory=list)  # raw table
    order_by: list[tuple[str, Literal["asc", "desc"]]] = Field(default_factory=list)
    where: str | None = Field(default=None, description="SQL filter on the table's rows.")
    format: str = Field(default="SMART_NUMBER", description="d3 number format of values.")
    row_limit: int | None = Field(
        default=None,
        description="Most rows the chart's query returns (a table's pages reach as far). "
        "Default: all of them, up to Superset's cap, since a chart cut short would show a part "
        "as if it were the whole.",
    )
    row: int = 1
    width: int = Field(default=12, ge=1, le=12)

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Chart:
        needs = {
            "big_number": self.metric is not None,
            "pie": self.metric is not None and bool(self.groupby),
            "line": bool(self.x and self.metrics),
            "bar": bool(self.x and self.metrics),
            "table": bool(self.columns) != bool(self.groupby and self.metrics),
        }
        if not needs[self.kind]:
            raise ValueError(f"chart {self.name!r}: a {self.kind} lacks its fields")
        return self

    @property
    def limit(self) -> int:
        if self.row_limit is not None:
            return self.row_limit
        return superset.ROW_LIMIT

    def referenced(self) -> set[str]:
        cols = {*self.series, *self.groupby, *self.columns, *(c for c, _ in self.order_by)}
        return cols | ({self.x} if self.x else set())


class Dashboard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str
    title: str
    charts: list[Chart] = Field(min_length=1)


def dashboards(folder: Path = COCKPIT_DIR) -> list[Dashboard]:
    return [
        Dashboard.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        for path in sorted(folder.glob("*.yaml"))
    ]


def _uid(kind: str, *names: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, "/".join((kind, *names)))


def database_uri(settings: Settings) -> str:
    trino = settings.trino
    return f"trino://{trino.user}@{trino.host}:{trino.port}/{trino.catalog}"


def _database(settings: Settings) -> dict[str, Any]:
    return {
        "database_name": DATABASE_NAME,
        "sqlalchemy_uri": database_uri(settings),
        "cache_timeout": None,
        "expose_in_sqllab": True,
        "allow_run_async": False,
        "allow_ctas": False,
        "allow_cvas": False,
        "allow_dml": False,
        "allow_csv_upload": False,
        "extra": {"allows_virtual_table_explore": True},
        "uuid": str(_uid("database", "trino")),
        "version": "1.0.0",
    }


def _dataset(table: str, settings: Settings) -> dict[str, Any]:
    """A dataset of one ADS table; its columns from the table's contract."""
    from pipelines.tables import contract

    c = contract(table, settings)
    columns = []
    for col in c.columns:
        type_ = _TRINO_TYPES.get(col.type) or col.type.upper()
        columns.append(
            {
                "column_name": col.name,
                "verbose_name": col.description.zh.split("(")[0].split("(")[0],
                "description": col.description.zh,
                "is_dttm": col.type in ("date", "timestamp"),
                "is_active": True,
                "type": type_,
                "groupby": True,
                "filterable": True,
                "expression": None,
                "python_date_format": None,
                "extra": {},
            }
        )
    dates = [col.name for col in c.columns if col.type == "date"]
    return {
        "table_name": table,
        "main_dttm_col": dates[0] if dates else None,
        "description": c.description.zh,
        "default_endpoint": None,
        "offset": 0,
        "cache_timeout": None,
        "catalog": settings.trino.catalog,
        "schema": c.layer,
        "sql": None,
        "params": None,
        "template_params": None,
        "filter_select_enabled": True,
        "fetch_values_predicate": None,
        "extra": None,
        "uuid": str(_uid("dataset", table)),
        "metrics": [
            {
                "metric_name": "count",
                "verbose_name": "记录数",
                "metric_type": "count",
                "expression": "COUNT(*)",
                "description": None,
                "d3format": None,
                "extra": {},
                "warning_text": None,
            }
        ],
        "columns": columns,
        "version": "1.0.0",
        "database_uuid": str(_uid("database", "trino")),
    }


def _filters(chart: Chart) -> list[dict[str, Any]]:
    if not chart.where:
        return []
    return [
        {
            "clause": "WHERE",
            "expressionType": "SQL",
            "sqlExpression": chart.where,
            "filterOptionName": f"filter_{_uid('filter', chart.name).hex[:12]}",
        }
    ]


def _form_data(chart: Chart) -> dict[str, Any]:
    """The chart's params as Superset's explore view saves them for its viz type."""
    viz = _VIZ[chart.kind]
    form: dict[str, Any] = {"viz_type": viz, "adhoc_filters": _filters(chart)}
    if chart.kind == "big_number":
        form |= {
            "metric": chart.metric.adhoc(),  # type: ignore[union-attr]
            "header_font_size": 0.4,
            "subheader_font_size": 0.15,
            "y_axis_format": chart.format,
            "time_format": "smart_date",
        }
    elif chart.kind in ("line", "bar"):
        form |= {
            "x_axis": chart.x,
            "time_grain_sqla": chart.grain,
            "metrics": [m.adhoc() for m in chart.metrics],
            "groupby": chart.series,
            "row_limit": chart.limit,
            "order_desc": True,
            "truncate_metric": True,
            "show_legend": True,
            "legendType": "scroll",
            "legendOrientation": "top",
            "rich_tooltip": True,
            "x_axis_time_format": "smart_date",
            "y_axis_format": chart.format,
            "comparison_type": "values",
            "sort_series_type": "sum",
        }
        if chart.kind == "bar":
            form |= {"orientation": "vertical", "stack": "Stack" if chart.stack else None}
        else:
            # A marker per point of a monthly line; a daily one is 366 points a series, whose
            # markers cost the page its drawing time and hide the line.
            form |= {"markerEnabled": chart.grain != "P1D", "seriesType": "line"}
    elif chart.kind == "pie":
        form |= {
            "groupby": chart.groupby,
            "metric": chart.metric.adhoc(),  # type: ignore[union-attr]
            "row_limit": chart.limit,
            "sort_by_metric": True,
            "show_labels": True,
            "label_type": "key_percent",
            "show_legend": True,
            "number_format": chart.format,
            "outerRadius": 70,
            "innerRadius": 30,
            "donut": True,
        }
    else:  # table
        raw = bool(chart.columns)
        form |= {
            "query_mode": "raw" if raw else "aggregate",
            "all_columns": chart.columns,
            "groupby": chart.groupby,
            "metrics": [m.adhoc() for m in chart.metrics],
            "order_by_cols": [json.dumps([c, d == "asc"]) for c, d in chart.order_by],
            "row_limit": chart.limit,
            # Each page is a query of its own (and one count): the browser drew a table of
            # 1,000 rows in one 0.7-1.0 s task.
            "server_pagination": True,
            "server_page_length": 10,
            "include_search": True,
            "show_cell_bars": True,
            "table_timestamp_format": "smart_date",
        }
    return form


def _query_context(chart: Chart, form: dict[str, Any]) -> dict[str, Any]:
    """What the chart data API runs for the chart (its dataset id is set on import)."""
    metrics = [m.adhoc() for m in chart.metrics] or ([chart.metric.adhoc()] if chart.metric else [])
    columns: list[Any] = []
    orderby: list[Any] = []
    if chart.kind in ("line", "bar"):
        axis: dict[str, Any] = {
            "columnType": "BASE_AXIS",
            "sqlExpression": chart.x,
            "label": chart.x,
            "expressionType": "SQL",
        }
        if chart.grain:
            axis["timeGrain"] = chart.grain
        columns = [axis, *chart.series]
        orderby = [[metrics[0], False]]
    elif chart.kind == "pie":
        columns, orderby = list(chart.groupby), [[metrics[0], False]]
    elif chart.kind == "table":
        columns = list(chart.columns or chart.groupby)
        orderby = [[c, d == "asc"] for c, d in chart.order_by] or (
            [[metrics[0], False]] if metrics else []
        )
        if chart.columns:
            metrics = []
    query = {
        "filters": [],
        "extras": {"having": "", "where": f"({chart.where})" if chart.where else ""},
        "applied_time_extras": {},
        "columns": columns,
        "metrics": metrics,
        "orderby": orderby,
        "annotation_layers": [],
        "row_limit": chart.limit,
        "series_limit": 0,
        "order_desc": True,
        "url_params": {},
        "custom_params": {},
        "custom_form_data": {},
    }
    return {
        "datasource": {"id": 0, "type": "table"},
        "force": False,
        "queries": [query],
        "form_data": form,
        "result_format": "json",
        "result_type": "full",
    }


def _position(board: Dashboard, chart_ids: dict[str, int]) -> dict[str, Any]:
    """The dashboard's grid: one ROW per `row`, its charts side by side."""
    position: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
        "HEADER_ID": {"id": "HEADER_ID", "type": "HEADER", "meta": {"text": board.title}},
    }
    for row in sorted({c.row for c in board.charts}):
        row_id = f"ROW-{row}"
        position["GRID_ID"]["children"].append(row_id)
        position[row_id] = {
            "type": "ROW",
            "id": row_id,
            "children": [],
            "parents": ["ROOT_ID", "GRID_ID"],
            "meta": {"background": "BACKGROUND_TRANSPARENT"},
        }
        for chart in (c for c in board.charts if c.row == row):
            chart_uid = str(_uid("chart", board.slug, chart.name))
            node_id = f"CHART-{chart_uid[:10]}"
            position[row_id]["children"].append(node_id)
            position[node_id] = {
                "type": "CHART",
                "id": node_id,
                "children": [],
                "parents": ["ROOT_ID", "GRID_ID", row_id],
                "meta": {
                    "width": chart.width,
                    "height": 30 if chart.kind == "big_number" else 60,
                    "chartId": chart_ids[chart_uid],
                    "uuid": chart_uid,
                    "sliceName": chart.name,
                },
            }
    return position


def bundle(settings: Settings | None = None, boards: list[Dashboard] | None = None) -> bytes:
    """The assets bundle (zip) of every dashboard in ``cockpit/``."""
    from pipelines.tables import contract

    settings = settings or get_settings()
    boards = boards if boards is not None else dashboards()
    files: dict[str, dict[str, Any]] = {
        "metadata.yaml": {"version": "1.0.0", "type": "assets", "timestamp": _now()},
        "databases/citylake_trino.yaml": _database(settings),
    }
    tables = sorted({c.table for b in boards for c in b.charts})
    for table in tables:
        known = {col.name for col in contract(table, settings).columns}
        for b in boards:
            for c in b.charts:
                unknown = c.referenced() - known if c.table == table else set()
                if unknown:
                    raise CockpitError(f"{b.slug}/{c.name}: {table} has no column {unknown}")
        files[f"datasets/citylake_trino/{table}.yaml"] = _dataset(table, settings)
    chart_ids: dict[str, int] = {}
    for board in boards:
        for chart in board.charts:
            chart_uid = str(_uid("chart", board.slug, chart.name))
            chart_ids[chart_uid] = len(chart_ids) + 1  # bundle-local; remapped on import
            form = _form_data(chart)
            files[f"charts/{board.slug}_{chart_ids[chart_uid]}.yaml"] = {
                "slice_name": chart.name,
                "description": None,
                "viz_type": form["viz_type"],
                "params": form,
                "query_context": json.dumps(_query_context(chart, form), ensure_ascii=False),
                "cache_timeout": None,
                "uuid": chart_uid,
                "version": "1.0.0",
                "dataset_uuid": str(_uid("dataset", chart.table)),
            }
        files[f"dashboards/{board.slug}.yaml"] = {
            "dashboard_title": board.title,
            "description": None,
            "css": "",
            "slug": board.slug,
            "uuid": str(_uid("dashboard", board.slug)),
            "position": _position(board, chart_ids),
            "metadata": {
                "color_scheme": "supersetColors",
                "refresh_frequency": 0,
                "expanded_slices": {},
                "label_colors": {},
                "timed_refresh_immune_slices": [],
                "cross_filters_enabled": False,
                "native_filter_configuration": [],
            },
            "version": "1.0.0",
            "published": True,
        }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            text = yaml.safe_dump(content, allow_unicode=True, sort_keys=False)
            archive.writestr(f"cockpit/{name}", text)
    return out.getvalue()


def _now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).isoformat()


@contextmanager
def api(settings: Settings | None = None) -> Iterator[httpx.Client]:
    """A client logged in to Superset's REST API: a JWT from /api/v1/security/login and the
    CSRF token of the same session (cookie kept by the client) in every request."""
    settings = settings or get_settings()
    ss = settings.superset
    with httpx.Client(base_url=ss.url, timeout=120) as client:
        login = client.post(
            "/api/v1/security/login",
            json={
                "username": ss.user,
                "password": superset.admin_password(settings),
                "provider": "db",
                "refresh": False,
            },
        )
        _check(login, "login")
        client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        csrf = client.get("/api/v1/security/csrf_token/")
        _check(csrf, "csrf token")
        client.headers["X-CSRFToken"] = csrf.json()["result"]
        client.headers["Referer"] = ss.url
        yield client


def _check(response: httpx.Response, what: str) -> None:
    if response.status_code >= 400:
        raise CockpitError(f"Superset {what}: HTTP {response.status_code}: {response.text[:500]}")


@dataclass(frozen=True)
class Deployed:
    dashboards: dict[str, int]  # slug -> id
    charts: dict[str, list[int]]  # slug -> chart ids
    datasets: list[str]


def deploy(settings: Settings | None = None, boards: list[Dashboard] | None = None) -> Deployed:
    """Import the cockpit bundle (databases, datasets, charts, dashboards overwritten by
    UUID) and return the ids Superset gave them."""
    settings = settings or get_settings()
    boards = boards if boards is not None else dashboards()
    payload = bundle(settings, boards)
    with api(settings) as client:
        response = client.post(
            "/api/v1/assets/import/",
            files={"bundle": ("cockpit.zip", payload, "application/zip")},
            data={"passwords": "{}"},
        )
        _check(response, "assets import")
        ids: dict[str, int] = {}
        charts: dict[str, list[int]] = {}
        for board in boards:
            found = client.get(f"/api/v1/dashboard/{board.slug}")
            _check(found, f"dashboard {board.slug}")
            ids[board.slug] = found.json()["result"]["id"]
            listed = client.get(f"/api/v1/dashboard/{board.slug}/charts")
            _check(listed, f"charts of {board.slug}")
            charts[board.slug] = sorted(c["id"] for c in listed.json()["result"])
    tables = sorted({c.table for b in boards for c in b.charts})
    return Deployed(ids, charts, tables)


def chart_data(client: httpx.Client, chart_id: int) -> list[dict[str, Any]]:
    """The rows of a chart's saved query (``/api/v1/chart/<id>/data/``)."""
    response = client.get(f"/api/v1/chart/{chart_id}/data/")
    _check(response, f"chart {chart_id} data")
    rows: list[dict[str, Any]] = []
    for result in response.json()["result"]:
        if result.get("error"):
            raise CockpitError(f"chart {chart_id}: {result['error']}")
        rows += result.get("data") or []
    return rows


def session_cookie(settings: Settings | None = None) -> str:
    """A logged-in browser session (Flask-AppBuilder's login form, CSRF token of the same
    session): the value of the ``session`` cookie a browser sends."""
    settings = settings or get_settings()
    ss = settings.superset
    with httpx.Client(base_url=ss.url, timeout=60) as client:
        login = client.post(
            "/api/v1/security/login",
            json={
                "username": ss.user,
                "password": superset.admin_password(settings),
                "provider": "db",
            },
        )
        _check(login, "login")
        token = client.get(
            "/api/v1/security/csrf_token/",
            headers={"Authorization": f"Bearer {login.json()['access_token']}"},
        )
        _check(token, "csrf token")
        form = client.post(
            "/login/",
            data={
                "username": ss.user,
                "password": superset.admin_password(settings),
                "csrf_token": token.json()["result"],
            },
        )
        if form.status_code >= 400:
            raise CockpitError(f"Superset login form: HTTP {form.status_code}")
        cookie = client.cookies.get("session")
        if not cookie or client.get("/api/v1/me/").status_code != 200:
            raise CockpitError("Superset login form did not open a session")
        return cookie


def render(
    slugs: list[str], out_dir: Path, settings: Settings | None = None, *, timeout: float = 120
) -> list[dict[str, Any]]:
    """Render dashboards in headless Chromium (cockpit/render.py in Superset's environment);
    per dashboard: seconds until every chart was drawn, charts found/drawn, errors, screenshot."""
    settings = settings or get_settings()
    job = {
        "url": settings.superset.url,
        "cookie": session_cookie(settings),
        "dashboards": slugs,
        "out_dir": str(out_dir),
        "timeout": timeout,
    }
    began = time.monotonic()
    done = subprocess.run(
        [str(superset.bin_path("python")), str(RENDER_SCRIPT)],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=timeout * len(slugs) + 120,
        check=False,
    )
    if done.returncode != 0:
        raise CockpitError(
            f"rendering failed after {time.monotonic() - began:.0f} s:\n{done.stderr[-3000:]}"
        )
    return json.loads(done.stdout)

"""`citylake`: the user's handle on the platform (set-up, ingest, build, demo, contracts)."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from citylake.settings import get_settings

app = typer.Typer(
    help="citylake: 城市数字经济数据底座 (a city's digital-economy lakehouse)",
    no_args_is_help=True,
    add_completion=False,
)
contracts_app = typer.Typer(help="Table contracts in warehouse_layers/.", no_args_is_help=True)
app.add_typer(contracts_app, name="contracts")
# Logs and CI are not terminals: keep tables readable there instead of rich's 80 columns.
_WIDTH = None if sys.stdout.isatty() else 160
console = Console(width=_WIDTH)
err = Console(stderr=True, width=_WIDTH)

DateOption = Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"])]


@app.command()
def setup() -> None:
    """Fetch the pinned jars and Trino from Maven Central and build the pinned MinIO server,
    once each, into the project cache (idempotent)."""
    from citylake import minio, trino
    from citylake.jars import JarResolutionError, resolve

    settings = get_settings()
    try:
        paths = resolve(settings)
    except JarResolutionError as exc:
        err.print(f"[red]citylake setup:[/] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"citylake setup: {len(paths)} jars ready in {paths[0].parent}")
    if not minio.binary(settings).is_file():
        console.print(f"citylake setup: building MinIO {minio.VERSION} with go install (once)")
    try:
        server = minio.install(settings)
    except RuntimeError as exc:
        err.print(f"[red]citylake setup:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    console.print(f"citylake setup: MinIO server ready at {server}")
    try:
        installed = trino.install(settings)
    except (JarResolutionError, trino.TrinoError) as exc:
        err.print(f"[red]citylake setup:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    console.print(f"citylake setup: Trino {trino.VERSION} ready at {installed}")
    from citylake import deploy_check  # the validators of infra/ (tests/test_infra.py)

    try:
        tools = deploy_check.install(settings)
    except deploy_check.DeployCheckError as exc:
        err.print(f"[red]citylake setup:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    console.print(f"citylake setup: deployment validators ready in {tools.compose.parent.parent}")
    from citylake import superset

    if not superset.installed():
        console.print(f"citylake setup: installing Superset {superset.VERSION} (once, ~1 GB)")
    try:
        venv = superset.install()
    except (OSError, superset.SupersetError) as exc:
        err.print(f"[red]citylake setup:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    console.print(f"citylake setup: Superset {superset.VERSION} ready in {venv}")


@app.command()
def ingest(
    feed: Annotated[str, typer.Argument(help="Feed name, e.g. pay_transactions")],
    paths: Annotated[list[Path], typer.Argument(exists=True, help="Delivered files or folders")],
    business_date: DateOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON")] = False,
) -> None:
    """Ingest delivered files into ODS; print delivered/loaded/quarantined per delivery."""
    from pipelines.ingest import ingest_files, summary_json
    from pipelines.tables import feed_contract

    try:
        feed_contract(feed)
    except KeyError as exc:
        err.print(f"[red]citylake ingest:[/] {escape(exc.args[0])}")
        raise typer.Exit(2) from exc
    results = ingest_files(
        feed, paths, business_date=business_date.date() if business_date else None
    )
    if as_json:
        print(summary_json(results))
    else:
        from citylake.views import deliveries_table

        table = deliveries_table(results, title=f"{feed}: deliveries")
        console.print(table)
        for r in results:
            if r.error:
                err.print(f"[red]{escape(Path(r.source).name)}:[/] {escape(r.error)}")
    if any(not r.reconciles for r in results):
        err.print("[red]reconciliation failed: loaded + quarantined != delivered[/]")
        raise typer.Exit(2)
    if any(r.status == "rejected" for r in results):
        raise typer.Exit(1)


@app.command()
def pull(
    feeds: Annotated[
        list[str] | None,
        typer.Argument(help="Feeds to pull (default: every database and exchange feed)"),
    ] = None,
    full: Annotated[bool, typer.Option(help="Full reload from the source (database)")] = False,
    business_date: DateOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON")] = False,
) -> None:
    """Pull feeds from the source database and the government exchange, resuming after a crash."""
    import psycopg

    from pipelines.channels.exchange import ExchangeError
    from pipelines.channels.pull import PullError, pull_feeds
    from pipelines.ingest import summary_json

    try:
        results = pull_feeds(
            feeds or None,
            full=full,
            business_date=business_date.date() if business_date else None,
        )
    except (KeyError, PullError) as exc:
        err.print(f"[red]citylake pull:[/] {escape(str(exc.args[0]))}")
        raise typer.Exit(2) from exc
    except (ExchangeError, psycopg.OperationalError) as exc:
        # A source that refuses or is down: committed pulls stand, the next pull resumes.
        err.print(f"[red]citylake pull: a source failed:[/] {escape(str(exc))}")
        err.print("is it running? `citylake status` shows the local stand-ins")
        raise typer.Exit(1) from exc
    if as_json:
        print(summary_json(results))
    else:
        from citylake.views import deliveries_table

        console.print(deliveries_table(results, title="pulled deliveries"))
        if not results:
            console.print("nothing new at the sources")
    if any(not r.reconciles for r in results):
        err.print("[red]reconciliation failed: loaded + quarantined != delivered[/]")
        raise typer.Exit(2)


@app.command()
def up(
    services: Annotated[list[str] | None, typer.Argument(help="Only these services")] = None,
) -> None:
    """Start the local services (127.0.0.1, data under var/), each recorded by its pid."""
    from citylake import stack

    try:
        selected = stack.select(services)
    except KeyError as exc:
        err.print(f"[red]citylake up:[/] {escape(str(exc.args[0]))}")
        raise typer.Exit(2) from exc
    settings = get_settings()
    for s in selected:
        try:
            svc = s.start(settings)
        except Exception as exc:
            err.print(f"[red]{s.name} did not start:[/] {escape(str(exc))}")
            raise typer.Exit(1) from exc
        console.print(f"{s.name:<14} pid {svc.pid:<8} {s.address(settings)}  ({s.role})")


@app.command()
def down(
    services: Annotated[list[str] | None, typer.Argument(help="Only these services")] = None,
) -> None:
    """Stop the services `citylake up` started, by their recorded pids."""
    from citylake import stack

    stopped = stack.down(services)
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@app.command()
def status() -> None:
    """What runs: each service with its pid, address and log."""
    from citylake import stack

    settings = get_settings()
    table = Table("service", "state", "pid", "address", "log", title="citylake services")
    for s, svc in stack.status(settings):
        running = svc.running
        table.add_row(
            s.name,
            "[green]running[/]" if running else "stopped",
            str(svc.pid) if running else "",
            s.address(settings),
            str(svc.log_file),
        )
    console.print(table)


@app.command()
def build(
    start: Annotated[dt.datetime | None, typer.Option("--from", formats=["%Y-%m-%d"])] = None,
    end: Annotated[dt.datetime | None, typer.Option("--to", formats=["%Y-%m-%d"])] = None,
) -> None:
    """Run DWD → DWS → ADS for a date range (default: every day present), behind quality gates."""
    from citylake.spark import start_in_background

    start_in_background()  # the JVM starts while the pipelines import
    from pipelines.build import build as run_build
    from quality.gate import GateBlocked, collecting

    with collecting() as outcomes:
        try:
            result = run_build(start.date() if start else None, end.date() if end else None)
        except GateBlocked as exc:
            err.print(f"[red]promotion stopped:[/] {escape(str(exc))}")
            _open_work_orders(outcomes)
            raise typer.Exit(3) from exc
    _open_work_orders(outcomes)
    _print_build(result)
    _register_with_trino()


def _register_with_trino() -> None:
    """After a build, make its new tables queryable in Trino, if our Trino runs."""
    from citylake import trino

    settings = get_settings()
    if not trino.running(settings):
        return
    try:
        added = trino.register_warehouse(settings)
    except trino.TrinoError as exc:  # the build stands; say what Trino does not see yet
        err.print(f"[yellow]not registered in Trino:[/] {escape(str(exc))}")
        return
    if added:
        console.print(f"registered in Trino ({settings.trino.catalog}): {', '.join(added)}")


@app.command()
def sql(
    statement: Annotated[
        str | None, typer.Argument(help="One SQL statement; none: the interactive Trino CLI")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print rows as JSON objects")] = False,
) -> None:
    """Query the warehouse through Trino (catalog `lake`, schemas ods/dwd/dws/ads)."""
    import os

    from citylake import trino

    settings = get_settings()
    if statement is None:
        argv = trino.cli_argv(settings)
        os.execv(argv[0], argv)  # the Trino CLI takes over the terminal
    try:
        result = trino.query(statement, settings)
    except trino.TrinoError as exc:
        err.print(f"[red]citylake sql:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    if as_json:
        for row in result.rows:
            print(json.dumps(dict(zip(result.columns, row, strict=True)), ensure_ascii=False))
        return
    table = Table(*result.columns)
    for row in result.rows:
        table.add_row(*("NULL" if v is None else escape(str(v)) for v in row))
    console.print(table)
    console.print(f"({len(result.rows)} rows)")


cockpit_app = typer.Typer(help="The cockpit (驾驶舱): Superset dashboards.", no_args_is_help=True)
app.add_typer(cockpit_app, name="cockpit")


@cockpit_app.command("deploy")
def cockpit_deploy() -> None:
    """Provision cockpit/*.yaml into the running Superset: the Trino connection, a dataset per
    ADS table, the charts and dashboards (a redeploy updates them, never duplicates)."""
    import httpx

    from citylake import cockpit

    settings = get_settings()
    try:
        deployed = cockpit.deploy(settings)
    except (cockpit.CockpitError, httpx.HTTPError) as exc:
        err.print(f"[red]citylake cockpit deploy:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    for slug, board_id in deployed.dashboards.items():
        charts = len(deployed.charts[slug])
        console.print(
            f"{settings.superset.url}/superset/dashboard/{slug}/  (id {board_id}, {charts} charts)"
        )
    console.print(f"datasets: {', '.join(deployed.datasets)}")


def _print_build(result) -> None:
    if result.start is None:
        console.print("nothing to build: no accepted payment transactions in ODS yet")
        return
    console.print(f"built {result.start} … {result.end} from ODS versions {result.input_versions}")
    for gate in result.gates:
        console.print(f"  {escape(gate.describe())}")
    table = Table("table", "rows in range", title="rows written")
    for name, rows in result.rows.items():
        table.add_row(name, str(rows))
    console.print(table)
    if result.ads_path:
        console.print(f"ADS table ads_trade_daily: [bold]{result.ads_path}[/]")


@app.command()
def deliveries(
    start: Annotated[dt.datetime | None, typer.Option("--from", formats=["%Y-%m-%d"])] = None,
    end: Annotated[dt.datetime | None, typer.Option("--to", formats=["%Y-%m-%d"])] = None,
    feed: Annotated[str | None, typer.Option(help="Only this feed")] = None,
    department: Annotated[str | None, typer.Option(help="Only this owner department")] = None,
    channel: Annotated[
        str | None, typer.Option(help="Only this channel: landing, database or exchange")
    ] = None,
    xlsx: Annotated[Path | None, typer.Option(help="Also write the rows to this .xlsx")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print rows as JSON")] = False,
) -> None:
    """The reconciliation log (数据对账): deliveries by business date, feed and department."""
    from pipelines.deliveries import export_xlsx, query_deliveries

    rows = query_deliveries(
        start.date() if start else None,
        end.date() if end else None,
        feed=feed,
        department=department,
        channel=channel,
    )
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, default=str, indent=2))
    else:
        table = Table(
            "business date",
            "feed",
            "department",
            "channel",
            "source",
            "delivered",
            "loaded",
            "quarantined",
            "status",
            title="deliveries",
        )
        for r in rows:
            table.add_row(
                str(r["business_date"]),
                r["feed"],
                r["owner_department"],
                r["channel"],
                Path(r["source"]).name,
                f"{r['delivered']:,}",
                f"{r['loaded']:,}",
                f"{r['quarantined']:,}",
                r["status"],
            )
        console.print(table)
    if xlsx is not None:
        console.print(f"wrote {export_xlsx(rows, xlsx)}")


@app.command()
def generate(
    out: Annotated[
        Path | None, typer.Option(help="Landing folder (default: settings.landing)")
    ] = None,
    start: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"])] = dt.datetime(2024, 11, 5),
    days: int = 3,
    scale: float = 0.05,
    seed: int = 20241105,
    dirty: Annotated[float, typer.Option(help="Multiply every dirty-row rate (0 = clean)")] = 1.0,
) -> None:
    """Write deterministic, dirty-on-purpose deliveries of the payment feeds to a landing zone."""
    from pipelines.generator import DirtyRates, generate_payment

    landing = out or Path(get_settings().landing)
    generated = generate_payment(
        landing, start.date(), days, scale=scale, seed=seed, dirty=DirtyRates().scaled(dirty)
    )
    console.print(f"wrote {sum(len(f) for f in generated.files.values())} files under {landing}")
    console.print(json.dumps(generated.truth, indent=2))


@app.command()
def demo(
    days: int = 3,
    scale: float = 0.05,
    start: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"])] = dt.datetime(2024, 11, 5),
) -> None:
    """Generate data, ingest every delivery, build every layer, print the reconciliation."""
    from citylake.spark import start_in_background

    start_in_background()  # the JVM starts while the city's data is generated
    from pipelines.demo import run_demo

    began = time.monotonic()
    ok = run_demo(start.date(), days, scale, console=console)
    console.print(f"demo finished in {time.monotonic() - began:.1f} s")
    if not ok:
        raise typer.Exit(1)


@contracts_app.command("list")
def contracts_list() -> None:
    """Every table with its layer, owner department and description."""
    from pipelines.tables import contracts

    table = Table("table", "layer", "domain", "owner", "description")
    for c in contracts().values():
        table.add_row(c.name, c.layer, c.domain, c.owner_department, c.description.zh)
    console.print(table)


@contracts_app.command("ddl")
def contracts_ddl(name: str) -> None:
    """The Delta DDL generated from a table's contract."""
    from pipelines.tables import contract, table_path

    try:
        c = contract(name)
    except KeyError as exc:
        err.print(f"[red]no contract for table {escape(name)!r}[/]; see `citylake contracts list`")
        raise typer.Exit(2) from exc
    print(c.create_table_ddl(table_path(c)) + ";")


@contracts_app.command("check")
def contracts_check(
    root: Annotated[Path | None, typer.Argument(help="Contracts folder")] = None,
) -> None:
    """Validate contract files; a bad one is named with its file and field."""
    from warehouse_layers.contract import ContractError, load_contracts

    try:
        found = load_contracts((root or get_settings().contracts_dir).resolve())
    except ContractError as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from exc
    console.print(f"{len(found)} contracts valid")


@contracts_app.command("docs")
def contracts_docs(
    out: Annotated[Path, typer.Option(help="Markdown file to write")] = Path(
        "docs/data-dictionary.md"
    ),
) -> None:
    """Write the data dictionary (数据字典) of every contract as Markdown."""
    from catalog.dictionary import render
    from pipelines.tables import contracts

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(contracts()), encoding="utf-8")
    console.print(f"wrote {out}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())


maintain_app = typer.Typer(help="Upkeep of the warehouse's tables.", no_args_is_help=True)
app.add_typer(maintain_app, name="maintain")


@maintain_app.command("compact")
def maintain_compact(
    table: Annotated[list[str] | None, typer.Option(help="Only this table (repeatable)")] = None,
) -> None:
    """Rewrite the small files of the DWD, DWS and ADS partitions into fewer (no row changes)."""
    from pipelines.maintenance import compact

    try:
        done = compact(table or (), get_settings())
    except ValueError as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from exc
    report = Table("table", "partitions", "files removed", "files added", "note")
    for c in done:
        report.add_row(
            c.table, str(c.partitions), str(c.files_removed), str(c.files_added), c.skipped or ""
        )
    console.print(report)


models_app = typer.Typer(help="The DWS/ADS models (SQLMesh) in models/.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("test")
def models_test() -> None:
    """Run every model's YAML unit tests (in-memory DuckDB, no JVM)."""
    from pipelines.modeling.project import context

    result = context(get_settings(), offline=True).test()
    if not result.wasSuccessful():
        for test, trace in result.failures + result.errors:
            err.print(f"[red]FAILED[/] {escape(str(test))}\n{escape(trace)}")
        raise typer.Exit(1)
    console.print(f"[green]{result.testsRun} model tests passed[/]")


@models_app.command("lineage")
def models_lineage(
    table: Annotated[str | None, typer.Argument(help="Only edges into this table")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, for tools")] = False,
) -> None:
    """Column lineage into the DWS/ADS tables: one upstream column -> model column per line."""
    from pipelines.modeling.lineage import column_lineage

    for edge in column_lineage(get_settings()):
        if table and edge.target.split(".")[1] != table:
            continue
        if as_json:
            print(json.dumps({"source": edge.source, "target": edge.target}))
        else:
            print(f"{edge.source} -> {edge.target}")


@models_app.command("header")
def models_header(name: str) -> None:
    """The SQLMesh MODEL header a table's contract generates (kind, columns, audits)."""
    from pipelines.modeling.headers import header
    from pipelines.tables import contract

    print(header(contract(name)), end="")


catalog_app = typer.Typer(help="The OpenMetadata catalog (docs/catalog.md).", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("sync")
def catalog_sync(
    as_json: Annotated[bool, typer.Option("--json", help="The summary as JSON")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be published (JSON), send nothing")
    ] = False,
) -> None:
    """Publish every table, owner, tag, indicator term and lineage hop to OpenMetadata."""
    from catalog.publish import CatalogSyncError, sync

    if dry_run:
        from catalog.content import document

        print(json.dumps(document(get_settings()), ensure_ascii=False, indent=1))
        return
    try:
        summary = sync(get_settings())
    except CatalogSyncError as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from exc
    if as_json:
        print(json.dumps(summary, ensure_ascii=False))
        return
    console.print(
        f"published {len(summary['tables'])} tables, {len(summary['teams'])} teams, "
        f"{summary['terms']} glossary terms, {summary['lineage_edges']} lineage edges "
        f"({summary['column_edges']} column edges) to {escape(get_settings().catalog.url)}"
    )


def _open_work_orders(outcomes) -> None:
    """A build's failed gate checks open or update work orders, when a work-order DB is set."""
    if not get_settings().work_orders.enabled:
        return
    from quality.orders import open_orders

    try:
        for t in open_orders(outcomes):
            err.print(f"work order {t.id} {t.action}: {t.table} / {t.check}")
    except Exception as exc:  # never hide the build's own outcome behind the order DB
        err.print(f"[yellow]work orders not updated:[/] {escape(str(exc))}")


quality_app = typer.Typer(
    help="Data quality: work orders (质量工单), regulator reports.", no_args_is_help=True
)
orders_app = typer.Typer(help="Quality work orders in PostgreSQL.", no_args_is_help=True)
quality_app.add_typer(orders_app, name="orders")
app.add_typer(quality_app, name="quality")


@quality_app.command("report")
def quality_report(
    start: Annotated[dt.datetime, typer.Option("--from", formats=["%Y-%m-%d"])],
    end: Annotated[dt.datetime, typer.Option("--to", formats=["%Y-%m-%d"])],
    department: Annotated[str | None, typer.Option(help="Only this owner department")] = None,
    out: Annotated[Path | None, typer.Option(help="Directory (default var/reports)")] = None,
) -> None:
    """The regulator report (数据质量评估报告) of a period in xlsx and docx."""
    from quality.report import write_report

    for path in write_report(start.date(), end.date(), department, out):
        console.print(f"wrote {path}")


@orders_app.command("list")
def orders_list(
    status: Annotated[list[str] | None, typer.Option(help="Only these statuses")] = None,
    department: Annotated[str | None, typer.Option(help="Only this owner department")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print rows as JSON")] = False,
) -> None:
    """Work orders, newest failure first."""
    from quality.orders import list_orders

    rows = list_orders(status=status, department=department)
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, default=str, indent=1))
        return
    table = Table("id", "status", "department", "table", "check", "severity", "bad", "last seen")
    for o in rows:
        table.add_row(
            str(o["id"]),
            o["status"],
            o["department"],
            o["table_name"],
            o["check_name"],
            o["severity"],
            str(o["unexpected_count"]),
            o["last_seen"].isoformat(timespec="seconds"),
        )
    console.print(table)


@orders_app.command("show")
def orders_show(order_id: int) -> None:
    """One work order with its history."""
    from quality.orders import OrderNotFound, get

    try:
        order = get(order_id)
    except OrderNotFound as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from exc
    print(json.dumps(order, ensure_ascii=False, default=str, indent=1))


def _order_move(verb: str):
    def move(
        order_id: int,
        by: Annotated[str, typer.Option("--by", help="Who makes the change")],
        comment: Annotated[str | None, typer.Option(help="Why, what was done")] = None,
    ) -> None:
        from quality.orders import VERBS, IllegalTransition, OrderNotFound, transition

        try:
            order = transition(order_id, VERBS[verb], by=by, comment=comment)
        except (IllegalTransition, OrderNotFound) as exc:
            err.print(f"[red]{escape(str(exc))}[/]")
            raise typer.Exit(2) from exc
        console.print(f"work order {order_id} is now {order['status']}")

    move.__doc__ = f"Move a work order on: {verb}."
    return move


for _verb in ("ack", "fix", "verify", "close"):
    orders_app.command(_verb)(_order_move(_verb))

from catalog.access_cli import app as access_app  # noqa: E402  (department access, issue #8)

app.add_typer(access_app, name="access")

from serving.cli import app as api_app  # noqa: E402  (data-product API, issue #8)

app.add_typer(api_app, name="api")


@app.command()
def ops(days: Annotated[int, typer.Option(help="Days back from now.")] = 7) -> None:
    """运维大盘: runs, failures and durations per DAG and day, from Airflow's metadata DB."""
    import os

    from citylake import orchestrator

    os.environ.update(orchestrator.environment(get_settings()))  # before Airflow is imported
    from citylake.operations import dag_days, render

    console.print(render(dag_days(days)), highlight=False)

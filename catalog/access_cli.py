"""`citylake access …`: department access requests to data products (数据产品授权申请)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from citylake.settings import get_settings

app = typer.Typer(
    help="Access to data products: request, approve, reject, revoke, list.", no_args_is_help=True
)
_WIDTH = None if sys.stdout.isatty() else 160
console = Console(width=_WIDTH)
err = Console(stderr=True, width=_WIDTH)

By = Annotated[str, typer.Option("--by", help="Who acts (a person's name)")]
Department = Annotated[str, typer.Option("--department", help="The acting department")]


def _refused(exc: Exception) -> typer.Exit:
    err.print(f"[red]{escape(str(exc))}[/]")
    return typer.Exit(2)


def _rules_written() -> None:
    """Regenerate Trino's rules from the grants now in force (Trino rereads the file)."""
    from catalog.trino_rules import write_rules

    try:
        path = write_rules(get_settings())
    except Exception as exc:  # the decision is stored; say that Trino was not told
        err.print(f"[yellow]Trino access rules not regenerated:[/] {escape(str(exc))}")
        return
    console.print(f"Trino access rules: {path}")


@app.command("request")
def request_cmd(
    product: Annotated[
        str, typer.Argument(help="Data product: an ADS table, e.g. ads_trade_daily")
    ],
    department: Department,
    purpose: Annotated[str, typer.Option(help="What the data is for")],
    by: By,
) -> None:
    """Apply for a data product on behalf of a department."""
    from catalog import grants

    try:
        row = grants.request(product, department=department, purpose=purpose, by=by)
    except grants.AccessError as exc:
        raise _refused(exc) from exc
    owner = grants.product(product).owner_department
    console.print(f"access request #{row['id']}: {department} → {product} (approver: {owner})")


@app.command("approve")
def approve_cmd(
    grant_id: int,
    by: By,
    department: Department,
    expires: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Last day of the grant (+08:00, inclusive)"),
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Note on the approval")] = None,
) -> None:
    """Approve a pending request (an approver of the product's owning department)."""
    from zoneinfo import ZoneInfo

    from catalog import grants

    expires_at = None
    tz = ZoneInfo(get_settings().timezone)
    if expires is not None:  # the whole last day, in the city's time
        expires_at = (expires + dt.timedelta(days=1)).replace(tzinfo=tz)
    try:
        row = grants.approve(
            grant_id, by=by, department=department, expires_at=expires_at, reason=reason
        )
    except (grants.AccessError, grants.GrantNotFound) as exc:
        raise _refused(exc) from exc
    console.print(
        f"access request #{grant_id} approved: {row['department']} reads {row['product']} "
        f"until {row['expires_at'].astimezone(tz).isoformat(timespec='minutes')}"
    )
    _rules_written()


@app.command("reject")
def reject_cmd(
    grant_id: int,
    by: By,
    department: Department,
    reason: Annotated[str, typer.Option(help="Why the request is rejected")],
) -> None:
    """Reject a pending request, with a reason."""
    from catalog import grants

    try:
        grants.reject(grant_id, by=by, department=department, reason=reason)
    except (grants.AccessError, grants.GrantNotFound) as exc:
        raise _refused(exc) from exc
    console.print(f"access request #{grant_id} rejected")


@app.command("revoke")
def revoke_cmd(
    grant_id: int,
    by: By,
    department: Department,
    reason: Annotated[str, typer.Option(help="Why the grant ends early")],
) -> None:
    """Revoke an approved grant."""
    from catalog import grants

    try:
        grants.revoke(grant_id, by=by, department=department, reason=reason)
    except (grants.AccessError, grants.GrantNotFound) as exc:
        raise _refused(exc) from exc
    console.print(f"access request #{grant_id} revoked")
    _rules_written()


@app.command("list")
def list_cmd(
    department: Annotated[str | None, typer.Option(help="Only this department")] = None,
    product: Annotated[str | None, typer.Option(help="Only this data product")] = None,
    status: Annotated[str | None, typer.Option(help="requested/approved/rejected/revoked")] = None,
    active: Annotated[bool, typer.Option("--active", help="Only grants in force now")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print rows as JSON")] = False,
) -> None:
    """Access requests and grants, newest first."""
    from catalog import grants

    rows = grants.list_requests(department=department, product_name=product, status=status)
    if active:
        live = {g.id for g in grants.active_grants(department)}
        rows = [r for r in rows if r["id"] in live]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, default=str, indent=1))
        return
    table = Table("id", "status", "department", "product", "purpose", "expires", "decided by")
    for r in rows:
        expires = r["expires_at"].isoformat(timespec="minutes") if r["expires_at"] else ""
        table.add_row(
            str(r["id"]),
            r["status"],
            r["department"],
            r["product"],
            r["purpose"],
            expires,
            r["decided_by"] or "",
        )
    console.print(table)

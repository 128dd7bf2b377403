"""Access grants (数据产品授权): a department applies for a data product, the owner approves.

A data product is an ADS table of the contracts; its owner department is the contract's
``owner_department``. A request (who, which department, what for) is ``requested`` until an
approver of the owning department decides: ``approved`` with an expiry, or ``rejected`` with a
reason. An approved grant can be ``revoked``. Every move is a row of ``grant_event`` (who, their
department, when, reason). A grant is active while approved and not yet expired; at most one
request per department and product is pending, and a department with an active grant cannot
request the same product again.

The grants live in PostgreSQL, in a database of their own (``Settings.access``), by default on
the project's own server; the data-product API's app tokens and its audit log live there too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg

from citylake.platform_db import PlatformDatabase
from citylake.settings import Settings, get_settings
from warehouse_layers.contract import TableContract, load_contracts

STATUSES = ("requested", "approved", "rejected", "revoked")

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS access;
CREATE TABLE IF NOT EXISTS access.grant_request (
    id           bigserial PRIMARY KEY,
    product      text        NOT NULL,
    department   text        NOT NULL,
    purpose      text        NOT NULL,
    status       text        NOT NULL DEFAULT 'requested'
        CHECK (status IN ('requested', 'approved', 'rejected', 'revoked')),
    requested_by text        NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    decided_by   text,
    decided_at   timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- One pending request per department and product.
CREATE UNIQUE INDEX IF NOT EXISTS grant_request_pending
    ON access.grant_request (product, department) WHERE status = 'requested';
CREATE INDEX IF NOT EXISTS grant_request_active
    ON access.grant_request (department, product) WHERE status = 'approved';
CREATE TABLE IF NOT EXISTS access.grant_event (
    id          bigserial PRIMARY KEY,
    grant_id    bigint      NOT NULL REFERENCES access.grant_request (id),
    from_status text,
    to_status   text        NOT NULL,
    actor       text        NOT NULL,
    actor_department text   NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    reason      text
);
CREATE TABLE IF NOT EXISTS access.app_token (
    id           bigserial PRIMARY KEY,
    app          text        NOT NULL UNIQUE,
    department   text        NOT NULL,
    token_sha256 text        NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS access.api_audit (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    app         text,
    department  text,
    product     text,
    path        text        NOT NULL,
    filters     jsonb       NOT NULL DEFAULT '{}',
    rows        integer     NOT NULL DEFAULT 0,
    status      integer     NOT NULL,
    client      text,
    duration_ms double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS api_audit_at ON access.api_audit (at);
"""


class AccessError(ValueError):
    """A request, decision or revocation the lifecycle refuses."""


class GrantNotFound(LookupError):
    pass


class UnknownProduct(AccessError):
    pass


@dataclass(frozen=True)
class Grant:
    """An active grant: `department` may read `product` until `expires_at`."""

    id: int
    product: str
    department: str
    expires_at: dt.datetime


def products(settings: Settings | None = None) -> dict[str, TableContract]:
    """The data products: the ADS tables of the contracts, by name."""
    settings = settings or get_settings()
    return {
        name: c for name, c in load_contracts(settings.contracts_dir).items() if c.layer == "ads"
    }


def product(name: str, settings: Settings | None = None) -> TableContract:
    known = products(settings)
    if name not in known:
        raise UnknownProduct(
            f"unknown data product {name!r}; data products are the ADS tables: "
            + ", ".join(sorted(known))
        )
    return known[name]


DATABASE = PlatformDatabase("access", SCHEMA, "access database")
connect = DATABASE.connect


def _event(conn, grant_id, from_status, to_status, actor, department, reason) -> None:
    conn.execute(
        "INSERT INTO access.grant_event (grant_id, from_status, to_status, actor,"
        " actor_department, reason) VALUES (%s, %s, %s, %s, %s, %s)",
        [grant_id, from_status, to_status, actor, department, reason],
    )


def _need(value: str, what: str) -> str:
    if not value or not value.strip():
        raise AccessError(f"{what} is required")
    return value.strip()


def request(
    product_name: str,
    *,
    department: str,
    purpose: str,
    by: str,
    settings: Settings | None = None,
    conn: psycopg.Connection | None = None,
) -> dict:
    """A department applies for a data product; the new request."""
    settings = settings or get_settings()
    product(product_name, settings)
    department, purpose, by = (
        _need(department, "the requesting department"),
        _need(purpose, "a purpose"),
        _need(by, "who requests (--by)"),
    )
    with DATABASE.using(conn, settings) as c, c.transaction():
        # Serialize requests of one department for one product (the pending index alone would
        # not stop a request racing an approval).
        c.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{department}/{product_name}"])
        existing = c.execute(
            "SELECT id, status, expires_at FROM access.grant_request WHERE product = %s"
            " AND department = %s AND (status = 'requested'"
            " OR (status = 'approved' AND expires_at > now()))",
            [product_name, department],
        ).fetchone()
        if existing is not None:
            what = (
                "a pending request"
                if existing["status"] == "requested"
                else f"an active grant until {existing['expires_at']:%Y-%m-%d %H:%M %Z}"
            )
            raise AccessError(
                f"{department} already has {what} for {product_name} (#{existing['id']})"
            )
        grant_id = c.execute(
            "INSERT INTO access.grant_request (product, department, purpose, requested_by)"
            " VALUES (%s, %s, %s, %s) RETURNING id",
            [product_name, department, purpose, by],
        ).fetchone()["id"]
        _event(c, grant_id, None, "requested", by, department, purpose)
        return get(grant_id, conn=c)


def _decide(
    grant_id: int,
    to_status: str,
    *,
    by: str,
    department: str,
    reason: str | None,
    expires_at: dt.datetime | None,
    settings: Settings,
    conn: psycopg.Connection | None,
) -> dict:
    by, department = _need(by, "who decides (--by)"), _need(department, "the approver's department")
    with DATABASE.using(conn, settings) as c, c.transaction():
        row = c.execute(
            "SELECT * FROM access.grant_request WHERE id = %s FOR UPDATE", [grant_id]
        ).fetchone()
        if row is None:
            raise GrantNotFound(f"no access request #{grant_id}")
        owner = product(row["product"], settings).owner_department
        if department != owner:
            raise AccessError(
                f"{row['product']} is owned by {owner}: only its approvers decide on it, "
                f"not {department}"
            )
        current = row["status"]
        allowed = {"approved": "requested", "rejected": "requested", "revoked": "approved"}
        if current != allowed[to_status]:
            raise AccessError(
                f"access request #{grant_id} is {current}: cannot move to {to_status} "
                f"(only a {allowed[to_status]} one can)"
            )
        if to_status == "approved":
            assert expires_at is not None
            if expires_at <= dt.datetime.now(dt.UTC):
                raise AccessError(f"the expiry {expires_at:%Y-%m-%d %H:%M} is already past")
            c.execute(
                "UPDATE access.grant_request SET status = 'approved', expires_at = %s,"
                " decided_by = %s, decided_at = now(), updated_at = now() WHERE id = %s",
                [expires_at, by, grant_id],
            )
        else:
            decided = ", decided_by = %s, decided_at = now()" if to_status == "rejected" else ""
            params = [to_status, by, grant_id] if decided else [to_status, grant_id]
            c.execute(
                f"UPDATE access.grant_request SET status = %s{decided}, updated_at = now()"
                " WHERE id = %s",
                params,
            )
        _event(c, grant_id, current, to_status, by, department, reason)
        return get(grant_id, conn=c)


def approve(
    grant_id: int,
    *,
    by: str,
    department: str,
    expires_at: dt.datetime | None = None,
    reason: str | None = None,
    settings: Settings | None = None,
    conn: psycopg.Connection | None = None,
) -> dict:
    """An approver of the owning department approves until `expires_at` (default: the
    settings' expiry from now)."""
    settings = settings or get_settings()
    if expires_at is None:
        expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(
            days=settings.access.default_expiry_days
        )
    elif expires_at.tzinfo is None:
        raise AccessError("the expiry needs a time zone")
    return _decide(
        grant_id,
        "approved",
        by=by,
        department=department,
        reason=reason,
        expires_at=expires_at,
        settings=settings,
        conn=conn,
    )


def reject(
    grant_id: int,
    *,
    by: str,
    department: str,
    reason: str,
    settings: Settings | None = None,
    conn: psycopg.Connection | None = None,
) -> dict:
    """An approver of the owning department rejects a pending request, with a reason."""
    return _decide(
        grant_id,
        "rejected",
        by=by,
        department=department,
        reason=_need(reason, "a reason for the rejection"),
        expires_at=None,
        settings=settings or get_settings(),
        conn=conn,
    )


def revoke(
    grant_id: int,
    *,
    by: str,
    department: str,
    reason: str,
    settings: Settings | None = None,
    conn: psycopg.Connection | None = None,
) -> dict:
    """An approver of the owning department ends an approved grant before its expiry."""
    return _decide(
        grant_id,
        "revoked",
        by=by,
        department=department,
        reason=_need(reason, "a reason for the revocation"),
        expires_at=None,
        settings=settings or get_settings(),
        conn=conn,
    )


def get(grant_id: int, *, settings: Settings | None = None, conn=None) -> dict:
    """One request with its history (``events``, oldest first)."""
    with DATABASE.using(conn, settings) as c:
        row = c.execute("SELECT * FROM access.grant_request WHERE id = %s", [grant_id]).fetchone()
        if row is None:
            raise GrantNotFound(f"no access request #{grant_id}")
        row["events"] = c.execute(
            "SELECT from_status, to_status, actor, actor_department, at, reason"
            " FROM access.grant_event WHERE grant_id = %s ORDER BY id",
            [grant_id],
        ).fetchall()
        return row


def list_requests(
    *,
    department: str | None = None,
    product_name: str | None = None,
    status: str | None = None,
    settings: Settings | None = None,
    conn=None,
) -> list[dict]:
    """Requests, newest first, optionally of one department, product or status."""
    with DATABASE.using(conn, settings) as c:
        return c.execute(
            "SELECT * FROM access.grant_request"
            " WHERE (%(d)s::text IS NULL OR department = %(d)s::text)"
            " AND (%(p)s::text IS NULL OR product = %(p)s::text)"
            " AND (%(s)s::text IS NULL OR status = %(s)s::text)"
            " ORDER BY id DESC",
            {"d": department, "p": product_name, "s": status},
        ).fetchall()


def active_grants(
    department: str | None = None,
    at: dt.datetime | None = None,
    *,
    settings: Settings | None = None,
    conn=None,
) -> list[Grant]:
    """Grants in force at `at` (default now): approved, not revoked, not yet expired; of one
    department or of all."""
    with DATABASE.using(conn, settings) as c:
        rows = c.execute(
            "SELECT id, product, department, expires_at FROM access.grant_request"
            " WHERE status = 'approved' AND expires_at > coalesce(%(at)s::timestamptz, now())"
            " AND (%(d)s::text IS NULL OR department = %(d)s::text)"
            " ORDER BY department, product",
            {"at": at, "d": department},
        ).fetchall()
    return [Grant(r["id"], r["product"], r["department"], r["expires_at"]) for r in rows]

"""App tokens: an app of a department calls the API with ``Authorization: Bearer <token>``.

Only the token's SHA-256 is stored (``access.app_token``): the token itself is printed once
when created and cannot be read back; a lost token is replaced by creating the app's again.
"""

from __future__ import annotations

import hashlib
import secrets

import psycopg

from catalog.grants import DATABASE, AccessError
from citylake.settings import Settings, get_settings


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(
    app: str,
    department: str,
    *,
    settings: Settings | None = None,
    conn: psycopg.Connection | None = None,
) -> str:
    """A new token for `app` bound to `department` (replacing the app's previous token)."""
    app, department = app.strip(), department.strip()
    if not app or not department:
        raise AccessError("an app token needs the app's name and its department")
    token = "clk_" + secrets.token_urlsafe(32)
    with DATABASE.using(conn, settings or get_settings()) as c, c.transaction():
        c.execute(
            "INSERT INTO access.app_token (app, department, token_sha256) VALUES (%s, %s, %s)"
            " ON CONFLICT (app) DO UPDATE SET department = excluded.department,"
            " token_sha256 = excluded.token_sha256, created_at = now()",
            [app, department, digest(token)],
        )
    return token


def all_tokens(conn: psycopg.Connection) -> dict[str, tuple[str, str]]:
    """sha256 → (app, department) of every token."""
    rows = conn.execute("SELECT token_sha256, app, department FROM access.app_token").fetchall()
    return {r["token_sha256"]: (r["app"], r["department"]) for r in rows}

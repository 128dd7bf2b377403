"""The platform's own PostgreSQL databases: access grants (``settings.access``) and quality work
orders (``settings.work_orders``).

Each lives in a database of its own, by default on the project's PostgreSQL (the source
database's host and port). On that loopback server the role and database are provisioned on
first use; a server elsewhere is provisioned by its administrators. A connection comes with its
schema in place. The modules' verbs take an optional connection so a caller can group them in
one transaction: ``using`` lends the caller's or opens (and closes) one of our own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row
from pydantic import SecretStr

from citylake.settings import Settings, get_settings


class DatabaseSettings(Protocol):
    host: str | None
    port: int | None
    dbname: str
    user: str
    password: SecretStr


# Servers whose schema this process has put in place: (host, port, dbname, server start), so a
# fresh server on a reused port (tests) gets its schema again.
_SCHEMA_READY: set[tuple[Any, ...]] = set()


@dataclass(frozen=True)
class PlatformDatabase:
    section: str  # the settings section: "access", "work_orders"
    schema: str  # idempotent DDL (CREATE ... IF NOT EXISTS)
    what: str  # for errors: "access database"

    def config(self, settings: Settings) -> DatabaseSettings:
        return getattr(settings, self.section)

    def server(self, settings: Settings) -> tuple[str, int]:
        db = self.config(settings)
        return db.host or settings.source_db.host, db.port or settings.source_db.port

    def conninfo(self, settings: Settings) -> dict[str, Any]:
        db = self.config(settings)
        host, port = self.server(settings)
        return dict(
            host=host,
            port=port,
            dbname=db.dbname,
            user=db.user,
            password=db.password.get_secret_value(),
            connect_timeout=10,
        )

    def provision(self, settings: Settings) -> None:
        """Create the role and database on the project's own loopback server."""
        from citylake import postgres

        host, port = self.server(settings)
        password_file = postgres.root_dir(settings) / "superuser.password"
        ours = host in ("127.0.0.1", "localhost") and port == settings.source_db.port
        if ours and password_file.is_file():
            db = self.config(settings)
            postgres.ensure_database(settings, db.dbname, db.user, db.password.get_secret_value())

    def connect(self, settings: Settings | None = None) -> psycopg.Connection:
        """A connection (rows as dicts) to the database, its schema in place."""
        settings = settings or get_settings()
        kwargs = self.conninfo(settings)
        try:
            conn = psycopg.connect(**kwargs, row_factory=dict_row)
        except psycopg.OperationalError:
            self.provision(settings)  # first use on our server: role/database may be missing
            try:
                conn = psycopg.connect(**kwargs, row_factory=dict_row)
            except psycopg.OperationalError as exc:
                env = f"CITYLAKE_{self.section.upper()}__HOST/PORT"
                raise RuntimeError(
                    f"{self.what} {kwargs['dbname']} on {kwargs['host']}:{kwargs['port']} is "
                    f"not reachable ({exc}); start the project's PostgreSQL (`citylake up "
                    f"postgres`) or point {env} at a server that has it"
                ) from None
        # One transaction block, so nothing is left open on the connection we hand out.
        with conn.transaction():
            started = conn.execute("SELECT pg_postmaster_start_time() AS t").fetchone()
            key = (kwargs["host"], kwargs["port"], kwargs["dbname"], started and started["t"])
            if key not in _SCHEMA_READY:
                lock = f"citylake.{self.section}.schema"
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [lock])
                conn.execute(self.schema)
        _SCHEMA_READY.add(key)
        return conn

    @contextmanager
    def using(
        self, conn: psycopg.Connection | None, settings: Settings | None = None
    ) -> Iterator[psycopg.Connection]:
        """The caller's connection, or one of our own, closed on exit."""
        if conn is not None:
            yield conn
            return
        own = self.connect(settings)
        try:
            yield own
        finally:
            own.close()

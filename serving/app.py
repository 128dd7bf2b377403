"""The data-product API (FastAPI): departments' apps read the ADS tables they are granted.

Every call goes through, in this order: the client network lists (403), the app token
(401), the app's rate limit (429), the product (404), the department's grant (403), the
product's rate limit (429); then a page of the product's rows. Each call is audited.

The request path touches no database: app tokens and the grants in force are reloaded by a
background task every ``grant_cache_seconds`` (≤ 1 s, so a revocation takes effect within a
second), Delta versions are checked by it too, and audit rows are queued and copied into
PostgreSQL in batches. Rate limits are per worker process: each worker allows its share
(rate / workers) of the configured rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from catalog import grants
from citylake.settings import Settings, get_settings
from serving.audit import AuditLog, Call
from serving.limits import Buckets, ClientNetworks
from serving.store import Filter, ProductStore, filters_of
from serving.tokens import all_tokens, digest

log = logging.getLogger("citylake.api")
_PY_TYPES = {"date": dt.date, "int": int, "bigint": int, "string": str}
_INT64 = {"ge": -(2**63), "le": 2**63 - 1}  # integer filters are compared as int64
_BOUNDS = {"int": _INT64, "bigint": _INT64}
bearer = HTTPBearer(auto_error=False, description="An app token: `citylake api token create`")


class Denied(Exception):
    def __init__(self, status: int, detail: str, retry_after: float | None = None) -> None:
        self.status, self.detail, self.retry_after = status, detail, retry_after


class Access:
    """What the background task keeps fresh: tokens and the grants in force."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tokens: dict[str, tuple[str, str]] = {}
        self.readable: dict[str, frozenset[str]] = {}
        self.loaded_at = 0.0
        self._conn = None

    def reload(self) -> None:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = grants.connect(self.settings)
                self._conn.autocommit = True
            tokens = all_tokens(self._conn)
            readable: dict[str, set[str]] = {}
            for g in grants.active_grants(settings=self.settings, conn=self._conn):
                readable.setdefault(g.department, set()).add(g.product)
        except Exception:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            raise
        self.tokens = tokens
        self.readable = {d: frozenset(p) for d, p in readable.items()}
        self.loaded_at = time.monotonic()

    def fresh(self) -> bool:
        # Stale grants are not trusted: a revocation must not be missed for long.
        return time.monotonic() - self.loaded_at < max(5 * self.settings.api.grant_cache_seconds, 5)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    api = settings.api
    products = grants.products(settings)
    store = ProductStore(settings, products)
    access = Access(settings)
    audit = AuditLog(settings)
    share = max(api.workers, 1)
    app_buckets = Buckets(api.app_rate / share, max(api.app_burst // share, 1))
    product_buckets = Buckets(api.product_rate / share, max(api.product_burst // share, 1))
    networks = ClientNetworks(api.allow_cidrs, api.deny_cidrs)

    async def attempt(work: Callable[[], object], failure: str) -> None:
        """Run `work` off the event loop; a failure is logged and retried on the next round
        (a database or the warehouse briefly away must not stop the API)."""
        try:
            await asyncio.to_thread(work)
        except Exception as exc:
            log.warning("%s: %s", failure, exc)

    async def background() -> None:
        """Reload grants and tokens, look for new Delta versions, flush the audit."""
        last_versions = last_flush = 0.0
        while True:
            now = time.monotonic()
            await attempt(access.reload, "grants not reloaded")
            if now - last_versions >= api.version_check_seconds:
                last_versions = now
                await attempt(store.refresh, "snapshots not refreshed")
            if now - last_flush >= api.audit_flush_seconds:
                last_flush = now
                await attempt(audit.flush, "audit not written (kept for the next flush)")
            await asyncio.sleep(min(api.grant_cache_seconds, api.audit_flush_seconds) / 2)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(access.reload)
        await asyncio.to_thread(store.refresh)
        task = asyncio.create_task(background())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await asyncio.to_thread(audit.flush)
            audit.close()
            access.close()

    app = FastAPI(
        title="citylake data products",
        description="城市数字经济数据产品接口: ADS tables for departments holding a grant "
        "(`citylake access`). Authenticate with `Authorization: Bearer <app token>`.",
        version="1",
        lifespan=lifespan,
    )
    app.state.store, app.state.access, app.state.audit = store, access, audit

    def caller(client: str | None, token: str | None):
        """(app, department) of the calling token, after the network and app-rate checks."""
        if not networks.permits(client):
            raise Denied(403, "client address not allowed")
        if not token:
            raise Denied(401, "an app token is required: Authorization: Bearer <token>")
        if not access.fresh():
            raise Denied(503, "grants are not available; try again shortly", 1.0)
        who = access.tokens.get(digest(token))
        if who is None:
            raise Denied(401, "unknown app token")
        wait = app_buckets.take(who[0])
        if wait:
            raise Denied(429, f"rate limit of app {who[0]} reached", wait)
        return who

    def audited(
        path: str,
        client: str | None,
        started: float,
        who,
        product: str | None,
        filters: dict,
        rows: int,
        status: int,
    ) -> None:
        audit.record(
            Call(
                at=dt.datetime.now(dt.UTC),
                app=who[0] if who else None,
                department=who[1] if who else None,
                product=product,
                path=path,
                filters=filters,
                rows=rows,
                status=status,
                client=client,
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        )

    def refused(exc: Denied) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        headers = [(b"content-type", b"application/json")]
        if exc.retry_after:
            headers.append((b"retry-after", str(max(1, round(exc.retry_after + 0.5))).encode()))
        body = json.dumps({"detail": exc.detail}, ensure_ascii=False).encode()
        return exc.status, body, headers

    def _response(result: tuple[int, bytes, list[tuple[bytes, bytes]]]) -> Response:
        status, body, headers = result
        extra = {k.decode(): v.decode() for k, v in headers if k != b"content-type"}
        return Response(body, status_code=status, media_type="application/json", headers=extra)

    @app.get("/products", summary="Data products the caller's department may read")
    async def list_products(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None,
    ) -> Response:
        started = time.perf_counter()
        client = request.client.host if request.client else None
        path = request.scope["path"]
        who = None
        try:
            who = caller(client, credentials.credentials if credentials else None)
        except Denied as exc:
            audited(path, client, started, who, None, {}, 0, exc.status)
            return _response(refused(exc))
        readable = access.readable.get(who[1], frozenset())
        body = [
            {
                "name": name,
                "description": c.description.zh,
                "owner_department": c.owner_department,
                "filters": [f.param for f in filters_of(c)],
            }
            for name, c in sorted(products.items())
            if name in readable
        ]
        audited(path, client, started, who, None, {}, len(body), 200)
        return JSONResponse({"department": who[1], "products": body})

    def serve(
        path: str,
        client: str | None,
        token: str | None,
        name: str,
        limit: int,
        offset: int,
        values: dict[str, Any],
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """One product read: (status, JSON body, headers); audited."""
        started = time.perf_counter()
        who = None
        given = {k: v for k, v in values.items() if v is not None}
        try:
            who = caller(client, token)
            contract = products.get(name)
            if contract is None:
                raise Denied(404, f"unknown data product {name!r}")
            if name not in access.readable.get(who[1], ()):
                raise Denied(403, f"{who[1]} holds no active grant for {name}")
            wait = product_buckets.take(name)
            if wait:
                raise Denied(429, f"rate limit of {name} reached", wait)
            snap = store.snapshot(name)
            if snap is None:
                raise Denied(404, f"{name} has no data yet")
            offered = filters[name]
            chosen = tuple((offered[k], given[k]) for k in sorted(given))
            body, rows, total = store.page(snap, chosen, limit, offset)
        except Denied as exc:
            audited(path, client, started, who, name, _jsonable(given), 0, exc.status)
            return refused(exc)
        head = (
            f'{{"product":"{name}","version":{snap.version},"total":{total},'
            f'"limit":{limit},"offset":{offset},"rows":'
        ).encode()
        audited(path, client, started, who, name, _jsonable(given), rows, 200)
        return 200, head + body + b"}", [(b"content-type", b"application/json")]

    def serve_request(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None,
        name: str,
        limit: int,
        offset: int,
        values: dict[str, Any],
    ) -> Response:
        client = request.client.host if request.client else None
        token = credentials.credentials if credentials else None
        return _response(serve(request.scope["path"], client, token, name, limit, offset, values))

    filters = {name: {f.param: f for f in filters_of(c)} for name, c in products.items()}
    Limit = Annotated[int, Query(ge=1, le=api.max_limit, description="Rows per page")]
    Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Rows to skip")]
    for name, contract in sorted(products.items()):
        app.add_api_route(
            f"/products/{name}",
            _product_endpoint(
                name, filters_of(contract), serve_request, Limit, Offset, api.default_limit
            ),
            methods=["GET"],
            summary=f"{contract.description.zh} ({contract.owner_department})",
            description=f"{contract.description.en}. Rows in primary-key order "
            f"({', '.join(contract.primary_key)}); filters on the key columns.",
            response_class=Response,
            responses={
                200: {"content": {"application/json": {}}, "description": "A page of rows"},
                401: {"description": "No or unknown app token"},
                403: {"description": "No active grant, or client address refused"},
                429: {"description": "Rate limit reached (see Retry-After)"},
            },
            tags=["products"],
        )

    @app.get("/products/{name}", summary="Any other product name", tags=["products"])
    async def unknown_product(
        request: Request,
        name: str,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None,
    ) -> Response:
        return serve_request(request, credentials, name, 1, 0, {})

    fast = FastPath(app, serve, filters, api.default_limit, api.max_limit)
    fast.state = app.state  # tests and the CLI reach the store, grants and audit through it
    return fast  # type: ignore[return-value]


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT = re.compile(r"^-?\d{1,18}$")


class FastPath:
    """The product reads without FastAPI's per-request parameter machinery (measured: three
    quarters of a call's CPU). It serves only requests whose query it can read plainly and
    strictly: GET of a known product, each parameter once, dates as YYYY-MM-DD, integers as
    digits, limit and offset in range; anything else goes to the FastAPI app, which validates
    (422), documents (OpenAPI) and serves it the same way."""

    def __init__(self, app: FastAPI, serve: Callable, filters: dict, default: int, most: int):
        self.app, self.serve, self.filters = app, serve, filters
        self.default, self.most = default, most

    def _query(self, name: str, raw: bytes) -> tuple[int, int, dict] | None:
        offered = self.filters[name]
        limit, offset, values = self.default, 0, {}
        seen = set()
        for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
            if key in seen or not value:
                return None
            seen.add(key)
            if key in ("limit", "offset"):
                if not value.isdigit() or len(value) > 9:
                    return None
                number = int(value)
                if key == "limit":
                    if not 1 <= number <= self.most:
                        return None
                    limit = number
                elif number > 10_000_000:
                    return None
                else:
                    offset = number
                continue
            f = offered.get(key)
            if f is None:
                continue  # FastAPI ignores unknown parameters too
            if f.type == "date":
                if not _DATE.match(value):
                    return None
                try:
                    values[key] = dt.date.fromisoformat(value)
                except ValueError:
                    return None
            elif f.type in ("int", "bigint"):
                if not _INT.match(value):
                    return None
                values[key] = int(value)
            elif f.type == "string" and value.isascii() and value.isprintable():
                values[key] = value
            else:
                return None
        return limit, offset, values

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            name = path[10:] if path.startswith("/products/") else None
            if name in self.filters:
                query = self._query(name, scope["query_string"])
                if query is not None:
                    token = None
                    for key, value in scope["headers"]:
                        if key == b"authorization":
                            scheme, _, credentials = value.decode("latin-1").partition(" ")
                            if scheme.lower() == "bearer" and credentials:
                                token = credentials
                            break
                    client = scope.get("client")
                    status, body, headers = self.serve(
                        path, client[0] if client else None, token, name, *query
                    )
                    headers.append((b"content-length", str(len(body)).encode()))
                    await send(
                        {"type": "http.response.start", "status": status, "headers": headers}
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in values.items()}


def _product_endpoint(
    name: str,
    filters: list[Filter],
    serve: Callable,
    limit_type: Any,
    offset_type: Any,
    default: int,
) -> Callable:
    """An endpoint whose signature names the product's filters, so OpenAPI documents them."""

    async def endpoint(request: Request, **kwargs: Any) -> Response:
        credentials = kwargs.pop("credentials")
        limit, offset = kwargs.pop("limit"), kwargs.pop("offset")
        return serve(request, credentials, name, limit, offset, kwargs)

    params = [
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
        inspect.Parameter(
            "credentials",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
            default=None,
        ),
        inspect.Parameter(
            "limit", inspect.Parameter.KEYWORD_ONLY, annotation=limit_type, default=default
        ),
        inspect.Parameter(
            "offset", inspect.Parameter.KEYWORD_ONLY, annotation=offset_type, default=0
        ),
    ]
    for f in filters:
        what = {"eq": "equals", "ge": "from (inclusive)", "le": "to (inclusive)"}[f.op]
        params.append(
            inspect.Parameter(
                f.param,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[
                    _PY_TYPES.get(f.type, str) | None,
                    Query(description=f"{f.column} {what}", **_BOUNDS.get(f.type, {})),
                ],
                default=None,
            )
        )
    endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    endpoint.__name__ = f"read_{name}"
    return endpoint

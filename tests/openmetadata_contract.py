"""A loopback HTTP server that holds `citylake catalog sync` to OpenMetadata's published API
contract, for tests: the real server cannot be installed here
(docs/decisions/openmetadata-server.md).

It serves the part of OpenMetadata's REST API (``/api/v1``) that the sync uses — the version
check, PUT of services, databases, schemas, tables, teams, classifications, tags, glossaries,
glossary terms and lineage, and GET of what was stored — and validates every request body
against the JSON schema OpenMetadata publishes for it (``catalog/spec.py``). A body that breaks
its schema is answered 400 and kept in ``violations``; so is a reference the server would
refuse: an unknown tag or glossary term, an owner that is no team, a lineage edge between
unknown tables or naming a column its table lacks. Like the server it keeps a new version of
an entity whose PUT changes it, and the same PUT again changes nothing.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import jsonschema
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from referencing import Registry

from catalog.spec import BASE

SERVER_VERSION = "2.0.6"  # the API the client speaks; it refuses another major.minor

# collection -> (request schema, entity type, the field naming the parent, the parent's type)
COLLECTIONS: dict[str, tuple[str, str, str | None, str | None]] = {
    "classifications": (
        "api/classification/createClassification.json",
        "classification",
        None,
        None,
    ),
    "tags": ("api/classification/createTag.json", "tag", "classification", "classification"),
    "teams": ("api/teams/createTeam.json", "team", None, None),
    "glossaries": ("api/data/createGlossary.json", "glossary", None, None),
    "glossaryTerms": ("api/data/createGlossaryTerm.json", "glossaryTerm", "glossary", "glossary"),
    "services/databaseServices": (
        "api/services/createDatabaseService.json",
        "databaseService",
        None,
        None,
    ),
    "databases": ("api/data/createDatabase.json", "database", "service", "databaseService"),
    "databaseSchemas": (
        "api/data/createDatabaseSchema.json",
        "databaseSchema",
        "database",
        "database",
    ),
    "tables": ("api/data/createTable.json", "table", "databaseSchema", "databaseSchema"),
}
LINEAGE_SCHEMA = "api/lineage/addLineage.json"
# What the server adds to a request to make the entity; the rest is compared for a new version.
_SERVER_FIELDS = ("id", "fullyQualifiedName", "version", "updatedAt", "updatedBy", "href")


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Store:
    entities: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # type -> fqn
    requests: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # id -> old versions
    lineage: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def by_id(self, entity_id: str) -> tuple[str, dict[str, Any]]:
        for kind, entities in self.entities.items():
            for entity in entities.values():
                if entity["id"] == entity_id:
                    return kind, entity
        raise Refused(404, f"no entity {entity_id}")

    def get(self, kind: str, fqn: str) -> dict[str, Any]:
        try:
            return self.entities[kind][fqn]
        except KeyError:
            raise Refused(404, f"{kind} instance for {fqn} not found") from None


def reference(kind: str, entity: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": entity["id"],
        "type": kind,
        "name": entity["name"],
        "fullyQualifiedName": entity["fullyQualifiedName"],
        "displayName": entity.get("displayName", entity["name"]),
        "deleted": False,
    }


class ContractServer:
    """OpenMetadata's API subset on 127.0.0.1 at a free port; ``url`` is the client's
    hostPort. Use as a context manager: the server thread stops on exit."""

    def __init__(self, schemas: dict[str, dict[str, Any]], registry: Registry, token: str):
        self.schemas, self.registry, self.token = schemas, registry, token
        self.store = Store()
        self.app = self._app()
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/api"
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def __enter__(self) -> ContractServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("contract server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    # -- validation ----------------------------------------------------------------------
    def validate(self, schema: str, body: Any, what: str) -> None:
        validator = jsonschema.Draft7Validator(
            self.schemas[BASE + schema],
            registry=self.registry,
            format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER,
        )
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        if errors:
            detail = "; ".join(
                f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in errors
            )
            raise Refused(400, f"{what} breaks {schema}: {detail}")

    def _tags(self, labels: list[dict[str, Any]] | None, where: str) -> list[dict[str, Any]]:
        for label in labels or []:
            kind = "glossaryTerm" if label["source"] == "Glossary" else "tag"
            if label["tagFQN"] not in self.store.entities.get(kind, {}):
                raise Refused(404, f"{where}: {kind} {label['tagFQN']} not found")
        return labels or []

    # -- entities ------------------------------------------------------------------------
    def put(self, collection: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        schema, kind, parent_field, parent_kind = COLLECTIONS[collection]
        self.validate(schema, body, f"PUT {collection}")
        entity = json.loads(json.dumps(body))
        if parent_field:
            parent = self.store.get(parent_kind, body[parent_field])
            entity[parent_field] = reference(parent_kind, parent)
            fqn = f"{parent['fullyQualifiedName']}.{body['name']}"
            for inherited in ("service", "database"):  # a schema or table names its ancestors
                if inherited in parent and inherited != parent_field:
                    entity[inherited] = parent[inherited]
        else:
            fqn = body["name"]
        entity["fullyQualifiedName"] = fqn
        if "tags" in body:
            entity["tags"] = self._tags(body["tags"], fqn)
        owners = []
        for owner in body.get("owners") or []:
            if owner["type"] != "team":
                raise Refused(400, f"{fqn}: owner of type {owner['type']}, a team expected")
            owner_kind, team = self.store.by_id(owner["id"])
            if owner_kind != "team":
                raise Refused(404, f"{fqn}: owner {owner['id']} is no team")
            owners.append(reference("team", team))
        if owners:
            entity["owners"] = owners
        for position, col in enumerate(entity.get("columns") or [], start=1):
            col["fullyQualifiedName"] = f"{fqn}.{col['name']}"
            col["ordinalPosition"] = position
            if "tags" in col:
                col["tags"] = self._tags(col["tags"], col["fullyQualifiedName"])
        previous = self.store.entities.setdefault(kind, {}).get(fqn)
        status = 201
        if previous is None:
            entity |= {"id": str(uuid.uuid4()), "version": 0.1}
        else:
            status = 200
            entity["id"] = previous["id"]
            if self.store.requests[(kind, fqn)] == body:
                return status, previous  # nothing changed: no new version
            entity["version"] = round(previous["version"] + 0.1, 1)
            self.store.versions.setdefault(previous["id"], []).append(previous)
        entity |= {
            "updatedAt": int(time.time() * 1000),
            "updatedBy": "citylake-bot",
            "href": f"{self.url}/v1/{collection}/{entity['id']}",
            "deleted": False,
        }
        self.store.entities[kind][fqn] = entity
        self.store.requests[(kind, fqn)] = body
        return status, entity

    def put_lineage(self, body: dict[str, Any]) -> None:
        self.validate(LINEAGE_SCHEMA, body, "PUT lineage")
        edge = body["edge"]
        ends = []
        for end in ("fromEntity", "toEntity"):
            kind, entity = self.store.by_id(edge[end]["id"])
            if kind != edge[end]["type"]:
                raise Refused(400, f"lineage {end} {edge[end]['id']} is a {kind}")
            ends.append(entity)
        columns = {c["fullyQualifiedName"] for end in ends for c in end.get("columns") or []}
        details = edge.get("lineageDetails") or {}
        for pair in details.get("columnsLineage") or []:
            for name in [*pair.get("fromColumns", []), pair.get("toColumn")]:
                if name not in columns:
                    raise Refused(400, f"lineage names column {name}, which its tables lack")
        self.store.lineage[(ends[0]["id"], ends[1]["id"])] = {
            "fromEntity": ends[0]["id"],
            "toEntity": ends[1]["id"],
            "lineageDetails": details,
        }

    def lineage_of(self, kind: str, fqn: str) -> dict[str, Any]:
        entity = self.store.get(kind, fqn)
        edges = self.store.lineage.values()
        up = [e for e in edges if e["toEntity"] == entity["id"]]
        down = [e for e in edges if e["fromEntity"] == entity["id"]]
        nodes = {e["fromEntity"] for e in up} | {e["toEntity"] for e in down}
        return {
            "entity": reference(kind, entity),
            "nodes": [reference(*self.store.by_id(n)) for n in sorted(nodes)],
            "upstreamEdges": up,
            "downstreamEdges": down,
        }

    # -- HTTP ----------------------------------------------------------------------------
    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/api/v1/{path:path}", methods=["GET", "PUT", "POST", "PATCH", "DELETE"])
        async def route(path: str, request: Request) -> JSONResponse:
            self.store.calls.append((request.method, path))
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return JSONResponse({"code": 401, "message": "Not authorized"}, 401)
            try:
                body = await request.json() if request.method in ("PUT", "POST") else None
                status, answer = self.handle(request.method, unquote(path), body)
            except Refused as exc:
                self.store.violations.append(f"{request.method} {path}: {exc}")
                return JSONResponse({"code": exc.status, "message": str(exc)}, exc.status)
            return JSONResponse(answer, status)

        return app

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if method == "GET" and path == "system/version":
            return 200, {"version": SERVER_VERSION, "revision": "contract", "timestamp": 0}
        if method == "PUT" and path == "lineage":
            self.put_lineage(body)
            return 200, {}
        if method == "PUT" and path in COLLECTIONS:
            return self.put(path, body)
        if method == "GET" and path.startswith("lineage/"):
            _, kind, _, fqn = path.split("/", 3)  # lineage/table/name/<fqn>
            return 200, self.lineage_of(kind, fqn)
        if method == "GET":
            for collection, (_, kind, _, _) in COLLECTIONS.items():
                if path.startswith(f"{collection}/name/"):
                    return 200, self.store.get(kind, path.removeprefix(f"{collection}/name/"))
                if path.startswith(f"{collection}/") and path.endswith("/versions"):
                    entity_id = path.removeprefix(f"{collection}/").removesuffix("/versions")
                    _, current = self.store.by_id(entity_id)
                    history = [current, *reversed(self.store.versions.get(entity_id, []))]
                    return 200, {
                        "entityType": kind,
                        "versions": [json.dumps(v, ensure_ascii=False) for v in history],
                    }
        raise Refused(405, f"{method} {path} is not part of what the sync may call")

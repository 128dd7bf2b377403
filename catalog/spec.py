"""OpenMetadata's published API contract: the JSON schemas of
``org.open-metadata:openmetadata-spec`` from Maven Central, read from inside the jar (cached
under .cache/jars like Spark's jars).

The tests check every request `citylake catalog sync` sends against these schemas
(``tests/openmetadata_contract.py``), because the server itself cannot be installed from what
these machines reach (docs/decisions/openmetadata-server.md).

Central serves the spec at 0.13.2, 1.2.0 and 1.4.0 only, not at 2.0.x, the version of the
client (openmetadata-ingestion 2.0.6). Between the two, one change touches the requests the
sync sends: OpenMetadata 1.5 made ownership multi-valued, ``owner`` (an entity reference)
became ``owners`` (a list of them). ``api_schemas`` applies exactly that change, and nothing
else, to the 1.4.0 request schemas; every other field is checked as 1.4.0 publishes it.
"""

from __future__ import annotations

import json
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from citylake.jars import MavenArtifact, resolve
from citylake.settings import Settings

SPEC = MavenArtifact("org.open-metadata", "openmetadata-spec", "1.4.0")
BASE = "https://open-metadata.org/schema/"


def spec_jar(settings: Settings) -> Path:
    """The spec jar, downloaded once (SHA-1 checked) into the jar cache."""
    return resolve(settings, (SPEC,))[0]


def _owners_as_list(schema: dict[str, Any]) -> dict[str, Any]:
    """The 1.5 change: a request's single ``owner`` became the list ``owners``."""
    properties = schema.get("properties", {})
    if "owner" in properties:
        owner = properties.pop("owner")
        properties["owners"] = {"type": "array", "items": {"$ref": owner["$ref"]}}
    return schema


@cache
def _schemas(jar: Path) -> dict[str, dict[str, Any]]:
    schemas = {}
    with zipfile.ZipFile(jar) as archive:
        for name in archive.namelist():
            if name.startswith("json/schema/") and name.endswith(".json"):
                schema = json.loads(archive.read(name))
                uri = BASE + name.removeprefix("json/schema/")
                if uri.startswith(BASE + "api/"):
                    schema = _owners_as_list(schema)
                schema.setdefault("$id", uri)
                schemas[uri] = schema
    return schemas


def api_schemas(jar: Path) -> tuple[dict[str, dict[str, Any]], Registry]:
    """Every schema of the jar by URI (e.g. ``…/api/data/createTable.json``), and a registry
    that resolves their relative ``$ref``s."""
    schemas = _schemas(jar)
    resources = []
    for uri, schema in schemas.items():
        resource = Resource.from_contents(schema, default_specification=DRAFT7)
        resources.append((uri, resource))
        if schema["$id"] != uri:  # a few schemas name themselves differently
            resources.append((schema["$id"], resource))
    return schemas, Registry().with_resources(resources)

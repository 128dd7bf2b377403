"""`citylake catalog sync`: the content from here, the publishing by ``catalog/sync.py`` in the
catalog's own virtual environment (openmetadata-ingestion cannot share this one's pins)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from catalog.content import document
from citylake.settings import PROJECT_ROOT, Settings


class CatalogSyncError(RuntimeError):
    pass


def sync(settings: Settings, content: dict[str, Any] | None = None) -> dict[str, Any]:
    """Publish `content` (default: computed from the contracts and models) to the server of
    ``settings.catalog``; returns the sync's summary (tables with their versions, counts)."""
    catalog = settings.catalog
    python = catalog.venv / "bin" / "python"
    if not python.exists():
        raise CatalogSyncError(
            f"{python} not found: `make setup` creates the catalog's environment "
            "(catalog/requirements.txt)"
        )
    if catalog.token is None:
        raise CatalogSyncError(
            "no OpenMetadata token: set CITYLAKE_CATALOG__TOKEN to a bot's JWT (docs/catalog.md)"
        )
    # The client's imports take seconds (openmetadata-ingestion loads its profiler on import):
    # start the sync first, so they run while SQLMesh parses the models' lineage here.
    process = subprocess.Popen(
        [str(python), str(PROJECT_ROOT / "catalog" / "sync.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
    )
    try:
        request = {
            "target": {
                "url": catalog.url,
                "token": catalog.token.get_secret_value(),  # on stdin: never in argv or the env
                "service": catalog.service,
                "database": catalog.database,
            },
            "content": content if content is not None else document(settings),
        }
        stdout, stderr = process.communicate(json.dumps(request, ensure_ascii=False))
    except BaseException:
        process.kill()
        process.wait()
        raise
    if process.returncode != 0:
        raise CatalogSyncError(f"catalog sync failed ({process.returncode}):\n{stderr}")
    return json.loads(stdout)

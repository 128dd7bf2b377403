"""Trino's file-based access control generated from the grants in force.

Trino reads ``<var>/trino/access-rules.json`` (system-level file-based access control,
``etc/access-control.properties``) and rereads it every ``security.refresh-period``, so an
approval or a revocation takes effect without a restart. The rules:

- the platform user (``settings.trino.user``) keeps everything (it registers tables, builds);
- each department is a Trino user (``settings.access.trino_users``); it may SELECT exactly the
  ADS tables it holds an active grant for, in the warehouse catalog, and nothing else;
- every other user, and every other table, gets nothing (the last table rule grants no
  privileges; catalogs without a rule are invisible).

A grant's expiry is enforced at generation time: the file is regenerated after each change
through `citylake access`, when Trino starts, and on the schedule of the Airflow DAG
``citylake_access_rules`` (``settings.access.rules_schedule``, every 5 minutes by default), so
an expired grant closes in SQL within that period (the API checks expiry on every call).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path

from citylake.settings import Settings, get_settings

ALL_PRIVILEGES = ["SELECT", "INSERT", "DELETE", "UPDATE", "OWNERSHIP", "GRANT_SELECT"]


def trino_user(department: str, settings: Settings) -> str:
    """The Trino user a department's analysts connect as."""
    mapped = settings.access.trino_users.get(department)
    if mapped:
        return mapped
    return "dept_" + hashlib.sha256(department.encode()).hexdigest()[:10]


def rules_path(settings: Settings) -> Path:
    return settings.var_dir / "trino" / "access-rules.json"


def _exactly(name: str) -> str:
    return "^" + re.escape(name) + "$"  # rules match by regular expression


def rules(grants: Iterable, settings: Settings) -> dict:
    """The rules JSON for the active `grants` (objects with ``department`` and ``product``)."""
    platform = _exactly(settings.trino.user)
    catalog = _exactly(settings.trino.catalog)
    readable: dict[str, set[str]] = {}
    for grant in grants:
        readable.setdefault(trino_user(grant.department, settings), set()).add(grant.product)
    catalogs: list[dict] = [{"user": platform, "catalog": ".*", "allow": "all"}]
    schemas: list[dict] = [{"user": platform, "schema": ".*", "owner": True}]
    tables: list[dict] = [{"user": platform, "privileges": ALL_PRIVILEGES}]
    for user in sorted(readable):
        catalogs.append({"user": _exactly(user), "catalog": catalog, "allow": "read-only"})
        for table in sorted(readable[user]):
            tables.append(
                {
                    "user": _exactly(user),
                    "catalog": catalog,
                    "schema": "^ads$",
                    "table": _exactly(table),
                    "privileges": ["SELECT"],
                }
            )
    tables.append({"privileges": []})  # anyone else, anything else: nothing
    return {
        "catalogs": catalogs,
        "schemas": schemas,
        "tables": tables,
        "procedures": [
            {
                "user": platform,
                "catalog": ".*",
                "schema": ".*",
                "procedure": ".*",
                "privileges": ["EXECUTE", "GRANT_EXECUTE"],
            }
        ],
    }


def write(rules_json: dict, settings: Settings) -> Path:
    """Replace the rules file atomically: Trino never reads half a file."""
    path = rules_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(rules_json, ensure_ascii=False, indent=1) + "\n")
    partial.replace(path)
    return path


def write_rules(settings: Settings | None = None) -> Path:
    """Regenerate the rules file from the grants in force now (reads the access database)."""
    from catalog.grants import active_grants

    settings = settings or get_settings()
    return write(rules(active_grants(settings=settings), settings), settings)


def ensure_rules(settings: Settings) -> Path:
    """Rules for Trino's start: from the grants when their database answers, else the file
    already written, else the platform user only (departments read nothing until granted)."""
    try:
        return write_rules(settings)
    except Exception:  # the access database is not up: never start Trino without rules
        path = rules_path(settings)
        return path if path.is_file() else write(rules([], settings), settings)


def access_control_properties(settings: Settings) -> dict[str, str]:
    return {
        "access-control.name": "file",
        "security.config-file": str(rules_path(settings)),
        "security.refresh-period": f"{settings.access.trino_refresh_seconds}s",
    }

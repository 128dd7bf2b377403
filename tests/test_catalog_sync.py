"""`citylake catalog sync` against OpenMetadata's published API contract.

The real server cannot be installed here (docs/decisions/openmetadata-server.md), so the sync
— the real OpenMetadata client in .venv-catalog — talks to a loopback server that checks every
request body against the JSON schemas of ``org.open-metadata:openmetadata-spec``
(tests/openmetadata_contract.py), stores what it accepts, and answers the reads a person or
tool would make: a table with its owner team and tags, its column lineage, its versions.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from catalog.content import lineage
from catalog.publish import CatalogSyncError, sync
from catalog.spec import BASE, api_schemas, spec_jar
from citylake.settings import PROJECT_ROOT, Settings
from tests.openmetadata_contract import ContractServer
from warehouse_layers.contract import load_contracts

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJpbmdlc3Rpb24tYm90In0.c2lnbmF0dXJl"  # a bot's JWT
FQN = "citylake.lake"


@pytest.fixture(scope="module")
def contract() -> tuple[dict[str, Any], Any]:
    return api_schemas(spec_jar(Settings()))


@pytest.fixture
def server(contract: tuple[dict[str, Any], Any]) -> Iterator[ContractServer]:
    with ContractServer(*contract, token=TOKEN) as running:
        yield running


def settings_for(server: ContractServer) -> Settings:
    return Settings(catalog={"url": server.url, "token": TOKEN})


def get(server: ContractServer, path: str) -> Any:
    response = httpx.get(
        f"{server.url}/v1/{path}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    response.raise_for_status()
    return response.json()


def edges_into(server: ContractServer, table: str) -> dict[str, dict[str, list[str]]]:
    """Upstream table -> {target column FQN: source column FQNs} of `table`'s lineage."""
    answer = get(server, f"lineage/table/name/{table}?upstreamDepth=1&downstreamDepth=1")
    schemas, registry = server.schemas, server.registry
    jsonschema.Draft7Validator(
        schemas[BASE + "type/entityLineage.json"], registry=registry
    ).validate(answer)  # what the server answers has the published shape too
    names = {n["id"]: n["name"] for n in answer["nodes"]}
    return {
        names[edge["fromEntity"]]: {
            c["toColumn"]: c["fromColumns"]
            for c in edge["lineageDetails"].get("columnsLineage") or []
        }
        for edge in answer["upstreamEdges"]
    }


def test_sync_publishes_tables_owners_tags_terms_and_lineage(
    server: ContractServer, tmp_path: Path
) -> None:
    settings = settings_for(server)
    summary = sync(settings)  # the contracts, plus SQLMesh's column lineage of the models
    assert server.store.violations == []
    contracts = load_contracts(settings.contracts_dir)
    assert set(summary["tables"]) == set(contracts)
    assert set(summary["tables"].values()) == {"0.1"}

    # A table reads back with its zh description, owner team, layer/domain tags, PII levels.
    table = get(server, f"tables/name/{FQN}.dwd.dwd_pay_transaction?fields=owners,tags,columns")
    source = contracts["dwd_pay_transaction"]
    assert table["description"].startswith(source.description.zh)
    assert [o["name"] for o in table["owners"]] == [source.owner_department]
    assert {t["tagFQN"] for t in table["tags"]} == {"citylake_layer.dwd", "citylake_domain.payment"}
    levels = {c["name"]: [t["tagFQN"] for t in c["tags"]] for c in table["columns"]}
    assert levels == {c.name: [f"citylake_pii.{c.classification}"] for c in source.columns}
    team = get(server, f"teams/name/{source.owner_department}")
    assert team["teamType"] == "Department"
    assert get(server, "tags/name/citylake_pii.核心")["classification"]["name"] == "citylake_pii"

    # Each cockpit indicator is a glossary term, linked to its ADS table.
    ads = get(server, f"tables/name/{FQN}.ads.ads_trade_daily")
    assert {"tagFQN": "citylake_indicators.ads_trade_daily", "source": "Glossary"}.items() <= {
        **next(t for t in ads["tags"] if t["source"] == "Glossary")
    }.items()
    term = get(server, "glossaryTerms/name/citylake_indicators.ads_trade_daily")
    assert term["displayName"] == "每日交易指标"

    # Column lineage on every hop: ODS -> DWD from the rules, DWD -> DWS -> ADS from SQLMesh.
    dwd = edges_into(server, f"{FQN}.dwd.dwd_pay_transaction")
    ods = f"{FQN}.ods.ods_pay_transactions"
    assert dwd["ods_pay_transactions"][f"{FQN}.dwd.dwd_pay_transaction.amount_fen"] == [
        f"{ods}.amount_fen"
    ]
    assert "dwd_merchant" in dwd  # a table edge from the contract's upstream
    dws = edges_into(server, f"{FQN}.dws.dws_trade_merchant_daily")
    assert f"{FQN}.dwd.dwd_pay_transaction.gross_fen" in {
        c for froms in dws["dwd_pay_transaction"].values() for c in froms
    }
    ads_edges = edges_into(server, f"{FQN}.ads.ads_trade_daily")
    assert ads_edges["dws_trade_merchant_daily"][f"{FQN}.ads.ads_trade_daily.net_fen"] == [
        f"{FQN}.dws.dws_trade_merchant_daily.net_fen"
    ]

    # A contract change re-syncs as a new version of that table only; the rest is unchanged.
    contracts_dir = tmp_path / "warehouse_layers"
    shutil.copytree(settings.contracts_dir, contracts_dir)
    yaml = contracts_dir / "dwd" / "dwd_pay_transaction.yaml"
    text = yaml.read_text(encoding="utf-8")
    reworded = text.replace("{zh: 交易流水号,", "{zh: 交易流水号(支付系统唯一),", 1)
    assert reworded != text
    yaml.write_text(reworded, encoding="utf-8")
    again = sync(settings.model_copy(update={"contracts_dir": contracts_dir}))
    assert server.store.violations == []
    assert again["tables"]["dwd_pay_transaction"] == "0.2"
    assert {v for n, v in again["tables"].items() if n != "dwd_pay_transaction"} == {"0.1"}
    versions = get(server, f"tables/{table['id']}/versions")["versions"]
    assert len(versions) == 2 and "支付系统唯一" in versions[0]
    assert not any(method not in ("GET", "PUT") for method, _ in server.store.calls)


def test_contract_server_refuses_what_breaks_the_spec(server: ContractServer) -> None:
    """The check can fail: bodies against the published schemas are refused and recorded."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    put = lambda path, body: httpx.put(f"{server.url}/v1/{path}", json=body, headers=headers)  # noqa: E731
    assert put("services/databaseServices", {"name": "s", "serviceType": "Trino"}).is_success
    assert put("databases", {"name": "d", "service": "s"}).is_success
    assert put("databaseSchemas", {"name": "ods", "database": "s.d"}).is_success
    column = {"name": "a", "dataType": "STRING"}
    table = {"name": "t", "databaseSchema": "s.d.ods", "columns": [column]}
    assert put("tables", table).is_success
    assert (
        put("tables", {**table, "columns": [{**column, "dataType": "TEXTISH"}]}).status_code == 400
    )
    assert put("tables", {**table, "retention": "P1D"}).status_code == 400  # no such field
    assert put("tables", {**table, "columns": None}).status_code == 400  # columns required
    unknown_tag = {"tagFQN": "citylake_pii.secret", "source": "Classification"}
    unknown_tag |= {"labelType": "Automated", "state": "Confirmed"}
    assert put("tables", {**table, "tags": [unknown_tag]}).status_code == 404
    edge = {"fromEntity": {"id": get(server, "tables/name/s.d.ods.t")["id"], "type": "table"}}
    edge["toEntity"] = edge["fromEntity"]
    columns = [{"fromColumns": ["s.d.ods.t.a"], "toColumn": "s.d.ods.t.nope"}]
    body = {"edge": {**edge, "lineageDetails": {"columnsLineage": columns}}}
    assert put("lineage", body).status_code == 400
    assert len(server.store.violations) == 5
    assert httpx.get(f"{server.url}/v1/system/version").status_code == 401  # no token


def test_content_links_dwd_columns_to_their_ods_source() -> None:
    contracts = load_contracts(PROJECT_ROOT / "warehouse_layers")
    hops = {(h["from"], h["to"]): h["columns"] for h in lineage(contracts, {})}
    pairs = {p["to"]: p["from"] for p in hops[("ods_pay_transactions", "dwd_pay_transaction")]}
    assert pairs["amount_fen"] == ["amount_fen"] and pairs["_source_line"] == ["_source_line"]
    for table in contracts.values():
        for upstream in table.upstream:  # every contract hop is a lineage edge
            assert (upstream, table.name) in hops


def test_every_cockpit_indicator_is_an_ads_table() -> None:
    spec = PROJECT_ROOT.parent / "shared" / "specs" / "cockpit-indicators.md"
    if not spec.exists():
        pytest.skip("the shared specs are not beside this checkout")
    listed = set(re.findall(r"^\| `(ads_[a-z_]+)` \|", spec.read_text(), re.MULTILINE))
    contracts = load_contracts(PROJECT_ROOT / "warehouse_layers")
    assert listed == {n for n, t in contracts.items() if t.layer == "ads"}


def test_sync_needs_a_token_and_the_catalog_environment(tmp_path) -> None:
    with pytest.raises(CatalogSyncError, match="CITYLAKE_CATALOG__TOKEN"):
        sync(Settings(catalog={"token": None}), content={})
    with pytest.raises(CatalogSyncError, match="make setup"):
        sync(Settings(catalog={"venv": tmp_path, "token": "x"}), content={})

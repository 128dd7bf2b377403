"""Publish the catalog's content to OpenMetadata through its Python client.

Runs in ``.venv-catalog`` (openmetadata-ingestion's pins collide with the main environment's),
started by ``citylake catalog sync``, which computes the content (``catalog/content.py``:
contracts, lineage from the contracts and SQLMesh, indicators) and sends it on standard input
as ``{"target": {url, token, service, database}, "content": {...}}``. A JSON summary
goes to standard output.

What it creates or updates (every call is a PUT, so a re-sync is idempotent and a changed
contract makes the server keep a new version of the table):

- classifications ``citylake_layer``, ``citylake_domain`` and ``citylake_pii`` (一般/敏感/核心);
- one Team (type Department) per owner department;
- the glossary ``citylake_indicators``, one term per cockpit indicator;
- database service → database → one schema per layer → every table, with its zh description,
  columns (PII tag each), primary key, owner team, layer/domain tags and, for an ADS table,
  its indicator term;
- lineage: one edge per hop ODS → DWD → DWS → ADS with its column pairs.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from metadata.generated.schema.api.classification.createClassification import (
    CreateClassificationRequest,
)
from metadata.generated.schema.api.classification.createTag import CreateTagRequest
from metadata.generated.schema.api.data.createDatabase import CreateDatabaseRequest
from metadata.generated.schema.api.data.createDatabaseSchema import CreateDatabaseSchemaRequest
from metadata.generated.schema.api.data.createGlossary import CreateGlossaryRequest
from metadata.generated.schema.api.data.createGlossaryTerm import CreateGlossaryTermRequest
from metadata.generated.schema.api.data.createTable import CreateTableRequest
from metadata.generated.schema.api.lineage.addLineage import AddLineageRequest
from metadata.generated.schema.api.services.createDatabaseService import (
    CreateDatabaseServiceRequest,
)
from metadata.generated.schema.api.teams.createTeam import CreateTeamRequest
from metadata.generated.schema.entity.data.table import (
    Column,
    ColumnName,
    Constraint,
    ConstraintType,
    DataType,
    Table,
    TableConstraint,
)
from metadata.generated.schema.entity.services.connections.metadata.openMetadataConnection import (
    AuthProvider,
    OpenMetadataConnection,
)
from metadata.generated.schema.entity.services.databaseService import DatabaseServiceType
from metadata.generated.schema.entity.teams.team import TeamType
from metadata.generated.schema.security.client.openMetadataJWTClientConfig import (
    OpenMetadataJWTClientConfig,
)
from metadata.generated.schema.type.entityLineage import (
    ColumnLineage,
    EntitiesEdge,
    LineageDetails,
    Source,
)
from metadata.generated.schema.type.entityReference import EntityReference
from metadata.generated.schema.type.entityReferenceList import EntityReferenceList
from metadata.generated.schema.type.tagLabel import LabelType, State, TagLabel, TagSource
from metadata.ingestion.ometa.ometa_api import OpenMetadata

LAYER = "citylake_layer"
DOMAIN = "citylake_domain"
PII = "citylake_pii"
GLOSSARY = "citylake_indicators"

LAYER_TAGS = {
    "ods": "ODS 贴源层: 按数据接口原样入湖",
    "dwd": "DWD 明细层: 清洗、标准化的明细与维度",
    "dws": "DWS 汇总层: 主题汇总",
    "ads": "ADS 应用层: 驾驶舱指标与数据产品",
}
PII_TAGS = {
    "一般": "一般数据: 可在部门间共享",
    "敏感": "敏感数据: 按授权使用",
    "核心": "核心数据: 身份证号等, 离开 ODS 时只保留哈希或掩码",
}

# Spark types of the contracts (warehouse_layers/contract.py) in OpenMetadata's words.
SIMPLE_TYPES = {
    "string": DataType.STRING,
    "boolean": DataType.BOOLEAN,
    "int": DataType.INT,
    "bigint": DataType.BIGINT,
    "smallint": DataType.SMALLINT,
    "double": DataType.DOUBLE,
    "float": DataType.FLOAT,
    "date": DataType.DATE,
    "timestamp": DataType.TIMESTAMP,
}
_DECIMAL = re.compile(r"^decimal\((\d+),(\d+)\)$")


def tag(fqn: str, source: TagSource = TagSource.Classification) -> TagLabel:
    return TagLabel(tagFQN=fqn, source=source, labelType=LabelType.Automated, state=State.Confirmed)


def column(spec: dict[str, Any], primary_key: list[str]) -> Column:
    kind = spec["type"]
    fields: dict[str, Any] = {}
    if kind in SIMPLE_TYPES:
        fields["dataType"] = SIMPLE_TYPES[kind]
    elif match := _DECIMAL.match(kind):
        fields |= {
            "dataType": DataType.DECIMAL,
            "precision": int(match[1]),
            "scale": int(match[2]),
        }
    elif kind == "array<string>":
        fields |= {"dataType": DataType.ARRAY, "arrayDataType": DataType.STRING}
    elif kind.startswith("map<"):
        fields["dataType"] = DataType.MAP
    else:  # the contract loader admits no other type
        raise ValueError(f"column {spec['name']}: no OpenMetadata type for {kind}")
    constraint = None
    if len(primary_key) == 1 and primary_key[0] == spec["name"]:
        constraint = Constraint.PRIMARY_KEY
    elif not spec["nullable"]:
        constraint = Constraint.NOT_NULL
    return Column(
        name=ColumnName(spec["name"]),
        dataTypeDisplay=kind,
        description=f"{spec['description']['zh']}\n\n{spec['description']['en']}",
        tags=[tag(f"{PII}.{spec['classification']}")],
        constraint=constraint,
        **fields,
    )


def client(target: dict[str, Any]) -> OpenMetadata:
    config = OpenMetadataConnection(
        hostPort=target["url"],
        authProvider=AuthProvider.openmetadata,
        securityConfig=OpenMetadataJWTClientConfig(jwtToken=target["token"]),
    )
    # The client checks the server's version (/system/version) against its own on start.
    return OpenMetadata(config)


def publish(metadata: OpenMetadata, content: dict[str, Any], target: dict[str, Any]) -> dict:
    tables = content["tables"]
    contracts = {t["name"]: t for t in tables}

    # Tags first: tables and columns refer to them by FQN.
    classifications = {
        LAYER: ("数仓分层 warehouse layer", LAYER_TAGS),
        DOMAIN: (
            "数据域 data domain",
            {d: f"数据域 {d}" for d in sorted({t["domain"] for t in tables})},
        ),
        PII: ("数据分级 (一般/敏感/核心) classification level of a column", PII_TAGS),
    }
    for name, (description, tags) in classifications.items():
        metadata.create_or_update(
            CreateClassificationRequest(name=name, description=description, mutuallyExclusive=True)
        )
        for tag_name, tag_description in tags.items():
            metadata.create_or_update(
                CreateTagRequest(classification=name, name=tag_name, description=tag_description)
            )

    teams = {}
    for department in sorted({t["owner_department"] for t in tables}):
        team = metadata.create_or_update(
            CreateTeamRequest(
                name=department,
                displayName=department,
                teamType=TeamType.Department,
                description=f"{department}: 数据责任部门 (owner department of citylake tables)",
            )
        )
        teams[department] = EntityReference(id=team.id, type="team")

    metadata.create_or_update(
        CreateGlossaryRequest(
            name=GLOSSARY,
            displayName="驾驶舱指标",
            description="数字经济驾驶舱指标 (cockpit indicators), one term per ADS table.",
        )
    )
    for name in content["indicators"]:
        table = contracts[name]
        metadata.create_or_update(
            CreateGlossaryTermRequest(
                glossary=GLOSSARY,
                name=name,
                displayName=table["description"]["zh"].split("(")[0],
                description=(
                    f"{table['description']['zh']}\n\n{table['description']['en']}\n\n"
                    f"粒度 grain: {', '.join(table['primary_key'])}. "
                    f"ADS table `{name}`, owner {table['owner_department']}."
                ),
            )
        )

    service = metadata.create_or_update(
        CreateDatabaseServiceRequest(
            name=target["service"],
            serviceType=DatabaseServiceType.Trino,
            description="citylake lakehouse: Delta tables, queried through Trino",
        )
    )
    database = metadata.create_or_update(
        CreateDatabaseRequest(
            name=target["database"],
            service=service.fullyQualifiedName,
            description="citylake 数据湖 (Trino catalog)",
        )
    )
    schemas = {}
    for layer in sorted({t["layer"] for t in tables}):
        schema = metadata.create_or_update(
            CreateDatabaseSchemaRequest(
                name=layer,
                database=database.fullyQualifiedName,
                description=LAYER_TAGS[layer],
                tags=[tag(f"{LAYER}.{layer}")],
            )
        )
        schemas[layer] = schema.fullyQualifiedName.root

    published: dict[str, Table] = {}
    for table in tables:
        labels = [tag(f"{LAYER}.{table['layer']}"), tag(f"{DOMAIN}.{table['domain']}")]
        if table["name"] in content["indicators"]:
            labels.append(tag(f"{GLOSSARY}.{table['name']}", TagSource.Glossary))
        constraints = None
        if len(table["primary_key"]) > 1:
            constraints = [
                TableConstraint(
                    constraintType=ConstraintType.PRIMARY_KEY, columns=table["primary_key"]
                )
            ]
        published[table["name"]] = metadata.create_or_update(
            CreateTableRequest(
                name=table["name"],
                displayName=table["description"]["zh"],
                description=f"{table['description']['zh']}\n\n{table['description']['en']}",
                databaseSchema=schemas[table["layer"]],
                columns=[column(c, table["primary_key"]) for c in table["columns"]],
                tableConstraints=constraints,
                owners=EntityReferenceList([teams[table["owner_department"]]]),
                tags=labels,
            )
        )

    edges = 0
    for hop in content["lineage"]:
        source, target_table = published[hop["from"]], published[hop["to"]]
        source_fqn = source.fullyQualifiedName.root
        target_fqn = target_table.fullyQualifiedName.root
        columns = [
            ColumnLineage(
                fromColumns=[f"{source_fqn}.{c}" for c in pair["from"]],
                toColumn=f"{target_fqn}.{pair['to']}",
            )
            for pair in hop["columns"]
        ]
        answer = metadata.add_lineage(
            AddLineageRequest(
                edge=EntitiesEdge(
                    fromEntity=EntityReference(id=source.id, type="table"),
                    toEntity=EntityReference(id=target_table.id, type="table"),
                    lineageDetails=LineageDetails(
                        columnsLineage=columns or None,
                        source=Source.Manual,
                        description="citylake contracts and SQLMesh column lineage",
                    ),
                )
            ),
            return_lineage=False,
        )
        if "error" in answer:  # the client logs a refused edge and goes on: we stop
            raise RuntimeError(answer["error"])
        edges += 1

    return {
        "tables": {name: str(t.version.root) for name, t in sorted(published.items())},
        "teams": sorted(teams),
        "terms": len(content["indicators"]),
        "lineage_edges": edges,
        "column_edges": sum(len(hop["columns"]) for hop in content["lineage"]),
    }


def main() -> None:
    request = json.load(sys.stdin)
    target = request["target"]
    if not target.get("token"):
        sys.exit("catalog sync: no token (set CITYLAKE_CATALOG__TOKEN to a bot's JWT)")
    summary = publish(client(target), request["content"], target)
    json.dump(summary, sys.stdout, ensure_ascii=False)
    print()


if __name__ == "__main__":
    main()

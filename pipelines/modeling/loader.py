"""The SQLMesh loader of citylake: a model is its contract's header plus its SELECT.

- ``models/<layer>/<table>.sql`` (layer dws or ads) is a plain query; the header comes from
  ``warehouse_layers/<layer>/<table>.yaml`` (``headers.header``). A file that starts with its
  own ``MODEL (...)`` is taken as it is: the escape hatch for what a contract cannot say.
- Every contract table a model reads that is not itself a model (DWD, ODS) is an external
  model with the contract's columns, so lineage and unit tests know its schema.
- YAML unit tests live beside their model: ``models/<layer>/test_<table>.yaml``.

Models load in this process, not in SQLMesh's fork pool: the parent holds a live JVM.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

from sqlglot import exp
from sqlmesh.core import dialect as d
from sqlmesh.core.dialect import parse
from sqlmesh.core.loader import SqlMeshLoader, get_variables
from sqlmesh.core.model import Model, create_external_model, load_sql_based_models
from sqlmesh.core.test import ModelTestMetadata
from sqlmesh.utils import UniqueKeyDict

from pipelines.modeling.headers import MODEL_LAYERS, external_columns, header, model_name
from warehouse_layers.contract import TableContract, load_contracts

CONTRACTS_DIR_KEY = "contracts_dir"  # loader_kwargs key: where the contracts are


class CitylakeLoader(SqlMeshLoader):
    def __init__(self, context: t.Any, path: Path, contracts_dir: str | None = None) -> None:
        super().__init__(context, path)
        if contracts_dir is None:
            raise ValueError("CitylakeLoader needs loader_kwargs={'contracts_dir': ...}")
        self._contracts = load_contracts(Path(contracts_dir))

    def _model_files(self) -> dict[str, Path]:
        files = {}
        for layer in MODEL_LAYERS:
            for path in sorted((self.config_path / layer).glob("*.sql")):
                if path.stem not in self._contracts:
                    raise ValueError(f"{path}: no contract {path.stem} in warehouse_layers/")
                files[path.stem] = path
        return files

    def _load_sql_models(
        self, macros, jinja_macros, audits, signals, cache, gateway, selected_paths=None
    ):  # type: ignore[no-untyped-def]
        models: UniqueKeyDict[str, Model] = UniqueKeyDict("models")
        defaults = dict(
            get_variables=get_variables,
            defaults=self.config.model_defaults.dict(),
            macros=macros,
            jinja_macros=jinja_macros,
            audit_definitions=audits,
            module_path=self.config_path,
            dialect=self.config.model_defaults.dialect,
            time_column_format=self.config.time_column_format,
            physical_schema_mapping=self.config.physical_schema_mapping,
            project=self.config.project,
            default_catalog=self.context.default_catalog,
            infer_names=False,
            signal_definitions=signals,
            default_catalog_per_gateway=self.context.default_catalog_per_gateway,
            virtual_environment_mode=self.config.virtual_environment_mode,
        )
        for name, path in self._model_files().items():
            self._track_file(path)
            query = path.read_text(encoding="utf-8")
            expressions = parse(query, default_dialect=defaults["dialect"])
            if not expressions or not isinstance(expressions[0], d.Model):
                text = header(self._contracts[name]) + query
                expressions = parse(text, default_dialect=defaults["dialect"])
            for model in load_sql_based_models(expressions, path=path.absolute(), **defaults):
                if model.name != model_name(self._contracts[name]):
                    raise ValueError(f"{path}: the model is {model.name}, its file says {name}")
                model._path = path
                models[model.fqn] = model
        return models

    def _load_external_models(self, audits, cache, gateway=None):  # type: ignore[no-untyped-def]
        models: UniqueKeyDict[str, Model] = UniqueKeyDict("models")
        for table in self._read_tables():
            model = create_external_model(
                model_name(table),
                dialect=self.config.model_defaults.dialect,
                path=self.config_path,
                defaults=self.config.model_defaults.dict(),
                project=self.config.project,
                audit_definitions=audits,
                default_catalog=self.context.default_catalog,
                columns=external_columns(table),
                description=f"{table.description.zh} / {table.description.en}",
                owner=table.owner_department,
            )
            models[model.fqn] = model
        return models

    def _read_tables(self) -> list[TableContract]:
        """The non-model contract tables that some model's query names (layer.table)."""
        files = self._model_files()
        read: set[str] = set()
        for path in files.values():
            for table in parse(path.read_text(encoding="utf-8"), default_dialect="spark"):
                for ref in table.find_all(exp.Table) if table else ():
                    if ref.db and ref.name in self._contracts and ref.name not in files:
                        read.add(ref.name)
        return [self._contracts[name] for name in sorted(read)]

    def load_model_tests(self) -> list[ModelTestMetadata]:
        found: list[ModelTestMetadata] = []
        for layer in MODEL_LAYERS:
            for path in sorted((self.config_path / layer).glob("test_*.yaml")):
                found.extend(self._load_model_test_file(path).values())
        return found

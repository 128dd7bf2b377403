"""Table contracts: one YAML file per table, the single source of DDL, checks and catalog text."""

from warehouse_layers.contract import (
    Column,
    ContractError,
    Feed,
    TableContract,
    load_contract,
    load_contracts,
)

__all__ = [
    "Column",
    "ContractError",
    "Feed",
    "TableContract",
    "load_contract",
    "load_contracts",
]

"""The committed data dictionary is the one the contracts generate (it never drifts)."""

from pathlib import Path

from catalog.dictionary import render
from warehouse_layers import load_contracts

ROOT = Path(__file__).resolve().parent.parent


def test_data_dictionary_is_current() -> None:
    expected = render(load_contracts(ROOT / "warehouse_layers"))
    committed = (ROOT / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    assert committed == expected, "run `citylake contracts docs` and commit docs/data-dictionary.md"


def test_every_table_and_column_appears_in_chinese() -> None:
    text = render(load_contracts(ROOT / "warehouse_layers"))
    for table in load_contracts(ROOT / "warehouse_layers").values():
        assert f"`{table.name}` — {table.description.zh}" in text
        for column in table.columns:
            assert f"| `{column.name}` |" in text

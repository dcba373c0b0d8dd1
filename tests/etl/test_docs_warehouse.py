"""docs/warehouse.md documents every published model and every column."""

from pathlib import Path

import duckdb
import pytest

from olist_bi.etl.transform import models

DOC = (Path(__file__).resolve().parents[2] / "docs" / "warehouse.md").read_text()


@pytest.mark.parametrize("model", [m for m in models() if m.layer != "staging"], ids=lambda m: m.name)
def test_every_model_and_column_is_documented(warehouse, model):
    settings, _ = warehouse
    assert f"### {model.name}\n" in DOC
    section = DOC.split(f"### {model.name}\n", 1)[1].split("\n### ", 1)[0]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        columns = [r[0] for r in con.execute(f"describe {model.name}").fetchall()]
    for column in columns:
        assert f"| {column} |" in section, f"{model.name}.{column} is not in docs/warehouse.md"
    assert f"Grain: `({', '.join(model.grain)})`" in section

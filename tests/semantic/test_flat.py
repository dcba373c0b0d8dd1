"""The flat relations the BI tools read (`semantic.<view>`, Superset's datasets and the body
of Metabase's questions): published with the warehouse, one row per row of their model, and
every metric's expression over them gives the raw files' total; on DuckDB and on ClickHouse."""

import pytest

from olist_bi.semantic.catalog import load
from olist_bi.semantic.flat import SCHEMA, flat_model
from tests.reference import answer

METRICS = [(m.model, m.name) for m in load().metrics.values()]


@pytest.fixture(scope="module")
def wh(engine_warehouse):
    """The warehouse on each engine (on ClickHouse the views are in <database>_semantic)."""
    _, _, reader = engine_warehouse
    return reader


def test_every_model_has_its_view_with_its_rows(wh):
    for name in load().models:
        flat = flat_model(name)
        assert wh.execute(f"select count(*) from {SCHEMA}.{flat.view}").fetchone() == wh.execute(f"select count(*) from {name}").fetchone()


@pytest.mark.parametrize("model, metric", METRICS, ids=[m for _, m in METRICS])
def test_every_metric_over_its_view_gives_the_raw_files_total(wh, reference, model, metric):
    flat = flat_model(model)
    [(got,)] = wh.execute(f"select {flat.metrics[metric]} from {SCHEMA}.{flat.view}").fetchall()
    [(want,)] = answer(reference, [metric]).values()
    assert got == pytest.approx(want, rel=1e-9) if isinstance(want, float) else got == want

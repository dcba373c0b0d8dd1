"""A query that resolved a generation a publish then removed (a reader copy keeps no earlier
one) opens the new generation instead of failing (engines/duckdb/warehouse.py: Provider.lease)."""

import os

import duckdb
import pytest

from olist_bi.engines.duckdb import publish, warehouse


def generation(served, marker):
    built = publish.building_path(served, marker)
    with duckdb.connect(str(built)) as con:
        con.execute("create table marker as select ? as n", [marker])
    return publish.publish(built, served, keep=0)


@pytest.fixture
def provider():
    p = warehouse.Provider()
    yield p
    p.close_all()


def test_a_generation_removed_between_resolving_and_opening_it_is_passed_over(tmp_path, provider, monkeypatch):
    served = tmp_path / "w.duckdb"
    old = generation(served, 1).resolve()
    real = warehouse.current
    calls = []

    def resolve_then_publish(path):  # the query resolves the old generation; a publish swaps it out before the open
        found = real(path)
        if not calls:
            generation(served, 2)
            assert not old.exists()
        calls.append(found)
        return found

    monkeypatch.setattr(warehouse, "current", resolve_then_publish)
    lease = provider.lease(served)
    assert lease.connection.execute("select n from marker").fetchone() == (2,)
    assert calls[0] == old and calls[1] == real(served)
    lease.release()


def test_a_damaged_current_generation_is_still_an_error(tmp_path, provider):
    served = tmp_path / "w.duckdb"
    current = generation(served, 1).resolve()
    current.write_bytes(b"not a duckdb file" * 100)
    with pytest.raises(warehouse.WarehouseDamaged, match="cannot be read"):
        provider.lease(served)
    assert os.path.realpath(served) == str(current)

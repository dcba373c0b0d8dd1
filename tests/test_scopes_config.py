"""A second regional role by configuration alone: one more role with a scope in access.yaml
(RJ beside the demo's SP) gets its copy of the warehouse, its Superset grants, dashboards and
row-level security rules, and its connections sent to its own copy, with no code changed.
(The ETL's side runs for real in tests/etl/test_readers.py; here, what provisioning sends.)"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from olist_bi.access import spec as access
from olist_bi.engines.duckdb import warehouse
from olist_bi.dashboards import dashboards
from olist_bi.etl import readers
from olist_bi.bi.superset import provision


@pytest.fixture
def with_rj(monkeypatch):
    base = access.model()
    model = {
        **base,
        "roles": {**base["roles"], "olist_regional_rj": "A regional manager; customers in RJ only."},
        "scopes": {**base["scopes"], "olist_regional_rj": {"customer_state": "RJ"}},
        "demo_users": {**base["demo_users"], "regional_rj": ["olist_regional_rj"]},
    }
    monkeypatch.setattr(access, "model", lambda: model)


class Recorder:
    """What provisioning asks of Superset's row-level security API."""

    def __init__(self):
        self.filters: dict[str, dict] = {}

    def named(self, path, name):
        return []

    def post(self, path, payload):
        self.filters[payload["name"]] = payload


def test_a_role_added_to_access_yaml_gets_the_regional_managers_whole_setup(with_rj, tmp_path):
    assert [r.name for r in readers.readers()] == ["reader", "olist_regional_rj", "olist_regional_sp"]
    assert provision.readable_datasets("olist_regional_rj") == provision.readable_datasets("olist_regional_sp")
    for dashboard in dashboards():
        opened = provision.dashboard_roles(dashboard)
        assert ("olist_regional_rj" in opened) == ("olist_regional_sp" in opened), dashboard.title

    names = provision.REGIONAL["datasets"] + provision.REGIONAL["scoped"]
    built = SimpleNamespace(datasets={name: SimpleNamespace(uuid=f"uuid-{name}") for name in names})
    ids = {f"uuid-{name}": n for n, name in enumerate(names, start=1)}
    roles = {"olist_regional_sp": 10, "olist_regional_rj": 11}
    client = Recorder()
    provision._row_level_security(client, built, ids, roles)
    rj = client.filters["olist_regional_rj: customer_state = RJ"]
    assert rj["clause"] == "customer_state = 'RJ'" and rj["roles"] == [11] and rj["filter_type"] == "Regular"
    assert client.filters["olist_regional_rj: forecast_band series = RJ"]["clause"] == "series = 'RJ'"
    base = client.filters["forecast_band: series = All states"]
    assert base["filter_type"] == "Base" and sorted(base["roles"]) == [10, 11]  # Brazil for everyone but both regional roles
    # Its Superset connections open its own copy, beside the reader copy.
    reader = tmp_path / "warehouse.reader.duckdb"
    assert warehouse.sibling_copy(reader, "olist_regional_rj") == tmp_path / "warehouse.olist_regional_rj.duckdb"
    assert warehouse.sibling_copy(tmp_path / "warehouse.duckdb", "olist_regional_rj") == tmp_path / "warehouse.olist_regional_rj.duckdb"

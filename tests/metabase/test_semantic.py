"""The semantic layer in Metabase's query builder: every metric's MBQL, compiled the way
Metabase's query processor compiles it (tests/metabase/mbql.py) and run on the test warehouse,
gives the semantic layer's answer; provisioned models carry the layer's names, descriptions and
semantic types; a business user answers "revenue by state last quarter" from them."""

from __future__ import annotations

import datetime as dt

import pytest
import requests

from olist_bi.bi.metabase import semantic as metabase_semantic
from olist_bi.bi.metabase.provision import admin_password, provision
from olist_bi.engines.duckdb import warehouse as provider
from olist_bi.semantic import query as semantic_query
from olist_bi.semantic.catalog import load
from olist_bi.semantic.compiler import GroupBy, Query, compile_query
from olist_bi.semantic.flat import flat_model
from tests.metabase import driver, mbql
from tests.metabase.standin import NO_PERMISSION
from tests.metabase.test_provision import ASSETS, SP, _session

CATALOG = load()


def _types(con, view: str) -> dict[str, str]:
    described = con.execute(f"select * from semantic.{view} limit 0").description
    return {name: driver.base_type(str(kind)) for name, kind, *_ in described}


def _group(name: str) -> str:
    """The dimension a metric is grouped by here: what it requires, else the customer's state,
    else its model's first dimension."""
    metric = CATALOG.metrics[name]
    flat = flat_model(metric.model, CATALOG)
    if metric.requires:
        return metric.requires[0]
    return "customer_state" if "customer_state" in flat.dimensions else flat.dimensions[0]


def _close(left: list[tuple], right: list[tuple]) -> bool:
    if len(left) != len(right):
        return False
    for a, b in zip(left, right):
        for x, y in zip(a, b):
            if isinstance(x, (int, float)) or hasattr(x, "as_tuple"):
                x, y = float(x or 0), float(y or 0)  # MBQL's sums of CASE ... ELSE 0.0 are 0 where SQL's filtered ones are null
                if abs(x - y) > 1e-9 * max(1.0, abs(x), abs(y)):
                    return False
            elif x != y:
                return False
    return True


@pytest.mark.parametrize("name", sorted(CATALOG.metrics))
def test_every_metric_in_the_query_builder_gives_the_semantic_layer_s_answer(warehouse, name):
    settings, _ = warehouse
    metric = CATALOG.metrics[name]
    flat = flat_model(metric.model, CATALOG)
    dimension = _group(name)
    with provider.connect(settings.warehouse_path) as con:  # the served warehouse holds the same semantic views
        types = _types(con, flat.view)
        cards = {
            1: {
                "type": "model",
                "database_id": 7,
                "dataset_query": {"type": "native", "native": {"query": f"select * from semantic.{flat.view}"}},
            },
            2: {
                "type": "metric",
                "database_id": 7,
                "dataset_query": {
                    "type": "query",
                    "query": {
                        "source-table": "card__1",
                        "aggregation": [metabase_semantic.typed(metabase_semantic.aggregation(flat.metrics[name]), types)],
                    },
                },
            },
        }
        question = {
            "type": "query",
            "database": 7,
            "query": {
                "source-table": "card__1",
                "aggregation": [["metric", 2]],
                "breakout": [["field", dimension, {"base-type": types[dimension]}]],
            },
        }
        _, sql, _ = mbql.compile_query(question, cards)
        builder = [tuple(r) for r in con.execute(sql).fetchall()]
    compiled = compile_query(Query(metrics=[name], by=[GroupBy(dimension)]), CATALOG)
    layer = sorted((tuple(r) for r in semantic_query.run(compiled, settings.warehouse_path)), key=lambda r: (r[0] is None, r[0]))
    assert len(builder) > 1
    assert _close(builder, layer), (sql, builder[:5], layer[:5])


def test_the_translation_refuses_what_it_cannot_write_in_mbql():
    with pytest.raises(metabase_semantic.Untranslatable, match="the aggregate"):
        metabase_semantic.aggregation("median(m__price)")
    with pytest.raises(metabase_semantic.Untranslatable, match="safe division"):
        metabase_semantic.aggregation("sum(m__price) / count(*)")
    with pytest.raises(metabase_semantic.Untranslatable, match="the condition"):
        metabase_semantic.aggregation("count(*) filter (where m__a = m__b)")
    assert metabase_semantic.aggregation("avg(m__x) filter (where m__ok)") == [
        "/",
        ["sum-where", ["field", "m__x", {}], ["and", ["=", ["field", "m__ok", {}], True], ["not-null", ["field", "m__x", {}]]]],
        ["count-where", ["and", ["=", ["field", "m__ok", {}], True], ["not-null", ["field", "m__x", {}]]]],
    ]


def _last_quarter(settings) -> tuple[dt.date, dt.date]:
    """The latest whole quarter of the test warehouse's orders."""
    with provider.connect(settings.warehouse_path) as con:
        last = con.execute("select max(purchase_date) from semantic.olist_payments").fetchone()[0]
    start = dt.date(last.year, 3 * ((last.month - 1) // 3) + 1, 1)  # the quarter of the last order, likely partial
    end = start - dt.timedelta(days=1)
    return dt.date(end.year, 3 * ((end.month - 1) // 3) + 1, 1), end


def test_a_business_user_answers_revenue_by_state_last_quarter_from_the_provisioned_models(standin, settings):
    report = provision(settings, standin.url, ASSETS)
    assert standin.violations == []
    s = standin.state
    payments = s.cards[report.ids["card:semantic-layer/model:olist_payments"]]
    revenue = report.ids["card:semantic-layer/metric:revenue"]
    assert payments["type"] == "model" and s.cards[revenue]["type"] == "metric"
    columns = {c["name"]: c for c in payments["result_metadata"]}
    assert columns["customer_state"]["display_name"] == "Customer state" and columns["customer_state"]["semantic_type"] == "type/State"
    assert columns["m__payment_value"]["semantic_type"] == "type/Currency" and columns["m__payment_value"]["base_type"] == "type/Decimal"
    assert columns["purchase_date"]["base_type"] == "type/Date"
    assert "Money customers paid" in s.cards[revenue]["description"]

    start, end = _last_quarter(settings)
    standin.now = dt.datetime.combine(end + dt.timedelta(days=20), dt.time(9, 30))  # "now" is in the next quarter
    viewer = _session(standin, "viewer@olist-bi.local", report.users["viewer@olist-bi.local"])
    state = ["field", "customer_state", {"base-type": "type/Text"}]
    purchase = ["field", "purchase_date", {"base-type": "type/Date"}]
    asked = {
        "type": "query",
        "database": report.ids["database:warehouse"],
        "query": {"source-table": f"card__{payments['id']}", "aggregation": [["metric", revenue]], "breakout": [state]},
    }
    layer = semantic_query.run(
        compile_query(Query(metrics=["revenue"], by=[GroupBy("customer_state")], start=start, end=end), load()), settings.warehouse_path
    )
    for condition in (["time-interval", purchase, -1, "quarter"], ["between", purchase, start.isoformat(), end.isoformat()]):
        answer = requests.post(
            f"{standin.url}/api/dataset/", json={**asked, "query": {**asked["query"], "filter": condition}}, headers=viewer, timeout=30
        )
        assert answer.status_code == 202 and answer.json()["status"] == "completed", answer.text
        rows = [tuple(r) for r in answer.json()["data"]["rows"]]
        assert len(rows) > 5 and _close(rows, sorted(tuple(r) for r in layer)), condition
    # the viewer may not write SQL, and a metric read from another model is Metabase's "Incompatible metric"
    items = report.ids["card:semantic-layer/model:olist_order_items"]
    wrong = {**asked, "query": {**asked["query"], "source-table": f"card__{items}"}}
    assert "Incompatible metric" in requests.post(f"{standin.url}/api/dataset/", json=wrong, headers=viewer, timeout=30).json()["error"]


def test_the_regional_manager_s_models_read_sp_only(standin, settings):
    report = provision(settings, standin.url, ASSETS)
    regional = _session(standin, "regional_sp@olist-bi.local", report.users["regional_sp@olist-bi.local"])
    payments = report.ids[f"card:semantic-layer--{SP}/model:olist_payments"]
    revenue = report.ids[f"card:semantic-layer--{SP}/metric:revenue"]
    asked = {
        "type": "query",
        "database": report.ids[f"database:{SP}"],
        "query": {
            "source-table": f"card__{payments}",
            "aggregation": [["metric", revenue]],
            "breakout": [["field", "customer_state", {"base-type": "type/Text"}]],
        },
    }
    answer = requests.post(f"{standin.url}/api/dataset/", json=asked, headers=regional, timeout=30).json()
    assert answer["status"] == "completed" and [r[0] for r in answer["data"]["rows"]] == ["SP"], answer
    business = report.ids["card:semantic-layer/model:olist_payments"]  # the whole warehouse's model: not the regional manager's
    denied = {**asked, "database": report.ids["database:warehouse"], "query": {**asked["query"], "source-table": f"card__{business}"}}
    denied["query"]["aggregation"] = [["count"]]
    assert requests.post(f"{standin.url}/api/dataset/", json=denied, headers=regional, timeout=30).json()["error"] == NO_PERMISSION
    # nor the query builder on a table of the whole warehouse: its group has no queries of its own there
    on_table = {**denied, "query": {"source-table": 1, "aggregation": [["count"]]}}
    assert requests.post(f"{standin.url}/api/dataset/", json=on_table, headers=regional, timeout=30).json()["error"] == NO_PERMISSION


def test_the_stand_in_refuses_a_metric_metabase_would_not_save(standin, settings):
    report = provision(settings, standin.url, ASSETS)
    admin = requests.Session()
    admin.headers.update(_session(standin, settings.metabase_admin_email, admin_password(settings)))
    model = report.ids["card:semantic-layer/model:olist_payments"]
    value = ["field", "m__payment_value", {"base-type": "type/Decimal"}]
    body = {
        "name": "Two aggregations",
        "type": "metric",
        "display": "scalar",
        "visualization_settings": {},
        "dataset_query": {
            "type": "query",
            "database": report.ids["database:warehouse"],
            "query": {"source-table": f"card__{model}", "aggregation": [["sum", value], ["count"]]},
        },
    }
    refused = admin.post(f"{standin.url}/api/card/", json=body, timeout=30)
    assert refused.status_code == 400 and "cannot be saved" in refused.text
    body["dataset_query"]["query"]["aggregation"] = [["sum", value]]
    assert admin.post(f"{standin.url}/api/card/", json=body, timeout=30).status_code == 200

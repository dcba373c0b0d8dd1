"""Every quality rule of platform/etl/rules.yaml catches a row planted for it, and only it.

Driven from rules.yaml: a rule without a case here fails the suite. Each case changes one
record of one file of a clean drop (or appends a duplicate of one), runs the pipeline, and
checks that the planted record is quarantined by that rule and no other (a reject rule), or
counted by that rule and no other warning, and quarantined by none (a warn rule)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psycopg
import pytest
from psycopg.rows import dict_row

from olist_bi.contract import BY_TABLE
from olist_bi.etl import pipeline, quality
from tests.conftest import make_settings

# Each case runs the whole pipeline on its drop; what it checks is the quarantine and the
# quality counts, not the revenue forecast, whose fits are reused by input (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("reuse_forecast_fits")

UNKNOWN = "f" * 32  # an id no file holds
RULES = {r.rule: r for r in quality.rules()}


@dataclass(frozen=True)
class Case:
    table: str
    changes: dict | None = None  # column -> new value ("=column": that column's value); None: append a duplicate
    where: tuple[str, str] | None = None  # (column, value) the planted record must have, else the first record


CASES = {
    "category_translation.name.present": Case("category_translation", {"product_category_name": ""}),
    "category_translation.name.unique": Case("category_translation"),
    "geolocation.zip.format": Case("geolocation", {"geolocation_zip_code_prefix": "12a45"}),
    "geolocation.coordinates.present": Case("geolocation", {"geolocation_lat": ""}),
    "geolocation.coordinates.inside_brazil": Case("geolocation", {"geolocation_lat": "40.0"}),
    "geolocation.state.accepted": Case("geolocation", {"geolocation_state": "XX"}),
    "geolocation.state.accepted/empty": Case("geolocation", {"geolocation_state": ""}),
    "sellers.seller_id.format": Case("sellers", {"seller_id": "not-a-seller"}),
    "sellers.seller_id.unique": Case("sellers"),
    "sellers.state.accepted": Case("sellers", {"seller_state": "XX"}),
    "sellers.state.accepted/empty": Case("sellers", {"seller_state": ""}),
    "sellers.zip.format": Case("sellers", {"seller_zip_code_prefix": "abcde"}),
    "products.product_id.format": Case("products", {"product_id": "not-a-product"}),
    "products.product_id.unique": Case("products"),
    "products.category.present": Case("products", {"product_category_name": ""}),
    "products.category.translated": Case("products", {"product_category_name": "no_such_category"}),
    "products.measures.not_negative": Case("products", {"product_weight_g": "-1"}),
    "customers.customer_id.format": Case("customers", {"customer_unique_id": "not-a-customer"}),
    "customers.customer_id.unique": Case("customers"),
    "customers.state.accepted": Case("customers", {"customer_state": "XX"}),
    "customers.state.accepted/empty": Case("customers", {"customer_state": ""}),
    "customers.zip.format": Case("customers", {"customer_zip_code_prefix": "abcde"}),
    "customers.zip.known": Case("customers", {"customer_zip_code_prefix": "99999"}),
    "orders.order_id.format": Case("orders", {"order_id": "not-an-order"}),
    "orders.order_id.unique": Case("orders"),
    "orders.customer.exists": Case("orders", {"customer_id": UNKNOWN}),
    "orders.status.accepted": Case("orders", {"order_status": "teleported"}),
    "orders.purchase.present": Case("orders", {"order_purchase_timestamp": ""}),
    "orders.purchase.in_range": Case("orders", {"order_purchase_timestamp": "2099-01-01 10:00:00"}),
    "orders.approval.after_purchase": Case("orders", {"order_approved_at": "2016-01-01 00:00:00"}, ("order_status", "delivered")),
    "orders.carrier.after_approval": Case("orders", {"order_delivered_carrier_date": "2016-01-01 00:00:00"}, ("order_status", "delivered")),
    "orders.delivery.after_purchase": Case(
        "orders", {"order_delivered_customer_date": "2016-01-01 00:00:00"}, ("order_status", "delivered")
    ),
    "orders.delivered.has_date": Case("orders", {"order_delivered_customer_date": ""}, ("order_status", "delivered")),
    "order_items.key.unique": Case("order_items"),
    "order_items.order.exists": Case("order_items", {"order_id": UNKNOWN}),
    "order_items.product.exists": Case("order_items", {"product_id": UNKNOWN}),
    "order_items.seller.exists": Case("order_items", {"seller_id": UNKNOWN}),
    "order_items.price.valid": Case("order_items", {"price": "-1.00"}),
    "order_payments.key.unique": Case("order_payments"),
    "order_payments.order.exists": Case("order_payments", {"order_id": UNKNOWN}),
    "order_payments.type.accepted": Case("order_payments", {"payment_type": "bitcoin"}),
    "order_payments.value.not_negative": Case("order_payments", {"payment_value": "-1.00"}),
    "order_payments.installments.positive": Case("order_payments", {"payment_installments": "0"}),
    "order_reviews.key.unique": Case("order_reviews"),
    "order_reviews.order.exists": Case("order_reviews", {"order_id": UNKNOWN}),
    "order_reviews.score.range": Case("order_reviews", {"review_score": "7"}),
}


def rule_of(case_name: str) -> str:
    return case_name.split("/")[0]  # "<rule>/<variant>": a second case for one rule


# Values on the edge of a rule that it must let through (a boundary moved by one fails these).
ACCEPTED = {
    "products.measures.not_negative": Case(
        "products", {"product_weight_g": "0", "product_length_cm": "0", "product_height_cm": "0", "product_width_cm": "0"}
    ),
    "order_payments.value.not_negative": Case("order_payments", {"payment_value": "0.00"}),
    "order_items.price.valid": Case("order_items", {"price": "0.00", "freight_value": "0.00"}),
    "order_reviews.score.range": Case("order_reviews", {"review_score": "5"}),
    "orders.approval.after_purchase": Case("orders", {"order_approved_at": "=order_purchase_timestamp"}, ("order_status", "delivered")),
    "orders.carrier.after_approval": Case("orders", {"order_delivered_carrier_date": "=order_approved_at"}, ("order_status", "delivered")),
    "orders.delivery.after_purchase": Case(
        "orders", {"order_delivered_customer_date": "=order_purchase_timestamp"}, ("order_status", "delivered")
    ),
    "order_payments.installments.positive": Case("order_payments", {"payment_installments": "1"}, ("payment_installments", "3")),
}


@pytest.mark.parametrize("rule", sorted(ACCEPTED))
def test_a_value_on_the_edge_of_a_rule_passes_it(rule, baseline, drop_copy, ops_url, tmp_path):
    case = ACCEPTED[rule]
    planted = plant(drop_copy, case)
    settings = make_settings(tmp_path / "home", ops_url, olist_max_quarantine_share=0.5)
    result = pipeline.run(settings, drop_copy)
    if RULES[rule].severity == "warn":
        moved = checks(ops_url, result.run_id).get(rule, 0) - baseline.get(rule, 0)
        assert moved == 0, f"{rule}: an edge value was counted"  # the planted record was inside the rule before
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        caught = con.execute(
            "select rule from quarantine.rejected_rows where source_file = ? and row_number = ?", [BY_TABLE[case.table].filename, planted]
        ).fetchall()
    assert caught == [], f"{rule}: an edge value was quarantined by {caught}"


def test_every_rule_has_a_case():
    covered = {rule_of(c) for c in CASES}
    assert covered == set(RULES), (
        f"rules without a case: {sorted(set(RULES) - covered)}; cases without a rule: {sorted(covered - set(RULES))}"
    )
    for name, case in CASES.items():
        assert RULES[rule_of(name)].table == case.table, name


def plant(drop: Path, case: Case) -> int:
    """Change (or duplicate) one record of the case's file; return its record number (1-based)."""
    path = drop / BY_TABLE[case.table].filename
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        header, records = reader.fieldnames, list(reader)
    index = next(i for i, r in enumerate(records) if case.where is None or r[case.where[0]] == case.where[1])
    if case.changes is None:
        records.append(dict(records[index]))
        planted = len(records)
    else:
        record = records[index]
        record.update({k: record[v[1:]] if v.startswith("=") else v for k, v in case.changes.items()})
        planted = index + 1
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    path.write_text(out.getvalue(), encoding="utf-8")
    return planted


def checks(url: str, run_id: int) -> dict[str, int]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return {
            r["rule"]: r["rows_failing"]
            for r in conn.execute("select rule, rows_failing from quality_checks where run_id = %s", (run_id,)).fetchall()
        }


@pytest.fixture(scope="module")
def baseline(small_warehouse, ops_url) -> dict[str, int]:
    """What each rule counts on the clean drop: the checks of the session's first load of the
    small drop on a fresh OLIST_HOME (tests/conftest.py), as each case's run is one."""
    return checks(ops_url, small_warehouse[1].run_id)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_rule_catches_its_planted_record_and_no_other_rule_does(name, baseline, drop_copy, ops_url, tmp_path):
    case, rule = CASES[name], rule_of(name)
    planted = plant(drop_copy, case)
    settings = make_settings(tmp_path / "home", ops_url, olist_max_quarantine_share=0.5)
    result = pipeline.run(settings, drop_copy)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        caught = [
            r
            for (r,) in con.execute(
                "select rule from quarantine.rejected_rows where source_file = ? and row_number = ?",
                [BY_TABLE[case.table].filename, planted],
            ).fetchall()
        ]
    counted = checks(ops_url, result.run_id)
    if RULES[rule].severity == "reject":
        assert caught == [rule], f"record {planted} of {case.table}: quarantined by {caught}, expected {rule} alone"
    else:
        assert caught == [], f"record {planted} of {case.table} quarantined by {caught}: a warning keeps its row"
        moved = {r: counted.get(r, 0) - baseline.get(r, 0) for r in RULES if RULES[r].severity == "warn"}
        assert moved[rule] == 1 and all(n == 0 for r, n in moved.items() if r != rule), moved

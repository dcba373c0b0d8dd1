"""The bad-file corpus: every kind of bad input gets a clear error or quarantine, never a
stack trace and never silent loss; a failed run leaves the served warehouse untouched."""

import csv
import hashlib
import json

import duckdb
import psycopg
import pytest
from psycopg.rows import dict_row

from olist_bi.etl import pipeline
from tests.conftest import copy_home, make_settings

# Every test here runs the whole pipeline; what it checks is the gate, the quarantine and the
# publish, not the revenue forecast, whose fits are reused by input (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("reuse_forecast_fits")


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lines(path):
    return path.read_text(encoding="utf-8").split("\n")


def write_lines(path, rows):
    path.write_text("\n".join(rows), encoding="utf-8")


def quarantined(settings):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute("select source_file, row_number, line_number, rule, reason, original from quarantine.rejected_rows").fetchall()
    return [dict(zip(["file", "row", "line", "rule", "reason", "original"], r)) for r in rows]


@pytest.fixture
def served(settings, small_warehouse):
    """A served warehouse from a clean drop (a private copy of the session's load of the small
    drop, as `pipeline.run(settings, small_drop)` leaves it): failed runs after it must leave
    it as it is."""
    copy_home(small_warehouse[0], settings.home)
    return settings, digest(settings.warehouse_path)


def fails(settings, drop, *needles):
    with pytest.raises(pipeline.EtlError) as info:
        pipeline.run(settings, drop)
    message = str(info.value)
    for needle in needles:
        assert needle in message, message
    return info.value


@pytest.mark.parametrize(
    "breakage, needles",
    [
        (lambda d: (d / "olist_sellers_dataset.csv").unlink(), ["olist_sellers_dataset.csv: missing"]),
        (lambda d: (d / "olist_orders_dataset.csv").write_bytes(b""), ["olist_orders_dataset.csv: the file is empty"]),
        (
            lambda d: (d / "olist_order_reviews_dataset.csv").write_bytes(
                (d / "olist_order_reviews_dataset.csv").read_text(encoding="utf-8").encode("latin-1", "replace")
            ),
            ["olist_order_reviews_dataset.csv: not valid UTF-8 at line"],
        ),
        (
            lambda d: write_lines(
                d / "olist_products_dataset.csv",
                [lines(d / "olist_products_dataset.csv")[0].replace("product_name_lenght", "product_name_length")]
                + lines(d / "olist_products_dataset.csv")[1:],
            ),
            ["olist_products_dataset.csv: column 'product_name_lenght' is named 'product_name_length'"],
        ),
    ],
    ids=["missing-file", "empty-file", "bad-encoding", "renamed-column"],
)
def test_contract_breaks_fail_the_run_and_publish_nothing(served, drop_copy, breakage, needles, ops_url):
    settings, before = served
    breakage(drop_copy)
    error = fails(settings, drop_copy, *needles)
    assert digest(settings.warehouse_path) == before
    with psycopg.connect(ops_url, row_factory=dict_row) as conn:
        run = conn.execute("select status, error from pipeline_runs where run_id = %s", (error.run_id,)).fetchone()
    assert run["status"] == "failed" and needles[0] in run["error"]
    assert not list(settings.warehouse_path.parent.glob("*.building-*"))


def test_bad_values_are_quarantined_with_rule_reason_and_original(settings, drop_copy):
    orders = drop_copy / "olist_orders_dataset.csv"
    rows = lines(orders)
    fields = rows[1].split(",")
    fields[2] = "teleported"  # status not accepted
    rows[1] = ",".join(fields)
    fields = rows[2].split(",")
    fields[3] = "2018-13-45 99:00:00"  # not a timestamp
    rows[2] = ",".join(fields)
    rows.append(rows[3])  # a duplicate order
    rows.append("")
    write_lines(orders, [r for r in rows if r] + [""])

    # items and reviews of the last orders (the first orders' children would fail their
    # order reference first, since those orders are rejected above)
    items = drop_copy / "olist_order_items_dataset.csv"
    rows = lines(items)  # ends with "" after the final line break
    fields = rows[-2].split(",")
    fields[5] = "-3.00"  # negative price
    rows[-2] = ",".join(fields)
    fields = rows[-3].split(",")
    fields[2] = "f" * 32  # unknown product
    rows[-3] = ",".join(fields)
    write_lines(items, rows)
    item_rows = len(rows) - 2

    scores = drop_copy / "olist_order_reviews_dataset.csv"
    text = scores.read_text(encoding="utf-8")
    head, _, last = text.rstrip("\n").rpartition("\n")
    fields = last.split(",")
    fields[2] = "7"  # score out of range
    scores.write_text(head + "\n" + ",".join(fields) + "\n", encoding="utf-8")

    result = pipeline.run(make_settings(settings.home, settings.database_url, olist_max_quarantine_share=0.5), drop_copy)
    assert result.status == "succeeded"
    rules = {q["rule"]: q for q in quarantined(settings)}
    assert rules["orders.status.accepted"]["row"] == 1
    assert json.loads(rules["orders.status.accepted"]["original"])["order_status"] == "teleported"
    assert rules["orders.types"]["row"] == 2 and "order_purchase_timestamp=2018-13-45 99:00:00" in rules["orders.types"]["reason"]
    assert "orders.order_id.unique" in rules
    assert rules["order_items.price.valid"]["row"] == item_rows
    assert rules["order_items.product.exists"]["row"] == item_rows - 1
    # the reviews file has multi-line comments: record numbers are records, not lines
    with scores.open(encoding="utf-8", newline="") as f:
        review_records = sum(1 for _ in csv.reader(f)) - 1
    assert rules["order_reviews.score.range"]["row"] == review_records
    assert json.loads(rules["order_reviews.score.range"]["original"])["review_score"] == 7
    for table, read in result.rows_read.items():
        assert result.rows_loaded[table] + result.rows_quarantined[table] == read
    assert result.rows_quarantined["orders"] == 3
    with psycopg.connect(settings.database_url) as conn:  # the run's report counts the reject rules that caught rows
        failed, summary = conn.execute("select rules_failed, summary from quality_reports where run_id = %s", (result.run_id,)).fetchone()
    caught = {
        "orders.status.accepted",
        "orders.types",
        "orders.order_id.unique",
        "order_items.price.valid",
        "order_items.product.exists",
        "order_reviews.score.range",
    }
    assert caught <= set(summary) and failed >= len(caught) and failed == sum(1 for rule in summary if rule in rules)


def test_a_truncated_last_line_is_quarantined_with_its_line_number(settings, drop_copy):
    path = drop_copy / "olist_order_payments_dataset.csv"
    text = path.read_text(encoding="utf-8").rstrip("\n")
    cut = text[: text.rfind(",")]  # the last record loses its last field
    path.write_text(cut, encoding="utf-8")
    expected_line = cut.count("\n") + 1
    result = pipeline.run(settings, drop_copy)
    [row] = [q for q in quarantined(settings) if q["rule"] == "order_payments.csv_format"]
    assert row["line"] == expected_line and row["file"] == "olist_order_payments_dataset.csv"
    assert json.loads(row["original"])["csv_line"]
    assert result.rows_read["order_payments"] == result.rows_loaded["order_payments"] + 1


def test_a_stray_quote_is_kept_in_quarantine_with_the_text_it_swallowed(settings, drop_copy):
    path = drop_copy / "olist_sellers_dataset.csv"
    rows = lines(path)
    fields = rows[-3].split(",")
    fields[2] = '"' + fields[2]  # a quote that opens and never closes
    rows[-3] = ",".join(fields)
    write_lines(path, rows)
    result = pipeline.run(make_settings(settings.home, settings.database_url, olist_max_quarantine_share=0.5), drop_copy)
    [row] = [q for q in quarantined(settings) if q["rule"] == "sellers.csv_format"]
    assert "quote" in row["reason"].lower()
    assert fields[0] in json.loads(row["original"])["csv_line"]
    assert result.rows_quarantined["sellers"] == 1
    assert result.rows_loaded["sellers"] + 1 == result.rows_read["sellers"]
    assert result.rows_loaded["sellers"] >= len(rows) - 2 - 3  # no more than the damaged record and its neighbours


def test_a_stray_quote_that_swallows_the_file_fails_the_run(served, drop_copy):
    settings, before = served
    path = drop_copy / "product_category_name_translation.csv"  # no other quote below it
    rows = lines(path)
    rows[2] = '"' + rows[2]
    write_lines(path, rows)
    fails(settings, drop_copy, "product_category_name_translation.csv", "category_translation.csv_format", "OLIST_MAX_QUARANTINE_SHARE")
    assert digest(settings.warehouse_path) == before


def test_too_many_rejects_fail_the_run_with_examples(served, drop_copy):
    settings, before = served
    path = drop_copy / "olist_order_items_dataset.csv"
    rows = lines(path)
    for i in range(1, 101):
        fields = rows[i].split(",")
        fields[5] = "-1.00"
        rows[i] = ",".join(fields)
    write_lines(path, rows)
    error = fails(settings, drop_copy, "olist_order_items_dataset.csv", "order_items.price.valid: 100", "over the limit of 5.0%")
    example = rows[1].split(",")[0].strip('"')
    assert example in str(error)
    assert digest(settings.warehouse_path) == before


def test_warnings_keep_their_rows(warehouse):
    settings, result = warehouse
    warned = {r.rule: r for r in result.results if r.severity == "warn" and not r.passed}
    assert {"orders.carrier.after_approval", "orders.delivered.has_date", "products.category.present"} <= set(warned)
    assert result.rows_quarantined["orders"] == 0


@pytest.mark.parametrize("kept", [0, 3], ids=["header-only", "a-few-rows"])
@pytest.mark.parametrize(
    "name, table", [("olist_geolocation_dataset.csv", "geolocation"), ("product_category_name_translation.csv", "category_translation")]
)
def test_a_snapshot_that_would_empty_or_halve_its_table_fails_unless_allowed(served, drop_copy, name, table, kept):
    settings, before = served
    path = drop_copy / name
    rows = [r for r in lines(path) if r]
    write_lines(path, rows[: 1 + kept] + [""])  # a truncated export: the header and `kept` rows
    fails(settings, drop_copy, name, f"with {kept:,}", "--allow-shrink")
    assert digest(settings.warehouse_path) == before  # nothing was published
    result = pipeline.run(settings, drop_copy, allow_shrink=True)
    assert result.status == "succeeded" and any("allowed by --allow-shrink" in w for w in result.warnings)
    rebuilt = pipeline.run(settings, None, full=True)  # replays both drops: the shrink was accepted once, it is not judged again
    assert rebuilt.status == "succeeded"
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute(f"select count(*) from raw.{table}").fetchone()[0] <= kept


def test_an_empty_appended_file_is_a_warning(served, drop_copy):
    settings, _ = served
    sellers = drop_copy / "olist_sellers_dataset.csv"
    write_lines(sellers, [lines(sellers)[0], ""])
    result = pipeline.run(settings, drop_copy)
    assert result.status == "succeeded" and "olist_sellers_dataset.csv has no rows to load: nothing new for sellers" in result.warnings


def test_purchases_before_the_data_set_or_in_the_future_are_quarantined(settings, drop_copy):
    orders = drop_copy / "olist_orders_dataset.csv"
    rows = lines(orders)
    for index, when in ((1, "2099-01-01 10:00:00"), (2, "1999-12-31 23:00:00")):
        fields = rows[index].split(",")
        fields[3] = when
        rows[index] = ",".join(fields)
    write_lines(orders, rows)
    result = pipeline.run(make_settings(settings.home, settings.database_url, olist_max_quarantine_share=0.5), drop_copy)
    found = [q for q in quarantined(settings) if q["rule"] == "orders.purchase.in_range"]
    assert sorted(q["row"] for q in found) == [1, 2] and result.status == "succeeded"
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select max(date_key) from dim_date").fetchone()[0].year < 2099  # the calendar did not grow to 2099

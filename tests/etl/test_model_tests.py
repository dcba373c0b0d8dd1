"""The models' column tests (models.yaml, in dbt's words) and descriptions: each kind of test
fails on a planted violation, naming the model, the column, the test and the failing count; a
test of severity warn becomes a note of the run; descriptions are declared for exactly the
columns each model builds, and the build stores them in the warehouse (COMMENT ON)."""

from __future__ import annotations

import shutil
import textwrap

import duckdb
import pytest

from olist_bi.etl import transform
from tests.conftest import clickhouse_settings


@pytest.fixture
def broken(warehouse, tmp_path):
    """A private, writable copy of the session's built warehouse, to plant violations in."""
    settings, _ = warehouse
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(settings.warehouse_path.resolve(), copy)
    con = duckdb.connect(str(copy))
    yield con
    con.close()


def failures(con) -> str:
    with pytest.raises(transform.ContractViolation) as raised:
        transform.test_contracts(con)
    return str(raised.value)


def test_the_built_warehouse_passes_every_test_and_warns_of_the_known_orphans(broken):
    notes = transform.test_contracts(broken)
    orphans = broken.execute(
        "select count(*) from dim_customer where zip_code_prefix not in (select zip_code_prefix from dim_geography)"
    ).fetchone()[0]
    assert orphans > 0  # the generator plants customer zips the geolocation file lacks, as in the real files
    assert f"dim_customer.zip_code_prefix: test relationships to dim_geography.zip_code_prefix fails on {orphans} rows" in "\n".join(notes)
    assert all("severity warn" in note for note in notes), notes


def test_the_run_reports_a_warning_test_as_a_note_and_publishes(warehouse):
    _, result = warehouse
    assert result.status == "succeeded"
    assert any("fact_deliveries.customer_zip_code_prefix: test relationships to dim_geography" in w for w in result.warnings), (
        result.warnings
    )


@pytest.mark.parametrize(
    "plant, message",
    [
        ("update fact_order_items set product_id = null where rowid < 3", "fact_order_items.product_id: test not_null fails on 3 rows"),
        (
            "update dim_seller set seller_key = 1 where seller_id in (select seller_id from dim_seller order by seller_id limit 2)",
            "dim_seller.seller_key: test unique fails on 1 value held by more than one row",
        ),
        (
            "update fact_order_items set product_id = 'no-such-product' where rowid < 4",
            "fact_order_items.product_id: test relationships to dim_product.product_id fails on 4 rows",
        ),
        (
            "update fact_payments set payment_type = 'pix' where rowid < 5",
            "fact_payments.payment_type: test accepted_values (5 values) fails on 5 rows",
        ),
        (
            "update fact_reviews set review_score = 0 where rowid < 1",
            "fact_reviews.review_score: test accepted_values (5 values) fails on 1 row",
        ),
    ],
    ids=["not_null", "unique", "relationships", "accepted_values_text", "accepted_values_integer"],
)
def test_each_kind_of_test_fails_naming_model_column_test_and_count(broken, plant, message):
    broken.execute(plant)
    found = failures(broken)
    assert message in found, found
    assert found.startswith("model contracts failed:")


def test_the_grain_check_keeps_its_messages(broken):
    broken.execute("insert into dim_date select * from dim_date order by date_key limit 2")
    assert "dim_date: 2 duplicated grain keys (date_key)" in failures(broken)


def test_a_warning_test_never_fails_the_run(broken):
    broken.execute(
        "update dim_seller set zip_code_prefix = '00000' where seller_id in (select seller_id from dim_seller order by seller_id limit 3)"
    )
    notes = transform.test_contracts(broken)
    assert any("dim_seller.zip_code_prefix: test relationships to dim_geography.zip_code_prefix fails on 3 rows" in n for n in notes), notes


def test_relationships_skip_null_keys_as_dbt_does():
    """An order without a review, a product without a category: a null key is no orphan."""
    test = transform.ColumnTest("relationships", "parent", "key")
    with duckdb.connect() as con:
        con.execute("create table parent as select * from (values (1), (2)) as t(key)")
        con.execute("create table child as select * from (values (1), (null), (3), (null), (3)) as t(key)")
        assert con.execute(test.failing_sql("child", "key")).fetchone()[0] == 2  # the two 3s; nulls pass
        assert con.execute(transform.ColumnTest("not_null").failing_sql("child", "key")).fetchone()[0] == 2
        assert con.execute(transform.ColumnTest("unique").failing_sql("child", "key")).fetchone()[0] == 1  # 3, twice
        assert con.execute(transform.ColumnTest("accepted_values", values=(1, 2)).failing_sql("child", "key")).fetchone()[0] == 2


def test_the_tests_mean_the_same_on_clickhouse(clickhouse_url, ops_url, tmp_path):
    """ClickHouse runs the same SQL: an outer join's missing side must read null there too
    (the dialect's join_use_nulls), or no relationship could ever fail."""
    from olist_bi.engines.clickhouse import warehouse as clickhouse

    ch = clickhouse.connect(clickhouse_settings(tmp_path / "home", ops_url, clickhouse_url, "model_tests"))
    ch.command("create database if not exists model_tests")
    ch.command("create or replace table model_tests.parent (key String) engine = MergeTree order by key")
    ch.command("create or replace table model_tests.child (key Nullable(String), status String) engine = MergeTree order by tuple()")
    ch.command("insert into model_tests.parent values ('a'), ('b')")
    ch.command("insert into model_tests.child values ('a', 'delivered'), (null, 'delivered'), ('c', 'lost'), ('c', 'delivered')")

    def table(name: str) -> str:
        return f"model_tests.{name}"

    checks = [
        (transform.ColumnTest("relationships", "parent", "key"), "key", 2),
        (transform.ColumnTest("not_null"), "key", 1),
        (transform.ColumnTest("unique"), "key", 1),
        (transform.ColumnTest("accepted_values", values=("delivered", "shipped")), "status", 1),
    ]
    for test, column, failing in checks:
        assert ch.scalar(test.failing_sql(table("child"), column, table)) == failing, test


@pytest.mark.parametrize(
    "tests, complaint",
    [
        ("[not_empty]", "'not_empty' is not one of dbt's tests"),
        ("[{relationships: {to: no_such_model, field: id}}]", "relationships to no_such_model.id names no model of models.yaml"),
        ("[{relationships: {to: b}}]", "relationships takes `to` and `field`"),
        ("[{accepted_values: {values: [1.5]}}]", "accepted values are text or integers"),
        ("[{not_null: {config: {severity: loud}}}]", "is not one of dbt's tests"),
    ],
)
def test_a_test_models_yaml_cannot_run_is_refused_by_name(tmp_path, monkeypatch, tests, complaint):
    (tmp_path / "models.yaml").write_text(
        textwrap.dedent(f"""\
            models:
              - {{name: a, layer: dims, grain: [id], columns: [{{name: id, description: x, tests: {tests}}}]}}
              - {{name: b, layer: dims, grain: [id], columns: [{{name: id, description: x}}]}}
            """)
    )
    monkeypatch.setattr(transform, "MODELS", tmp_path)
    with pytest.raises(transform.ContractViolation, match="models.yaml: a.id: .*") as raised:
        transform.declared()
    assert complaint in str(raised.value)


# --- descriptions ----------------------------------------------------------------------------


def built_columns(con, model: str) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "select column_name from duckdb_columns() where schema_name = 'main' and table_name = ? order by column_index", [model]
        ).fetchall()
    ]


@pytest.fixture(scope="module")
def served(warehouse):
    settings, _ = warehouse
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        yield con


@pytest.mark.parametrize("model", transform.models(), ids=lambda m: m.name)
def test_every_built_column_is_declared_with_a_description_and_no_other(served, model):
    """A new column needs a line in models.yaml; a column dropped from the SQL, its line removed."""
    built = built_columns(served, model.name)
    declared = [c.name for c in model.columns]
    assert built, f"{model.name} was not built"
    assert sorted(set(built) - set(declared)) == [], f"{model.name}: built but not declared in models.yaml"
    assert sorted(set(declared) - set(built)) == [], f"{model.name}: declared in models.yaml but not built"
    assert declared == built, f"{model.name}: models.yaml lists its columns in another order than the SQL"
    assert model.description.strip(), f"{model.name} has no description"
    assert [c.name for c in model.columns if not c.description.strip()] == [], f"{model.name}: columns without a description"


def test_the_build_stores_every_description_in_the_warehouse(served):
    tables = dict(served.execute("select table_name, comment from duckdb_tables() where schema_name = 'main'").fetchall())
    views = dict(served.execute("select view_name, comment from duckdb_views() where schema_name = 'main' and not internal").fetchall())
    columns = {
        (t, c): comment
        for t, c, comment in served.execute(
            "select table_name, column_name, comment from duckdb_columns() where schema_name = 'main'"
        ).fetchall()
    }
    for model in transform.models():
        kind = views if model.layer in transform.VIEW_LAYERS else tables
        assert kind[model.name] == model.description, model.name
        for column in model.columns:
            assert columns[(model.name, column.name)] == column.description, f"{model.name}.{column.name}"


def test_a_description_with_a_quote_is_stored_as_written(monkeypatch):
    model = transform.Model(
        "quoted", "dims", ("id",), None, description="The customer's 'unknown' row", columns=(transform.ModelColumn("id", "It's an id"),)
    )
    monkeypatch.setattr(transform, "models", lambda: (model,))
    with duckdb.connect() as con:
        con.execute("create table quoted as select 1 as id")
        transform.comment_models(con)
        assert (
            con.execute("select comment from duckdb_tables() where table_name = 'quoted'").fetchone()[0] == "The customer's 'unknown' row"
        )
        assert con.execute("select comment from duckdb_columns() where table_name = 'quoted'").fetchone()[0] == "It's an id"

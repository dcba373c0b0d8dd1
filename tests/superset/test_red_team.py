"""The red team's suite: each role, each way into the data, each trick, on the real Superset.

For every role of access.yaml (viewer, analyst, regional manager, admin) and every way in
(chart data as JSON, CSV and XLSX; samples; drill to detail; a filter's list of values; SQL
Lab; alerts and reports), the tricks that stepped around a text filter (set operations,
CTEs, comments, sub-queries, information_schema, table functions) are tried, and the answer
must be a refusal or rows inside the role's reach: SP alone for the regional manager, whose
counts are checked against the source files read with Python's csv module; no table outside
the reader copy (raw, quarantine, staging) for anyone. docs/security.md lists the claims and
the tests behind them."""

from __future__ import annotations

import csv
import io
import zipfile
from xml.etree import ElementTree

import pytest

from olist_bi.engines.duckdb import warehouse as wh
from olist_bi.bi.superset import bundle
from tests.superset.test_provision import database_id
from tests.superset.test_scope import deliveries

ROLES = ["viewer", "analyst", "regional_sp", "manager"]

# Custom SQL metrics, as a chart-data request carries them: each tries to read past the
# user's rows (another state) or past its tables (raw, the catalog, a table function).
METRIC_TRICKS = {
    "union": "count(*) as n from semantic.olist_deliveries group by customer_state union all select customer_state, count(*)",
    "union in a comment-split": (
        "count(*) /* a */ as n from semantic.olist_deliveries group by customer_state -- \n union all select customer_state, count(*)"
    ),
    "sub-query of another state": "(select count(*) from semantic.olist_deliveries where customer_state <> 'SP')",
    "sub-query of raw": "(select count(*) from raw.customers)",
    "information_schema": "(select count(*) from information_schema.tables where table_schema in ('raw', 'quarantine'))",
    "table function": "(select count(*) from duckdb_tables() where schema_name in ('raw', 'quarantine'))",
    "cte": "(with x as (select * from semantic.olist_deliveries) select count(*) from x where customer_state <> 'SP')",
}

# What an analyst may type in SQL Lab against the warehouse: none reaches raw, quarantine or
# staging, because the reader copy does not hold them.
SQL_LAB_TRICKS = {  # the statement, and what it may give: refused, or a count that must be 0
    "select * from raw.customers": "refused",
    "with c as (select * from raw.customers) select count(*) from c": "refused",
    "select count(*) from fact_deliveries union all select count(*) from raw.customers": "refused",
    "select count(*) from (select * from quarantine.rejected_rows)": "refused",
    "select count(*) from stg_orders": "refused",
    "select count(*) from information_schema.tables where table_schema in ('raw', 'quarantine') or table_name like 'stg%'": "zero",
    "select count(*) from duckdb_tables() where schema_name in ('raw', 'quarantine')": "zero",
    "select count(*) from duckdb_views() where view_name like 'stg%' or view_name like 'int%'": "zero",
    "select * from read_csv('/etc/passwd')": "refused",
}


@pytest.fixture
def sp_orders(superset) -> int:
    """Orders of customers in SP, counted with Python's csv module from the source files the
    served warehouse holds (its ledger, meta.loads: the session's drop, and any increment an
    earlier test published), a later drop's row replacing an earlier one's."""
    settings = superset[0]
    with wh.connect(wh.reader_path(settings.warehouse_path)) as con:
        files = con.execute("select source_file, path from meta.loads order by run_id, source_file").fetchall()
    states, customers = {}, {}
    for name, path in files:
        if name in ("olist_customers_dataset.csv", "olist_orders_dataset.csv"):
            with open(path, encoding="utf-8", newline="") as f:
                for row in csv.DictReader(f):
                    if name == "olist_customers_dataset.csv":
                        states[row["customer_id"]] = row["customer_state"]
                    else:
                        customers[row["order_id"]] = row["customer_id"]
    return sum(1 for customer in customers.values() if states.get(customer) == "SP")


def ask(client, dataset: int, metric: str, fmt: str = "json", columns=("customer_state",)):
    body = {
        "datasource": {"id": dataset, "type": "table"},
        "result_format": fmt,
        "result_type": "full",
        "queries": [
            {"columns": list(columns), "metrics": [{"expressionType": "SQL", "sqlExpression": metric, "label": "n"}], "row_limit": 10000}
        ],
    }
    response = client.session.post(f"{client.url}/api/v1/chart/data", json=body, timeout=120)
    if response.status_code >= 400:
        return None, response.text
    if fmt == "json":
        return response.json()["result"][0]["data"], ""
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))), ""
    return xlsx_rows(response.content), ""


def xlsx_rows(content: bytes) -> list[dict]:
    """The rows of the first sheet of an XLSX answer, read with the standard library."""
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    with zipfile.ZipFile(io.BytesIO(content)) as book:
        names = book.namelist()
        shared = (
            [
                ("".join(t.text or "" for t in si.iter(f"{{{ns['m']}}}t")))
                for si in ElementTree.fromstring(book.read("xl/sharedStrings.xml")).findall("m:si", ns)
            ]
            if "xl/sharedStrings.xml" in names
            else []
        )
        sheet = ElementTree.fromstring(book.read(sorted(n for n in names if n.startswith("xl/worksheets/sheet"))[0]))
    table = []
    for row in sheet.iter(f"{{{ns['m']}}}row"):
        cells = []
        for cell in row.findall("m:c", ns):
            value = cell.find("m:v", ns)
            inline = cell.find("m:is/m:t", ns)
            text = inline.text if inline is not None else (value.text if value is not None else None)
            cells.append(shared[int(text)] if cell.get("t") == "s" and text is not None else text)
        table.append(cells)
    header, *rows = table
    return [dict(zip(header, row)) for row in rows]


def within_reach(user: str, rows: list[dict], sp_orders: int) -> None:
    """No row outside the user's reach in an answer."""
    states = {r.get("customer_state") for r in rows}
    if user == "regional_sp":
        assert states <= {"SP"}, states
        for row in rows:  # a count from anywhere is at most SP's own orders
            assert row["n"] is None or float(row["n"]) <= sp_orders, row


@pytest.mark.parametrize("trick", METRIC_TRICKS)
@pytest.mark.parametrize("user", ROLES)
def test_chart_data_in_every_format_stays_within_reach(superset, login, user, trick, sp_orders):
    _, admin, _ = superset
    client, dataset = login(user), deliveries(admin)
    for fmt in ("json", "csv", "xlsx"):
        rows, refusal = ask(client, dataset, METRIC_TRICKS[trick], fmt)
        if rows is None:
            refusals = (
                "so it was not run",
                "does not exist",
                "Forbidden",
                "not allowed",
                "cannot contain sub-queries",
            )  # the guard's, DuckDB's, Superset's
            assert any(why in refusal for why in refusals), (user, trick, fmt, refusal[:300])
            continue
        within_reach(user, rows, sp_orders)
        if "raw" in trick or trick in ("information_schema", "table function"):
            assert all(float(r["n"] or 0) == 0 for r in rows), (user, trick, fmt, rows[:3])  # nothing internal to count
        if user == "regional_sp" and trick in ("sub-query of another state", "cte"):
            assert all(float(r["n"] or 0) == 0 for r in rows), rows  # no other state's rows exist for it


def test_the_regional_manager_s_honest_answer_is_sp_s_count_from_the_source_files(superset, login, sp_orders):
    _, admin, _ = superset
    rows, _ = ask(login("regional_sp"), deliveries(admin), "count(*)")
    assert rows == [{"customer_state": "SP", "n": sp_orders}]


@pytest.mark.parametrize("user", ROLES)
def test_samples_drill_detail_and_filter_values_stay_within_reach(superset, login, user, sp_orders):
    """Samples, drill to detail asking for another state outright, and a column's values."""
    _, admin, _ = superset
    client, dataset = login(user), deliveries(admin)
    samples = client.session.post(f"{client.url}/datasource/samples?datasource_id={dataset}&datasource_type=table", json={}, timeout=120)
    drill = client.session.post(
        f"{client.url}/datasource/samples?datasource_id={dataset}&datasource_type=table&per_page=100&page=1",
        json={"filters": [{"col": "customer_state", "op": "IN", "val": ["RJ", "MG"]}]},
        timeout=120,
    )
    values = client.session.get(f"{client.url}/api/v1/datasource/table/{dataset}/column/customer_state/values/", timeout=120)
    for answer in (samples, drill):
        if answer.status_code >= 400:
            assert answer.status_code in (401, 403), (user, answer.text[:300])
            continue
        within_reach(user, answer.json()["result"]["data"], sp_orders)
    if user == "regional_sp" and drill.status_code < 400:
        assert drill.json()["result"]["data"] == []  # RJ and MG asked for by name: none in its data
    if values.status_code < 400:
        found = set(values.json()["result"])
        assert found == {"SP"} if user == "regional_sp" else len(found) > 1, (user, found)
    else:
        assert values.status_code in (401, 403), (user, values.text[:300])


@pytest.mark.parametrize("sql", SQL_LAB_TRICKS)
@pytest.mark.parametrize("user", ROLES)
def test_sql_lab_reaches_nothing_outside_the_reader_copy(superset, login, user, sql):
    _, admin, _ = superset
    client = login(user)
    response = client.session.post(
        f"{client.url}/api/v1/sqllab/execute/",
        timeout=120,
        json={"database_id": database_id(admin, bundle.WAREHOUSE), "sql": sql, "runAsync": False},
    )
    if user in ("viewer", "regional_sp"):
        assert response.status_code in (401, 403), (user, response.text[:300])  # no SQL Lab at all
    elif SQL_LAB_TRICKS[sql] == "refused":
        assert response.status_code >= 400 and any(why in response.text for why in ("does not exist", "disabled")), (
            user,
            response.text[:300],
        )
    else:
        assert response.status_code == 200, (user, response.text[:300])
        assert [list(row.values()) for row in response.json()["data"]] == [[0]], response.json()["data"]


@pytest.mark.parametrize("user", ["viewer", "regional_sp"])
def test_readers_cannot_schedule_alerts_or_reports(superset, login, user):
    """An alert's SQL would be a way into the warehouse: readers may not create one."""
    _, admin, _ = superset
    body = {
        "type": "Alert",
        "name": f"red team {user}",
        "crontab": "0 * * * *",
        "database": database_id(admin, bundle.WAREHOUSE),
        "sql": "select count(*) from raw.customers",
        "validator_type": "operator",
        "validator_config_json": {"op": ">", "threshold": 0},
        "recipients": [{"type": "Email", "recipient_config_json": {"target": f"{user}@olist-bi.local"}}],
    }
    client = login(user)
    response = client.session.post(f"{client.url}/api/v1/report/", json=body, timeout=60)
    assert response.status_code in (401, 403), (user, response.status_code, response.text[:300])

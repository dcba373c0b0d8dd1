"""The engine comparison: the same rows from DuckDB and from the PostgreSQL copy, for every
dashboard query; the CLI's JSON report."""

import json

import psycopg
import pytest
from click.testing import CliRunner

from bench import queries as benchmark
from bench.queries import main
from olist_bi.etl.transform import models
from tests.conftest import fresh_database

# What these check is the engine comparison, not the revenue forecast: the ETL runs of the
# benchmark's drops reuse its fits by input (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("reuse_forecast_fits")


@pytest.fixture
def bench_pg(ops_url):
    with fresh_database(ops_url, "olist_test_bench") as url:
        yield url


def test_postgres_copy_has_every_table_with_its_rows_and_keys(warehouse, bench_pg):
    settings, _ = warehouse
    counts = benchmark.load_postgres(settings.warehouse_path, bench_pg, say=lambda m: None)
    with psycopg.connect(bench_pg) as conn:
        for table, rows in counts.items():
            assert conn.execute(f"select count(*) from {benchmark.SCHEMA}.{table}").fetchone()[0] == rows, table
        keys = conn.execute(
            "select count(*) from information_schema.table_constraints where table_schema = %s and constraint_type = 'PRIMARY KEY'",
            (benchmark.SCHEMA,),
        ).fetchone()[0]
    published = [m.name for m in models() if m.layer in ("dims", "facts", "marts")]
    assert sorted(counts) == sorted(published) and keys == len(published) >= 16  # a key on every grain


def test_every_dashboard_query_returns_the_same_rows_on_both_engines(warehouse, bench_pg):
    settings, _ = warehouse
    benchmark.load_postgres(settings.warehouse_path, bench_pg, say=lambda m: None)
    results = benchmark.run_queries(settings.warehouse_path, bench_pg, repeat=1, say=lambda m: None)
    assert len(results) == len(benchmark.dashboard_queries()) > 30
    differing = [r.name for r in results if not r.same_rows]
    assert differing == []
    assert all(r.rows > 0 and r.duckdb_ms and r.postgres_ms for r in results)


def test_row_comparison_can_fail():
    from decimal import Decimal

    assert benchmark.same_rows([(1, 11.172749999999)], [(1, 11.17275000000001)])  # summed in another order
    assert benchmark.same_rows([("SP", Decimal("2.50")), ("RJ", 1.0)], [("RJ", 1.0), ("SP", 2.5)])  # any order, any numeric type
    assert not benchmark.same_rows([(1, 2.1)], [(1, 2.0)])
    assert not benchmark.same_rows([("SP", 3)], [("RJ", 3)])
    assert not benchmark.same_rows([(1, None)], [(1, 0.0)])
    assert not benchmark.same_rows([(1, 2.0)], [(1, 2.0), (2, 2.0)])


@pytest.fixture(scope="module")
def bench_home(tmp_path_factory):
    """One home for the CLI's runs: the drop, warehouse and PostgreSQL copy of a scale are built once."""
    return tmp_path_factory.mktemp("bench-home")


@pytest.mark.slow
def test_bench_queries_json(bench_home, ops_url):
    result = CliRunner().invoke(
        main,
        ["queries", "--scale", "0.01", "--repeat", "2", "--format", "json"],
        env={"OLIST_HOME": str(bench_home), "OLIST_DATABASE_URL": ops_url},
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["geomean_speedup"] > 0 and report["all_rows_equal"] is True
    assert len(report["queries"]) > 30 and {
        "query",
        "duckdb_p95_ms",
        "postgres_p95_ms",
        "speedup",
        "same_rows",
        "file_open_speedup",
    } <= set(report["queries"][0])
    # the provider's connections cost less than opening the file, and so do its queries
    assert report["connection_cost"]["provider"]["p50_ms"] < report["connection_cost"]["file_open"]["p50_ms"]
    assert report["geomean_speedup"] > report["geomean_file_open_speedup"]


@pytest.mark.slow
def test_bench_report_writes_the_page_and_its_plot(bench_home, ops_url, tmp_path, monkeypatch):
    drawn = []
    # matplotlib is the bench extra's, not the tests': the plot is drawn by a stand-in that notes its arguments
    monkeypatch.setattr(benchmark, "plot", lambda reports, path: drawn.append(([r["scale"] for r in reports], path)))
    out, results = tmp_path / "BENCHMARKS.md", tmp_path / "results"
    # a scale measured earlier, kept beside the page: it stays on it when another scale is run
    results.mkdir()
    (results / "queries-scale0.001.json").write_text(
        json.dumps({"scale": 0.001, "marker": "kept", "geomean_speedup": 2, "duckdb_worst_p95_ms": 3})
    )
    monkeypatch.setattr(benchmark, "render_report", lambda reports, plot_name, command: f"{command}\n{json.dumps(reports)}")
    result = CliRunner().invoke(
        main,
        ["report", "--scales", "0.01", "--repeat", "1", "--out", str(out), "--results", str(results), "--format", "json"],
        env={"OLIST_HOME": str(bench_home), "OLIST_DATABASE_URL": ops_url},
    )
    assert result.exit_code == 0, result.output
    png = tmp_path / "benchmarks-latency.png"
    assert drawn == [([0.001, 0.01], png)]
    assert json.loads(result.stdout)["wrote"] == [str(out), str(png)]
    command, shown = out.read_text().split("\n", 1)
    assert command == "python -m bench.queries report --scales 0.001,0.01 --repeat 1"
    assert [r.get("marker") for r in json.loads(shown)] == ["kept", None]
    assert json.loads((results / "queries-scale0.01.json").read_text())["all_rows_equal"] is True
    # no scale: the page again from what is kept, nothing measured
    again = CliRunner().invoke(
        main,
        ["report", "--scales", "", "--repeat", "1", "--out", str(out), "--results", str(results), "--format", "json"],
        env={"OLIST_HOME": str(bench_home), "OLIST_DATABASE_URL": ops_url},
    )
    assert again.exit_code == 0, again.output
    assert out.read_text().split("\n", 1)[0] == command and "scale 0.01 ..." not in again.output


def test_the_page_names_the_scale_100_targets():
    query = {
        "query": "q",
        "rows": 1,
        "duckdb_p50_ms": 1,
        "duckdb_p95_ms": 1,
        "duckdb_file_open_p50_ms": 1,
        "postgres_p50_ms": 1,
        "postgres_p95_ms": 1,
        "speedup": 1,
        "file_open_speedup": 1,
        "same_rows": True,
    }
    report = {
        "scale": 100.0,
        "orders": 1,
        "queries": [query],
        "geomean_speedup": 1,
        "geomean_file_open_speedup": 1,
        "connection_cost": {"provider": {"p50_ms": 0.1}, "file_open": {"p50_ms": 9}},
        "duckdb_worst_p95_ms": 1200.5,
        "postgres_worst_p95_ms": 1,
        "all_rows_equal": True,
        "clickhouse_worst_p95_ms": 400.0,
    }
    page = benchmark.render_report([report], "plot.png", "cmd")
    assert "| DuckDB p95 at most 1 s per dashboard query at scale 100 | worst 1200.5 ms | missed |" in page
    assert "| ClickHouse (embedded) p95 at most 1 s per dashboard query at scale 100 | worst 400.0 ms | met |" in page


def test_a_stale_postgres_copy_is_refused(warehouse, bench_pg, tmp_path):
    import shutil

    settings, _ = warehouse
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(settings.warehouse_path, copy)
    benchmark.load_postgres(copy, bench_pg, say=lambda m: None)
    copy.write_bytes(copy.read_bytes())  # the same content, a newer file: another publish
    with pytest.raises(RuntimeError, match="does not hold a copy"):
        benchmark.run_queries(copy, bench_pg, repeat=1, say=lambda m: None)


def test_percentile_is_by_nearest_rank():
    values = list(range(1, 21))
    assert benchmark.percentile(values, 95) == 19
    assert benchmark.percentile(values, 50) == 11
    assert benchmark.percentile([5.0], 95) == 5.0


def test_every_dashboard_query_returns_the_same_rows_on_clickhouse(warehouse, clickhouse_warehouse, bench_pg):
    from olist_bi.engines.clickhouse import warehouse as clickhouse

    settings, _ = warehouse
    ch_settings, _ = clickhouse_warehouse
    benchmark.load_postgres(settings.warehouse_path, bench_pg, say=lambda m: None)
    results = benchmark.run_queries(
        settings.warehouse_path,
        bench_pg,
        repeat=1,
        say=lambda m: None,
        clickhouse=lambda sql, params: clickhouse.query(ch_settings, sql, params),
    )
    assert [r.name for r in results if not r.clickhouse_same_rows] == []
    assert all(r.clickhouse_ms for r in results)
    assert {"clickhouse_p50_ms", "clickhouse_speedup", "clickhouse_same_rows"} <= set(results[0].summary())


@pytest.mark.slow
def test_bench_queries_with_clickhouse(tmp_path, ops_url, clickhouse_url):
    env = {"OLIST_HOME": str(tmp_path), "OLIST_DATABASE_URL": ops_url, "OLIST_CLICKHOUSE_URL": clickhouse_url}
    result = CliRunner().invoke(
        main,
        ["queries", "--scale", "0.01", "--repeat", "1", "--format", "json", "--engines", "duckdb,postgres,clickhouse"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["clickhouse_rows_equal"] is True and report["clickhouse_geomean_speedup"] > 0
    refused = CliRunner().invoke(main, ["queries", "--engines", "clickhouse"], env=env)
    assert refused.exit_code == 2 and "duckdb,postgres,clickhouse" in refused.output


def test_a_scale_measured_without_clickhouse_leaves_the_others_clickhouse_rows_on_the_page():
    query = {"query": "q", "rows": 1, "duckdb_p50_ms": 1, "duckdb_p95_ms": 1, "duckdb_file_open_p50_ms": 1, "postgres_p50_ms": 1}
    query |= {"postgres_p95_ms": 1, "speedup": 1, "file_open_speedup": 1, "same_rows": True}
    base = {"orders": 1, "geomean_speedup": 1, "geomean_file_open_speedup": 1, "duckdb_worst_p95_ms": 1, "postgres_worst_p95_ms": 1}
    base |= {"connection_cost": {"provider": {"p50_ms": 0.1}, "file_open": {"p50_ms": 9}}, "all_rows_equal": True}
    ch = {
        "clickhouse_geomean_speedup": 3.0,
        "duckdb_vs_clickhouse_geomean": 1.5,
        "clickhouse_worst_p95_ms": 20.0,
        "clickhouse_rows_equal": True,
    }
    with_ch = {
        **base,
        **ch,
        "scale": 10.0,
        "queries": [{**query, "clickhouse_p50_ms": 2, "clickhouse_p95_ms": 3, "clickhouse_same_rows": True}],
    }
    page = benchmark.render_report([with_ch, {**base, "scale": 100.0, "queries": [query]}], "plot.png", "cmd")
    assert "| 10 | 3.0x | 1.5 | 20.0 ms | yes |" in page
    assert "| 100 | not measured (run without clickhouse among --engines) | | | |" in page

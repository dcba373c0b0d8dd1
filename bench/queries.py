"""`python -m bench.queries` (queries, report): the DuckDB warehouse against a PostgreSQL-only warehouse, on the same
star schema, marts and dashboard chart queries.

The PostgreSQL side is the single-database alternative the design rejected: the published
warehouse's dimensions, facts and marts copied into a PostgreSQL schema, with primary keys on
every grain, indexes on the join and filter columns, and ANALYZE. Every semantic chart of the
dashboard specs compiles to one SQL statement that runs unchanged on both engines (the
compiler emits portable SQL); each runs warm, several times, on each engine, and both engines
must return the same rows.
"""

from __future__ import annotations

import csv
import math
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import click
import duckdb
import psycopg
from psycopg import sql as pgsql

from olist_bi.engines.duckdb import warehouse as provider
from olist_bi.dashboards import dashboards
from olist_bi.etl.transform import models
from olist_bi.runtime import output
from olist_bi.runtime.output import emit
from olist_bi.semantic.compiler import compile_query
from olist_bi.settings import Settings

SCHEMA = "olist_warehouse"  # default schema of the PostgreSQL copy
TYPES = {
    "VARCHAR": "text",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "DOUBLE": "double precision",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
}
INDEXES = {
    "fact_order_items": ["order_id", "category_key", "seller_id", "purchase_date"],
    "fact_payments": ["order_id", "purchase_date"],
    "fact_reviews": ["order_id"],
    "fact_deliveries": ["purchase_date", "customer_state", "customer_unique_id"],
}


def _pg_type(duck_type: str) -> str:
    if duck_type.startswith("DECIMAL"):
        return duck_type.replace("DECIMAL", "numeric")
    return TYPES.get(duck_type, "text")


def signature(warehouse: Path) -> str:
    """What identifies a published warehouse file: its path, size and modification time."""
    stat = warehouse.stat()
    return f"{warehouse.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def loaded_signature(pg_url: str, schema: str) -> str | None:
    """The signature of the warehouse last copied into `schema`, as recorded there."""
    with psycopg.connect(pg_url) as pg:
        try:
            return pg.execute(pgsql.SQL("select signature from {}.loaded_from").format(pgsql.Identifier(schema))).fetchone()[0]
        except psycopg.errors.UndefinedTable:
            return None


def load_postgres(warehouse: Path, pg_url: str, say=print, schema: str = SCHEMA) -> dict[str, int]:
    """Copy the published dims, facts and marts into `schema`; return row counts. The schema
    records which warehouse it holds (`loaded_from`), so a stale copy is never measured."""
    tables = [m for m in models() if m.layer in ("dims", "facts", "marts")]
    counts = {}
    with duckdb.connect(str(warehouse), read_only=True) as duck, psycopg.connect(pg_url, autocommit=True) as pg:
        pg.execute(pgsql.SQL("drop schema if exists {} cascade").format(pgsql.Identifier(schema)))
        pg.execute(pgsql.SQL("create schema {}").format(pgsql.Identifier(schema)))
        with tempfile.TemporaryDirectory() as tmp:
            for model in tables:
                columns = duck.execute(f"describe {model.name}").fetchall()
                ddl = ", ".join(f"{name} {_pg_type(kind)}" for name, kind, *_ in columns)
                pg.execute(f"create table {schema}.{model.name} ({ddl})")
                path = Path(tmp) / f"{model.name}.csv"
                duck.execute(f"copy {model.name} to '{path}' (header false, delimiter ',', quote '\"', null '')")
                with pg.cursor().copy(f"copy {schema}.{model.name} from stdin with (format csv, null '')") as copy, path.open("rb") as f:
                    while chunk := f.read(1 << 20):
                        copy.write(chunk)
                if model.grain:
                    pg.execute(f"alter table {schema}.{model.name} add primary key ({', '.join(model.grain)})")
                for column in INDEXES.get(model.name, []):
                    pg.execute(f"create index on {schema}.{model.name} ({column})")
                counts[model.name] = duck.execute(f"select count(*) from {model.name}").fetchone()[0]
                say(f"  postgres: {model.name} {counts[model.name]:,} rows")
        pg.execute("analyze")
        pg.execute(pgsql.SQL("create table {}.loaded_from (signature text)").format(pgsql.Identifier(schema)))
        pg.execute(pgsql.SQL("insert into {}.loaded_from values (%s)").format(pgsql.Identifier(schema)), (signature(warehouse),))
    return counts


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile by nearest rank (the benchmarks' p95)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


@dataclass
class QueryResult:
    name: str
    duckdb_ms: list[float] = field(default_factory=list)  # through the connection provider, as the BI tools now connect
    duckdb_file_open_ms: list[float] = field(default_factory=list)  # reference: a new connection (file open) per query
    postgres_ms: list[float] = field(default_factory=list)
    clickhouse_ms: list[float] = field(default_factory=list)  # with --engines ...,clickhouse: embedded chdb, in-process
    rows: int = 0
    same_rows: bool = False
    clickhouse_same_rows: bool | None = None

    def summary(self) -> dict:
        d50, p50 = statistics.median(self.duckdb_ms), statistics.median(self.postgres_ms)
        open50 = statistics.median(self.duckdb_file_open_ms)
        return {
            "query": self.name,
            "rows": self.rows,
            "same_rows": self.same_rows,
            "duckdb_p50_ms": round(d50, 2),
            "duckdb_p95_ms": round(percentile(self.duckdb_ms, 95), 2),
            "postgres_p50_ms": round(p50, 2),
            "postgres_p95_ms": round(percentile(self.postgres_ms, 95), 2),
            "speedup": round(p50 / d50, 2),
            "duckdb_file_open_p50_ms": round(open50, 2),
            "file_open_speedup": round(p50 / open50, 2),
            **(self._clickhouse() if self.clickhouse_ms else {}),
        }

    def _clickhouse(self) -> dict:
        c50 = statistics.median(self.clickhouse_ms)
        return {
            "clickhouse_p50_ms": round(c50, 2),
            "clickhouse_p95_ms": round(percentile(self.clickhouse_ms, 95), 2),
            "clickhouse_speedup": round(statistics.median(self.postgres_ms) / c50, 2),
            "clickhouse_same_rows": self.clickhouse_same_rows,
        }


def dashboard_queries() -> list[tuple[str, str, list]]:
    """(name, SQL, parameters) of every semantic chart of the dashboards."""
    found = []
    for dashboard in dashboards():
        for chart in dashboard.charts:
            if chart.is_semantic:
                compiled = compile_query(chart.query())
                found.append((f"{dashboard.slug}/{chart.key}", compiled.sql, compiled.params))
    return found


def _sort_key(row: tuple) -> str:
    """Orders rows the same way on both engines: numbers to 4 significant digits."""
    return repr(tuple(f"{float(v):.4g}" if isinstance(v, (float, Decimal)) else v for v in row))


def same_rows(left: list[tuple], right: list[tuple], rel: float = 1e-9) -> bool:
    """The same rows, in any order; numbers equal to a relative 1e-9 (the engines sum floats
    in different orders, so the last digits of an average may differ)."""
    if len(left) != len(right):
        return False
    for a, b in zip(sorted(left, key=_sort_key), sorted(right, key=_sort_key)):
        if len(a) != len(b):
            return False
        for x, y in zip(a, b):
            if isinstance(x, (float, Decimal)) or isinstance(y, (float, Decimal)):
                if x is None or y is None:
                    if x is not y:
                        return False
                elif not math.isclose(float(x), float(y), rel_tol=rel, abs_tol=1e-12):
                    return False
            elif x != y:
                return False
    return True


def run_queries(warehouse: Path, pg_url: str, repeat: int = 5, say=print, schema: str = SCHEMA, clickhouse=None) -> list[QueryResult]:
    """Every dashboard query, timed on DuckDB and PostgreSQL (and on ClickHouse when
    `clickhouse`, a function of (sql, params) to rows, is given); rows compared with DuckDB's."""
    if loaded_signature(pg_url, schema) != signature(warehouse):
        raise RuntimeError(f"PostgreSQL schema {schema} does not hold a copy of {warehouse}: load it first")
    results = []
    with psycopg.connect(pg_url, autocommit=True) as pg:
        pg.execute(pgsql.SQL("set search_path = {}").format(pgsql.Identifier(schema)))
        for name, sql, params in dashboard_queries():
            pg_sql = sql.replace("?", "%s")
            result = QueryResult(name)
            duck_rows = _run_duckdb(warehouse, sql, params)  # warm
            pg_rows = pg.execute(pg_sql, params).fetchall()  # warm
            ch_rows = clickhouse(sql, params) if clickhouse else None  # warm (and transpiled once)
            for _ in range(repeat):
                began = time.perf_counter()
                _run_duckdb(warehouse, sql, params)
                result.duckdb_ms.append((time.perf_counter() - began) * 1000)
                began = time.perf_counter()
                _run_duckdb_file_open(warehouse, sql, params)
                result.duckdb_file_open_ms.append((time.perf_counter() - began) * 1000)
                began = time.perf_counter()
                pg.execute(pg_sql, params).fetchall()
                result.postgres_ms.append((time.perf_counter() - began) * 1000)
                if clickhouse:
                    began = time.perf_counter()
                    clickhouse(sql, params)
                    result.clickhouse_ms.append((time.perf_counter() - began) * 1000)
            result.rows = len(duck_rows)
            result.same_rows = same_rows(duck_rows, pg_rows)
            if clickhouse:
                result.clickhouse_same_rows = same_rows(duck_rows, ch_rows)
            results.append(result)
            s = result.summary()
            say(
                f"  {name:<48} duckdb p50 {s['duckdb_p50_ms']:>8.1f} ms (file open per query {s['duckdb_file_open_p50_ms']:>7.1f})  "
                f"postgres p50 {s['postgres_p50_ms']:>8.1f} ms  x{s['speedup']:<7} {'same rows' if result.same_rows else 'ROWS DIFFER'}"
                + (
                    f"  clickhouse p50 {s['clickhouse_p50_ms']:>8.1f} ms {'same rows' if result.clickhouse_same_rows else 'ROWS DIFFER'}"
                    if clickhouse
                    else ""
                )
            )
    return results


def _run_duckdb(warehouse: Path, sql: str, params: list) -> list[tuple]:
    # As the BI tools run it: a cursor leased from the process's open, locked-down database.
    with provider.connect(warehouse) as con:
        return con.execute(sql, params).fetchall()


def _run_duckdb_file_open(warehouse: Path, sql: str, params: list) -> list[tuple]:
    # The reference, as the BI tools ran it before the provider: a new read-only, locked-down
    # connection per query. By the served link's name, which the provider never opens (it
    # opens generations by their own), so this really opens the file every time.
    with duckdb.connect(str(warehouse), read_only=True, config={**provider.LOCKDOWN, **provider.DEFAULT_LIMITS}) as con:
        return con.execute(sql, params).fetchall()


def timed(call, repeat: int) -> list[float]:
    """`call()` timed `repeat` times, in milliseconds."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return times


def connection_cost(warehouse: Path, repeat: int = 200) -> dict:
    """What getting a connection costs, p50 and p95 in ms: a lease from the provider, and
    opening the file (the reference); each closed again, no query."""

    def lease():
        provider.lease(warehouse).release()

    def file_open():
        duckdb.connect(str(warehouse), read_only=True, config={**provider.LOCKDOWN, **provider.DEFAULT_LIMITS}).close()

    out = {}
    for name, call in (("provider", lease), ("file_open", file_open)):
        call()  # warm
        times = timed(call, repeat)
        out[name] = {"p50_ms": round(statistics.median(times), 3), "p95_ms": round(percentile(times, 95), 3)}
    return out


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def write_csv(results: list[dict], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(results[0]))
        writer.writeheader()
        writer.writerows(results)


def seed42_drop(folder: Path, scale: float, say=print) -> Path:
    """The benchmarks' drop of a scale (seed 42) in `folder`, generated the first time only."""
    from olist_bi.generator import generate

    if not (folder / "olist_orders_dataset.csv").exists():
        say(f"generating the scale-{scale:g} drop ...")
        generate(folder, scale, 42)
    return folder


def clickhouse_copy(bench_settings, drop: Path, database: str, say=print):
    """The bench warehouse built on ClickHouse as an ETL run with OLIST_WAREHOUSE_ENGINE=clickhouse
    builds it: the same drop validated and handed over as Parquet, every model built in
    ClickHouse (once; a later call reuses it). On the ClickHouse of OLIST_CLICKHOUSE_URL, or
    by default embedded chdb in `$OLIST_HOME/bench/clickhouse`, in `database`; returns a
    function of (sql, params) to rows."""
    import os

    from olist_bi.engines.clickhouse import warehouse as clickhouse
    from olist_bi.etl import pipeline

    env = {
        **os.environ,
        "OLIST_HOME": str(bench_settings.home.parent / "home-clickhouse"),
        "OLIST_DATABASE_URL": bench_settings.database_url,
        "OLIST_WAREHOUSE_ENGINE": "clickhouse",
        "OLIST_CLICKHOUSE_DATABASE": database,
        # chdb opens one folder per process: every scale's database in the one folder of the benchmark
        "OLIST_CLICKHOUSE_URL": os.environ.get("OLIST_CLICKHOUSE_URL") or f"chdb://{bench_settings.home.parent.parent / 'clickhouse'}",
    }
    settings = Settings.from_env(env)
    try:
        clickhouse.query(settings, "select count() from fact_deliveries")
    except Exception:  # noqa: BLE001 - nothing served there yet, whatever the engine says
        say(f"building the warehouse on ClickHouse ({settings.clickhouse_url}) ...")
        pipeline.run(settings, drop)
    return lambda sql, params: clickhouse.query(settings, sql, params)


def queries_at_scale(settings, scale: float, repeat: int, say=print, engines: tuple[str, ...] = ("duckdb", "postgres")) -> dict:
    """Build (once) the drop, the warehouse and its PostgreSQL copy for a scale (and, with
    clickhouse among `engines`, its ClickHouse copy), then run and compare every dashboard
    query. Returns the JSON-ready report."""
    import os

    from olist_bi.etl import pipeline
    from olist_bi.operations.postgres import database_url, embedded, ensure_database, with_database
    from olist_bi.settings import Settings

    root = settings.home / "bench" / f"scale{scale:g}"
    drop = seed42_drop(root / "drop", scale, say)
    ops = database_url(settings)
    bench_settings = Settings.from_env({**os.environ, "OLIST_HOME": str(root / "home"), "OLIST_DATABASE_URL": ops})
    if not bench_settings.warehouse_path.exists():
        say("building the DuckDB warehouse ...")
        pipeline.run(bench_settings, drop)
    # The PostgreSQL copy is the benchmark's own database: on the demo's embedded server the
    # superuser makes and fills it (the platform's login may create no database).
    owner = embedded(settings).url if settings.uses_embedded_postgres else ops
    pg_url = with_database(owner, "olist_bench")
    ensure_database(with_database(owner, "postgres"), "olist_bench")
    schema = f"olist_warehouse_scale_{scale:g}".replace(".", "_")
    if loaded_signature(pg_url, schema) != signature(bench_settings.warehouse_path):
        say("loading the star schema and marts into PostgreSQL ...")
        load_postgres(bench_settings.warehouse_path, pg_url, say, schema)
    clickhouse = None
    if "clickhouse" in engines:
        clickhouse = clickhouse_copy(bench_settings, drop, schema.replace("olist_warehouse", "olist_bench"), say)
    results = [r.summary() for r in run_queries(bench_settings.warehouse_path, pg_url, repeat, say, schema, clickhouse)]
    with provider.connect(bench_settings.warehouse_path) as con:
        orders = con.execute("select count(*) from fact_deliveries").fetchone()[0]
    cost = connection_cost(bench_settings.warehouse_path)
    return {
        "scale": scale,
        "machine": machine_facts(pg_url),
        "orders": orders,
        "repeat": repeat,
        "geomean_speedup": round(geomean([r["speedup"] for r in results]), 2),
        "geomean_file_open_speedup": round(geomean([r["file_open_speedup"] for r in results]), 2),
        "connection_cost": cost,
        "duckdb_worst_p95_ms": max(r["duckdb_p95_ms"] for r in results),
        "postgres_worst_p95_ms": max(r["postgres_p95_ms"] for r in results),
        "all_rows_equal": all(r["same_rows"] for r in results),
        **(
            {
                "clickhouse_geomean_speedup": round(geomean([r["clickhouse_speedup"] for r in results]), 2),
                "duckdb_vs_clickhouse_geomean": round(geomean([r["clickhouse_p50_ms"] / r["duckdb_p50_ms"] for r in results]), 2),
                "clickhouse_worst_p95_ms": max(r["clickhouse_p95_ms"] for r in results),
                "clickhouse_rows_equal": all(r["clickhouse_same_rows"] for r in results),
            }
            if clickhouse
            else {}
        ),
        "queries": results,
    }


def plot(reports: list[dict], path: Path) -> None:
    """A PNG of query latency (p50 per query, median and range) by scale for both engines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scales = [r["scale"] for r in reports]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for engine, color in (("duckdb", "#1f77b4"), ("postgres", "#d62728")):
        medians = [statistics.median(q[f"{engine}_p50_ms"] for q in r["queries"]) for r in reports]
        lows = [min(q[f"{engine}_p50_ms"] for q in r["queries"]) for r in reports]
        highs = [max(q[f"{engine}_p95_ms"] for q in r["queries"]) for r in reports]
        label = "DuckDB (connection provider, as the BI tools)" if engine == "duckdb" else "PostgreSQL (indexes, ANALYZE)"
        ax.plot(scales, medians, marker="o", color=color, label=f"{label}: median of p50")
        ax.fill_between(scales, lows, highs, color=color, alpha=0.15, label=f"{label}: fastest p50 to slowest p95")
    measured = [r for r in reports if "clickhouse_p50_ms" in r["queries"][0]]  # the scales ClickHouse ran at
    if measured:
        medians = [statistics.median(q["clickhouse_p50_ms"] for q in r["queries"]) for r in measured]
        ax.plot(
            [r["scale"] for r in measured],
            medians,
            marker="^",
            color="#2ca02c",
            label="ClickHouse (embedded chdb, in-process): median of p50",
        )
    opened = [statistics.median(q["duckdb_file_open_p50_ms"] for q in r["queries"]) for r in reports]
    ax.plot(scales, opened, marker="s", linestyle="--", color="#1f77b4", label="DuckDB (reference: file opened per query): median of p50")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(scales, [f"{s:g}" for s in scales])
    ax.set_xlabel("scale factor (1 = the real data set, 99,441 orders)")
    ax.set_ylabel("dashboard query latency (ms, log)")
    ax.set_title("Dashboard chart queries: DuckDB vs PostgreSQL")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def machine_facts(pg_url: str) -> dict:
    import os
    import platform as stdlib_platform

    with psycopg.connect(pg_url) as conn:
        pg_version = conn.execute("show server_version").fetchone()[0]
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(memory_gb, 1),
        "machine": stdlib_platform.machine(),
        "python": stdlib_platform.python_version(),
        "duckdb": duckdb.__version__,
        "postgresql": pg_version,
    }


def _targets(reports: list[dict]) -> list[str]:
    """The Targets table's rows: each target of a scale the reports hold, met or missed."""
    targets = {1.0: 10, 10.0: 30}
    lines = []
    for r in reports:
        if r["scale"] in targets:
            goal = targets[r["scale"]]
            lines.append(
                f"| DuckDB at least {goal}x faster (geomean, as the BI tools connect) at scale {r['scale']:g} | "
                f"{r['geomean_speedup']}x | {'met' if r['geomean_speedup'] >= goal else 'missed'} |"
            )
            cost = r["connection_cost"]["provider"]["p50_ms"]
            lines.append(
                f"| connection cost per query, p50, at most 1 ms (scale {r['scale']:g}) | {cost} ms | {'met' if cost <= 1 else 'missed'} |"
            )
        if r["scale"] == 10.0:
            lines.append(
                "| DuckDB p95 at most 100 ms per dashboard query at scale 10 | "
                f"worst {r['duckdb_worst_p95_ms']} ms | {'met' if r['duckdb_worst_p95_ms'] <= 100 else 'missed'} |"
            )
        if r["scale"] == 100.0:
            for engine, key in (("DuckDB", "duckdb_worst_p95_ms"), ("ClickHouse (embedded)", "clickhouse_worst_p95_ms")):
                if key in r:
                    lines.append(
                        f"| {engine} p95 at most 1 s per dashboard query at scale 100 | "
                        f"worst {r[key]} ms | {'met' if r[key] <= 1000 else 'missed'} |"
                    )
    return lines


def render_report(reports: list[dict], plot_name: str, command: str) -> str:
    """BENCHMARKS.md from the reports of `queries_at_scale`."""
    facts = reports[0].get("machine", {})
    lines = [
        "# Benchmarks: DuckDB against a PostgreSQL-only warehouse",
        "",
        "The design chose DuckDB for analytics and PostgreSQL for operations, expecting dashboard",
        "queries 10 to 50 times faster than with the warehouse in PostgreSQL. This page measures it.",
        "",
        f"Command: `{command}` (written by it; `make bench` runs it with the other benchmarks of",
        "`docs/benchmarks.md`: generator, ETL, semantic layer, Superset renders).",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()),
        "",
        "How it runs: for each scale, a drop generated with seed 42 is loaded by the ETL; the",
        "published dims, facts and marts are copied into PostgreSQL (primary keys on every grain,",
        "indexes on join and filter columns, ANALYZE). Every semantic chart of the six dashboards",
        "compiles to one SQL statement that runs unchanged on both engines. Each query runs once to",
        "warm up, then the given number of times on each engine, alternating. DuckDB runs as the BI",
        "tools now connect: a cursor leased from the process's connection provider, which keeps one",
        "open, read-only, locked-down database per published generation (docs/serving.md);",
        "PostgreSQL keeps one connection. For reference DuckDB is also timed opening the file per",
        'query ("file open" columns), as the BI tools connected before the provider. Both engines',
        "must return the same rows (numbers equal to a relative 1e-9).",
        "",
        f"![latency by scale]({plot_name})",
        "",
        "| scale | orders | queries | geomean speed-up (PostgreSQL p50 / DuckDB p50) | reference: file opened per query "
        "| connection p50: provider / file open | DuckDB worst p95 | PostgreSQL worst p95 | same rows |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        cost = r["connection_cost"]
        lines.append(
            f"| {r['scale']:g} | {r['orders']:,} | {len(r['queries'])} | {r['geomean_speedup']}x | {r['geomean_file_open_speedup']}x | "
            f"{cost['provider']['p50_ms']} ms / {cost['file_open']['p50_ms']} ms | "
            f"{r['duckdb_worst_p95_ms']} ms | {r['postgres_worst_p95_ms']} ms | {'yes' if r['all_rows_equal'] else 'NO'} |"
        )
    if any("clickhouse_geomean_speedup" in r for r in reports):
        lines += [
            "",
            "## ClickHouse beside them (`--engines duckdb,postgres,clickhouse`)",
            "",
            "The same warehouse built on embedded ClickHouse (chdb 4.4, ClickHouse 26.9, in the benchmark's",
            "process) as an ETL run with `OLIST_WAREHOUSE_ENGINE=clickhouse` builds it, the same queries",
            "transpiled (docs/clickhouse.md), timed in turn with the other two; rows compared with DuckDB's.",
            "",
            "| scale | geomean speed-up over PostgreSQL | ClickHouse p50 / DuckDB p50 (geomean) "
            "| ClickHouse worst p95 | same rows as DuckDB |",
            "|---|---|---|---|---|",
        ]
        for r in reports:
            if "clickhouse_geomean_speedup" not in r:
                lines.append(f"| {r['scale']:g} | not measured (run without clickhouse among --engines) | | | |")
                continue
            lines.append(
                f"| {r['scale']:g} | {r['clickhouse_geomean_speedup']}x | "
                f"{r['duckdb_vs_clickhouse_geomean']} | {r['clickhouse_worst_p95_ms']} ms | "
                f"{'yes' if r['clickhouse_rows_equal'] else 'NO'} |"
            )
    lines += ["", "## Targets", "", "| target | measured | |", "|---|---|---|", *_targets(reports)]
    findings = Path(__file__).with_name("findings.md")
    if findings.exists():
        lines += ["", findings.read_text(encoding="utf-8").strip()]
    for r in reports:
        ch = "clickhouse_p50_ms" in r["queries"][0]
        lines += [
            "",
            f"## Scale {r['scale']:g}",
            "",
            "| query | rows | DuckDB p50 | DuckDB p95 | DuckDB file open p50 | PostgreSQL p50 | PostgreSQL p95 "
            "| speed-up | file-open speed-up | same rows |" + (" ClickHouse p50 | ClickHouse p95 | same rows |" if ch else ""),
            "|---|---|---|---|---|---|---|---|---|---|" + ("---|---|---|" if ch else ""),
        ]
        for q in r["queries"]:
            lines.append(
                f"| {q['query']} | {q['rows']} | {q['duckdb_p50_ms']} | {q['duckdb_p95_ms']} | {q['duckdb_file_open_p50_ms']} | "
                f"{q['postgres_p50_ms']} | "
                f"{q['postgres_p95_ms']} | {q['speedup']}x | {q['file_open_speedup']}x | {'yes' if q['same_rows'] else 'NO'} |"
                + (f" {q['clickhouse_p50_ms']} | {q['clickhouse_p95_ms']} | {'yes' if q['clickhouse_same_rows'] else 'NO'} |" if ch else "")
            )
    return "\n".join(lines) + "\n"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """The query benchmark: the DuckDB warehouse against a PostgreSQL-only warehouse (BENCHMARKS.md)."""


# Both commands: which engines to time (DuckDB and PostgreSQL always; embedded ClickHouse on request).
ENGINES = click.option(
    "--engines",
    default="duckdb,postgres",
    show_default=True,
    callback=lambda ctx, param, value: _engines(value),
    help="duckdb,postgres, or duckdb,postgres,clickhouse to time embedded ClickHouse beside them.",
)


@main.command(name="queries")
@click.option("--scale", type=float, default=1.0, show_default=True, help="Scale of the generated drop (seed 42).")
@click.option("--repeat", type=click.IntRange(1, 1000), default=5, show_default=True, help="Warm repetitions per query and engine.")
@ENGINES
@output.option
def bench_queries(scale: float, repeat: int, engines: tuple[str, ...], fmt: str) -> None:
    """Run every dashboard chart query of the semantic layer on DuckDB and on the same star
    schema and marts loaded into PostgreSQL (indexes, ANALYZE); report p50 and p95 per query,
    the speed-up and its geometric mean, and check both engines return the same rows. The
    drop, warehouse and PostgreSQL copy are built under $OLIST_HOME/bench/ once per scale."""
    settings = Settings.from_env()
    report = queries_at_scale(settings, scale, repeat, lambda m: click.echo(m, err=True), engines)

    def table() -> None:
        click.echo(
            f"scale {scale:g}: {len(report['queries'])} queries, geometric mean speed-up {report['geomean_speedup']}x "
            f"(as the BI tools connect; {report['geomean_file_open_speedup']}x opening the file per query), "
            f"connection p50 {report['connection_cost']['provider']['p50_ms']} ms "
            f"(file open {report['connection_cost']['file_open']['p50_ms']} ms), "
            f"DuckDB worst p95 {report['duckdb_worst_p95_ms']} ms, all rows equal: {report['all_rows_equal']}"
        )
        if "clickhouse" in engines:
            click.echo(
                f"ClickHouse (embedded): geometric mean speed-up {report['clickhouse_geomean_speedup']}x over PostgreSQL, "
                f"{report['duckdb_vs_clickhouse_geomean']}x DuckDB's p50, worst p95 {report['clickhouse_worst_p95_ms']} ms, "
                f"same rows as DuckDB: {report['clickhouse_rows_equal']}"
            )

    emit(fmt, report["queries"], table, report)


def _engines(value: str) -> tuple[str, ...]:
    engines = tuple(e.strip() for e in value.split(",") if e.strip())
    if set(engines) not in ({"duckdb", "postgres"}, {"duckdb", "postgres", "clickhouse"}):
        raise click.BadParameter("give duckdb,postgres or duckdb,postgres,clickhouse (DuckDB and PostgreSQL are always compared)")
    return engines


@main.command(name="report")
@click.option(
    "--scales", default="0.1,1,10", show_default=True, help="Comma-separated scales to run ('': none, the page from what is kept)."
)
@click.option("--repeat", type=click.IntRange(1, 1000), default=5, show_default=True, help="Warm repetitions per query and engine.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("BENCHMARKS.md"),
    show_default=True,
    help="The report to write; the plot goes beside it.",
)
@click.option(
    "--results",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("docs/results"),
    show_default=True,
    help="Where each scale's report is kept (queries-scale<S>.json); the page shows every scale kept there.",
)
@ENGINES
@output.option
def bench_report(scales: str, repeat: int, out: Path, results: Path, engines: tuple[str, ...], fmt: str) -> None:
    """Run `queries` at each scale and write BENCHMARKS.md: machine facts, the command,
    a table per scale and a PNG plot of latency by scale for both engines. Each scale's
    report is kept in `--results`, so a later run of one scale (100 takes hours) leaves the
    others on the page as they were measured."""
    import json

    settings = Settings.from_env()
    results.mkdir(parents=True, exist_ok=True)
    for scale in [float(s) for s in scales.split(",") if s.strip()]:  # none: only the page, from what is kept
        click.echo(f"scale {scale:g} ...", err=True)
        report = queries_at_scale(settings, scale, repeat, lambda m: click.echo(m, err=True), engines)
        (results / f"queries-scale{scale:g}.json").write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    kept = [json.loads(p.read_text(encoding="utf-8")) for p in results.glob("queries-scale*.json")]
    reports = sorted(kept, key=lambda r: r["scale"])
    shown = ",".join(f"{r['scale']:g}" for r in reports)
    png = out.with_name("benchmarks-latency.png")
    plot(reports, png)
    out.write_text(
        render_report(
            reports,
            png.name,
            f"python -m bench.queries report --scales {shown} --repeat {repeat}"
            + (f" --engines {','.join(engines)}" if "clickhouse" in engines else ""),
        ),
        encoding="utf-8",
    )
    rows = [
        {"scale": r["scale"], "geomean_speedup": r["geomean_speedup"], "duckdb_worst_p95_ms": r["duckdb_worst_p95_ms"]} for r in reports
    ]

    def table() -> None:
        for r in rows:
            click.echo(
                f"scale {r['scale']:g}: geometric mean speed-up {r['geomean_speedup']}x, DuckDB worst p95 {r['duckdb_worst_p95_ms']} ms"
            )
        click.echo(f"wrote {out} and {png}")

    emit(fmt, rows, table, {"scales": rows, "wrote": [str(out), str(png)]})


if __name__ == "__main__":
    main()

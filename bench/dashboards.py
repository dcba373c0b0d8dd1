"""Benchmark: Superset dashboard chart queries and full renders, at one scale.

Targets (issue: Superset): at scale 1, each dashboard chart query at most 100 ms at the 95th
percentile, and each dashboard fully rendered in headless Chromium within 5 s. For each
chart: the SQL Superset generates for it (taken from its chart data answer), run on the
warehouse as Superset runs it (the query), and the whole chart data API round trip with
force=true, no cache (Superset's own work included). Renders are timed from navigation until
every chart is drawn, warm (each dashboard opened once before). Screenshots of each dashboard go to docs/screenshots/.

    .venv/bin/python bench/dashboards.py [--scale 1] [--repeat 20] [--json] [--no-screenshots]

Starts its own Superset (port 8097) with a temporary OLIST_HOME and a metadata database
`olist_bench_superset` on the operations server; uses OLIST_DATABASE_URL or the embedded
PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

from olist_bi.benchmark import percentile, seed42_drop
from olist_bi.dashboards import dashboards
from olist_bi.etl import pipeline
from olist_bi.postgres import database_url, ensure_database, with_database
from olist_bi.settings import Settings
from olist_bi.superset import provision, server
from olist_bi.superset.browser import Browser
from olist_bi.superset.client import SupersetClient

ROOT = Path(__file__).resolve().parents[1]


def _sql_times(settings: Settings, key: str, sql: str, repeat: int) -> list[float]:
    """The chart's own SQL (as Superset generated it) on the warehouse, opened as Superset
    opens it: read-only, locked down, a new connection per query."""
    if key.startswith("platform-health/"):
        return []  # the operations store, PostgreSQL
    from olist_bi.semantic import query

    times = []
    for _ in range(repeat + 1):
        began = time.perf_counter()
        with query.connect(settings.warehouse_path) as con:
            con.execute(sql).fetchall()
        times.append((time.perf_counter() - began) * 1000)
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-screenshots", action="store_true")
    args = parser.parse_args()

    drop = seed42_drop(ROOT / "bench" / "data" / f"scale{args.scale:g}-seed42", args.scale)
    home = Path(tempfile.mkdtemp(prefix="olist-bench-dashboards-"))
    base = Settings.from_env({**os.environ, "OLIST_HOME": str(home)})
    ops = database_url(base)
    ensure_database(with_database(ops, "postgres"), "olist_bench_superset")
    settings = Settings.from_env(
        {
            **os.environ,
            "OLIST_HOME": str(home),
            "OLIST_DATABASE_URL": ops,
            "OLIST_SUPERSET_PORT": "8097",
            "OLIST_SUPERSET_DATABASE_URL": with_database(ops, "olist_bench_superset"),
        }
    )
    pipeline.run(settings, drop)
    server.serve(settings, say=lambda m: None)
    try:
        provision.provision(settings, say=lambda m: None)
        client = SupersetClient(settings.superset_base_url, server.ADMIN_USER, server.admin_password(settings))
        queries = []
        for key, chart_id in provision.chart_ids(client).items():
            path = f"/api/v1/chart/{chart_id}/data/"
            answer = client.get(path, format="json", type="full", force="true")["result"][0]  # warm
            times = []
            for _ in range(args.repeat):
                began = time.perf_counter()
                client.get(path, format="json", type="full", force="true")
                times.append((time.perf_counter() - began) * 1000)
            sql_times = _sql_times(settings, key, answer["query"], args.repeat)
            queries.append(
                {
                    "chart": key,
                    "sql_p50_ms": round(statistics.median(sql_times), 1) if sql_times else None,
                    "sql_p95_ms": round(percentile(sql_times, 95), 1) if sql_times else None,
                    "api_p50_ms": round(statistics.median(times), 1),
                    "api_p95_ms": round(percentile(times, 95), 1),
                }
            )
            if not args.json:
                q = queries[-1]
                sql = f"sql p95 {q['sql_p95_ms']:>6.1f} ms" if sql_times else "sql (operations store)"
                print(f"{key:<48} {sql}  api p50 {q['api_p50_ms']:>6.1f} ms  p95 {q['api_p95_ms']:>6.1f} ms", flush=True)
        renders = []
        with Browser(settings.superset_base_url, server.ADMIN_USER, server.admin_password(settings)) as browser:
            for dashboard in dashboards():
                browser.render(dashboard.slug, len(dashboard.charts))  # warm
                shot = None if args.no_screenshots else ROOT / "docs" / "screenshots" / f"{dashboard.slug}.png"
                rendered = browser.render(dashboard.slug, len(dashboard.charts), shot)
                renders.append({"dashboard": dashboard.slug, "seconds": round(rendered.seconds, 2), "charts": rendered.charts, "errors": rendered.errors})
                if not args.json:
                    print(f"render {dashboard.slug:<30} {rendered.seconds:5.2f} s  {rendered.charts} charts, {rendered.errors} errors", flush=True)
    finally:
        server.stop(settings)
        with psycopg.connect(with_database(ops, "postgres"), autocommit=True) as conn:
            conn.execute("drop database if exists olist_bench_superset with (force)")
    warehouse_queries = [q for q in queries if q["sql_p95_ms"] is not None]
    worst_query = max(warehouse_queries, key=lambda q: q["sql_p95_ms"])
    worst_api = max(queries, key=lambda q: q["api_p95_ms"])
    worst_render = max(renders, key=lambda r: r["seconds"])
    summary = {
        "scale": args.scale,
        "worst_chart_sql_p95_ms": worst_query["sql_p95_ms"],
        "worst_chart_sql": worst_query["chart"],
        "worst_chart_api_p95_ms": worst_api["api_p95_ms"],
        "worst_chart_api": worst_api["chart"],
        "worst_render_s": worst_render["seconds"],
        "worst_render": worst_render["dashboard"],
        "meets_targets": worst_query["sql_p95_ms"] <= 100 and worst_render["seconds"] <= 5,
    }
    if args.json:
        print(json.dumps({"summary": summary, "queries": queries, "renders": renders}, indent=2))
    else:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()

"""Benchmark: latency of every metric query of the semantic layer.

Target (issue: semantic layer): every metric query at scale 1 answers in at most 100 ms at
the 95th percentile. Each query runs as the CLI and the BI tools run it: a new read-only,
locked-down connection to the served warehouse, the compiled statement, the rows fetched.
Queries: each metric in total, by month, by customer state, and by its model's own dimension
(product category, payment type, months since first order). Warm: one unmeasured run first.

    .venv/bin/python -m bench.semantic [--scale 1] [--repeat 30] [--json]

Builds the warehouse from the generated drop bench/data/scale<S>-seed42 (generated if
missing) under a temporary OLIST_HOME; uses OLIST_DATABASE_URL or the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.queries import percentile, seed42_drop
from olist_bi.etl import pipeline
from olist_bi.semantic import query
from olist_bi.semantic.catalog import load
from olist_bi.semantic.compiler import GroupBy, Query, available, compile_query
from olist_bi.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
OWN_DIMENSION = {"fact_order_items": "product_category", "fact_payments": "payment_type"}


def queries():
    catalog = load()
    for metric in catalog.metrics.values():
        model = catalog.models[metric.model]
        if metric.requires:
            yield f"{metric.name} by {' '.join(metric.requires)}", Query([metric.name], [GroupBy(d) for d in metric.requires])
            yield (
                f"{metric.name} by cohort_month months_since_first",
                Query([metric.name], [GroupBy("cohort_month"), GroupBy("months_since_first")]),
            )
            continue
        yield f"{metric.name}", Query([metric.name])
        yield f"{metric.name} by month", Query([metric.name], [GroupBy("purchase_date", "month")])
        if available(catalog, catalog.dimensions["customer_state"], model):
            yield f"{metric.name} by customer_state", Query([metric.name], [GroupBy("customer_state")])
        if metric.model in OWN_DIMENSION:
            yield f"{metric.name} by {OWN_DIMENSION[metric.model]}", Query([metric.name], [GroupBy(OWN_DIMENSION[metric.model])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    drop = seed42_drop(ROOT / "bench" / "data" / f"scale{args.scale:g}-seed42", args.scale)
    home = Path(tempfile.mkdtemp(prefix="olist-bench-semantic-"))
    settings = Settings.from_env({**os.environ, "OLIST_HOME": str(home)})
    pipeline.run(settings, drop)

    results = []
    for name, q in queries():
        compiled = compile_query(q)
        query.run(compiled, settings.warehouse_path)  # warm
        times = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            rows = query.run(compiled, settings.warehouse_path)
            times.append((time.perf_counter() - began) * 1000)
        results.append(
            {"query": name, "rows": len(rows), "p50_ms": round(statistics.median(times), 1), "p95_ms": round(percentile(times, 95), 1)}
        )
        if not args.json:
            print(f"{name:<52} {len(rows):>6} rows  p50 {results[-1]['p50_ms']:>6.1f} ms  p95 {results[-1]['p95_ms']:>6.1f} ms", flush=True)
    worst = max(results, key=lambda r: r["p95_ms"])
    summary = {
        "scale": args.scale,
        "queries": len(results),
        "worst_p95_ms": worst["p95_ms"],
        "worst_query": worst["query"],
        "meets_100ms": worst["p95_ms"] <= 100,
    }
    if args.json:
        print(json.dumps({"summary": summary, "results": results}, indent=2))
    else:
        print(
            f"{len(results)} queries at scale {args.scale:g}: worst p95 {worst['p95_ms']} ms ({worst['query']}); "
            f"target 100 ms {'met' if summary['meets_100ms'] else 'MISSED'}"
        )


if __name__ == "__main__":
    main()

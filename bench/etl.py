"""Benchmark: the ETL at scales 0.1, 1 and 10 against the lower bound of plainly loading the
nine CSVs into DuckDB tables.

Targets (issue: warehouse ETL): scale 1 within 4x of that lower bound; no worse than linear
growth from scale 1 to 10; peak memory at most 4 GB at scale 10. The reader copies
(etl/readers.py; issue: security below the BI tools) within 1.5x of the build without them,
in time (the run against the run less its `readers` stage) and in disk (what a publish keeps:
the warehouse and its KEEP earlier generations, plus the copies, which keep none). Each measurement runs in a
child process so that its peak resident memory is its own. Drops are generated once into
--data (default bench/data) and reused.

    .venv/bin/python -m bench.etl [--scales 0.1 1 10] [--data DIR] [--json]

Uses OLIST_DATABASE_URL, or the embedded PostgreSQL, for the run history.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.queries import seed42_drop
from olist_bi.engines.duckdb import publish

ROOT = Path(__file__).resolve().parents[1]

CHILD_PLAIN = """
import sys, time, duckdb
from olist_bi.contract import load_raw
began = time.perf_counter()
with duckdb.connect(sys.argv[2]) as con:
    con.execute("set threads = 2")
    loaded = load_raw(con, sys.argv[1])
print(time.perf_counter() - began, sum(f.rows for f in loaded))
"""

CHILD_ETL = """
import json, sys, time
from pathlib import Path

from bench.queries import seed42_drop
from olist_bi.engines.duckdb import publish
from olist_bi.etl import pipeline, readers
from olist_bi.settings import Settings
settings = Settings.from_env()
began = time.perf_counter()
result = pipeline.run(settings, Path(sys.argv[1]))
copies = {r.name: publish.current(r.served(settings.warehouse_path)).stat().st_size for r in readers.readers()}
print(json.dumps({"seconds": time.perf_counter() - began, "stages": result.stage_seconds,
                  "rows": sum(result.rows_read.values()), "status": result.status,
                  "warehouse_bytes": publish.current(settings.warehouse_path).stat().st_size, "copy_bytes": copies}))
"""


def child(code: str, args: list[str], env: dict) -> tuple[str, float]:
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, env=env, text=True)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark child failed: {code.splitlines()[1]} {args}")
    return out.strip().splitlines()[-1], usage.ru_maxrss / 1024 / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.1, 1.0, 10.0])
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "data")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    results = []
    for scale in args.scales:
        drop = seed42_drop(args.data / f"scale{scale:g}-seed42", scale, say=lambda m: None)
        work = Path(tempfile.mkdtemp(prefix="olist-bench-etl-"))
        try:
            env = {**os.environ, "OLIST_HOME": str(work / "home")}
            line, _ = child(CHILD_PLAIN, [str(drop), str(work / "plain.duckdb")], env)
            plain_seconds, rows = float(line.split()[0]), int(line.split()[1])
            line, peak = child(CHILD_ETL, [str(drop)], env)
            etl = json.loads(line)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        result = {
            "scale": scale,
            "rows": rows,
            "plain_load_seconds": round(plain_seconds, 2),
            "etl_seconds": round(etl["seconds"], 2),
            "ratio_to_plain_load": round(etl["seconds"] / plain_seconds, 2),
            "rows_per_second": int(rows / etl["seconds"]),
            "stages": etl["stages"],
            "peak_memory_gb": round(peak, 2),
            "readers_seconds": etl["stages"].get("readers", 0.0),
            "readers_time_ratio": round(etl["seconds"] / (etl["seconds"] - etl["stages"].get("readers", 0.0)), 2),
            "warehouse_mb": round(etl["warehouse_bytes"] / 1e6, 1),
            "copies_mb": {name: round(size / 1e6, 1) for name, size in etl["copy_bytes"].items()},
            "readers_disk_ratio": round(1 + sum(etl["copy_bytes"].values()) / ((1 + publish.KEEP) * etl["warehouse_bytes"]), 2),
        }
        results.append(result)
        if not args.json:
            stages = ", ".join(f"{k} {v:.1f} s" for k, v in etl["stages"].items())
            print(
                f"scale {scale:>5g}: {rows:>11,} rows, ETL {result['etl_seconds']:.2f} s ({stages}), "
                f"plain load {result['plain_load_seconds']:.2f} s, ratio {result['ratio_to_plain_load']:.2f}x, "
                f"{result['rows_per_second']:,} rows/s, peak {result['peak_memory_gb']:.2f} GB",
                flush=True,
            )
            print(
                f"             reader copies: {result['readers_seconds']:.1f} s "
                f"({result['readers_time_ratio']:.2f}x the run without them); "
                f"warehouse {result['warehouse_mb']:,.1f} MB, "
                f"copies {', '.join(f'{k} {v:,.1f} MB' for k, v in result['copies_mb'].items())} "
                f"({result['readers_disk_ratio']:.2f}x the disk a publish keeps)",
                flush=True,
            )
    by_scale = {r["scale"]: r for r in results}
    if 1.0 in by_scale and 10.0 in by_scale:
        growth = by_scale[10.0]["etl_seconds"] / by_scale[1.0]["etl_seconds"]
        if not args.json:
            print(f"growth from scale 1 to 10: {growth:.2f}x time for 10x data")
    if args.json:
        print(json.dumps({"cores": os.cpu_count(), "results": results}, indent=2))


if __name__ == "__main__":
    main()

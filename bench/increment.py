"""Benchmark: what a one-month increment costs against a full build of the same warehouse.

At each scale and on each engine (DuckDB; ClickHouse embedded, chdb, in the run's own folder):
the seed-42 drop (bench/data, generated the first time) and its one-month increment of new
orders (from 2018-11-01, generated beside it), each run of the ETL in a child process so that
its peak resident memory is its own:

1. a full build of the base drop, in a fresh OLIST_HOME;
2. the increment, on what that build served (an incremental run: etl/increment.py);

Target (issue 32): the increment's wall time at most a fifth of the full build's. The ETL's
own progress lines stream to stderr while it runs; the table goes to stdout.

    .venv/bin/python -m bench.increment [--scales 1 10] [--engines duckdb clickhouse] [--data DIR] [--json] [--plot PNG]
    .venv/bin/python -m bench.increment --from RESULTS.json ... --plot PNG   # draw saved runs (--json's output)

Uses OLIST_DATABASE_URL, or the embedded PostgreSQL, for the run history.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.queries import seed42_drop

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.2  # an increment costs at most this share of a full build
ENGINES = ("duckdb", "clickhouse")

CHILD = """
import json, sys, time
from pathlib import Path

from olist_bi.etl import pipeline
from olist_bi.settings import Settings
began = time.perf_counter()
result = pipeline.run(Settings.from_env(), Path(sys.argv[1]), progress=lambda m: print(m, file=sys.stderr, flush=True))
print(json.dumps({"seconds": time.perf_counter() - began, "stages": result.stage_seconds, "status": result.status,
                  "rows": sum(result.rows_read.values()), "touched_orders": result.touched_orders,
                  "orders": result.model_rows.get("fact_deliveries")}))
"""


def increment_drop(folder: Path, scale: float, say=print) -> Path:
    """The one-month increment (from 2018-11-01) of the seed-42 drop of `scale`, generated once."""
    from olist_bi.generator import generate

    if not (folder / "olist_orders_dataset.csv").exists():
        say(f"generating the scale-{scale:g} increment ...")
        generate(folder, scale, 42, start_date=dt.date(2018, 11, 1), months=1)
    return folder


def run(drop: Path, env: dict) -> tuple[dict, float]:
    """One ETL run in a child process: its result, and its peak resident memory in GB."""
    process = subprocess.Popen([sys.executable, "-c", CHILD, str(drop)], stdout=subprocess.PIPE, env=env, text=True)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the ETL run over {drop} failed")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024 / 1024


def measure(scale: float, engine: str, base: Path, added: Path, say) -> dict:
    """A full build of `base` and the increment `added` on it, on `engine`, in a fresh home."""
    work = Path(tempfile.mkdtemp(prefix="olist-bench-increment-"))
    try:
        env = {**os.environ, "OLIST_HOME": str(work / "home"), "OLIST_WAREHOUSE_ENGINE": engine}
        if engine == "clickhouse":
            env["OLIST_CLICKHOUSE_URL"] = f"chdb://{work / 'clickhouse'}"
        say(f"scale {scale:g} on {engine}: full build ...")
        full, full_peak = run(base, env)
        say(f"scale {scale:g} on {engine}: one-month increment ...")
        step, step_peak = run(added, env)
        disk = disk_use(work)
    finally:
        _stop_embedded_postgres(env)
        shutil.rmtree(work, ignore_errors=True)
    return {
        "scale": scale,
        "engine": engine,
        "full_seconds": round(full["seconds"], 2),
        "full_peak_gb": round(full_peak, 2),
        "full_stages": full["stages"],
        "increment_seconds": round(step["seconds"], 2),
        "increment_peak_gb": round(step_peak, 2),
        "increment_stages": step["stages"],
        "touched_orders": step["touched_orders"],
        "orders": step["orders"],
        "ratio": round(step["seconds"] / full["seconds"], 3),
        "within_target": step["seconds"] <= TARGET * full["seconds"],
        "disk_gb": disk,
    }


def disk_use(work: Path) -> dict[str, float]:
    """What the home holds after the increment, in GB: on DuckDB the served warehouse file
    (models, raw history, quarantine), every generation kept of it, the reader copy and each
    scoped copy (their served files); on ClickHouse embedded ClickHouse's folder (its
    generations and their raw history)."""

    def gb(paths) -> float:
        return round(sum(p.stat().st_size for p in paths if p.is_file()) / 1e9, 3)

    home, out = work / "home", {}
    if (home / "warehouse.duckdb").exists():  # none on ClickHouse
        out["warehouse"] = gb([(home / "warehouse.duckdb").resolve()])
        out["warehouse_generations"] = gb((home / "warehouse.duckdb.generations").glob("*"))
    for link in sorted(home.glob("warehouse.*.duckdb")):
        out[link.name.removeprefix("warehouse.").removesuffix(".duckdb") + "_copy"] = gb([link.resolve()])
    if (work / "clickhouse").exists():
        out["clickhouse"] = gb((work / "clickhouse").rglob("*"))
    return out


def _stop_embedded_postgres(env: dict) -> None:
    """Without OLIST_DATABASE_URL the runs started the home's embedded PostgreSQL: stopped before
    the home is removed, so that the next home's can take its port."""
    from olist_bi.operations import postgres
    from olist_bi.settings import Settings

    settings = Settings.from_env(env)
    if not settings.database_url:
        postgres.embedded(settings).stop()


def line(result: dict) -> str:
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in result["increment_stages"].items())
    return (
        f"scale {result['scale']:>5g} on {result['engine']}: full build {result['full_seconds']:.1f} s "
        f"(peak {result['full_peak_gb']:.2f} GB); increment {result['increment_seconds']:.1f} s "
        f"(peak {result['increment_peak_gb']:.2f} GB; {stages}), "
        f"{result['touched_orders'] or 0:,} of {result['orders'] or 0:,} orders rebuilt; "
        f"ratio {result['ratio']:.3f} (target at most {TARGET}: {'met' if result['within_target'] else 'NOT met'}); "
        f"disk after it: {', '.join(f'{k} {v:.2f} GB' for k, v in result.get('disk_gb', {}).items())}"
    )


def plot(results: list[dict], path: Path) -> None:
    """A PNG: full build and increment wall time (left) and peak memory (right) against scale,
    one line per engine, each point a measured run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (times, memory) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=110)
    for engine, color in (("duckdb", "#1f77b4"), ("clickhouse", "#2ca02c")):
        runs = sorted((r for r in results if r["engine"] == engine), key=lambda r: r["scale"])
        if not runs:
            continue
        scales = [r["scale"] for r in runs]
        name = "DuckDB" if engine == "duckdb" else "ClickHouse (chdb)"
        times.plot(scales, [r["full_seconds"] for r in runs], marker="o", color=color, label=f"{name}: full build")
        increments = [r["increment_seconds"] for r in runs]
        times.plot(scales, increments, marker="o", linestyle="--", color=color, label=f"{name}: one-month increment")
        memory.plot(scales, [r["full_peak_gb"] for r in runs], marker="o", color=color, label=f"{name}: full build")
        memory.plot(scales, [r["increment_peak_gb"] for r in runs], marker="o", linestyle="--", color=color, label=f"{name}: increment")
    ticks = sorted({r["scale"] for r in results})
    for ax, label in ((times, "wall time (s, log)"), (memory, "peak resident memory (GB)")):
        ax.set_xscale("log")
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_xlabel("scale factor (1 = the real data set's size)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    times.set_yscale("log")
    memory.set_ylim(bottom=0)
    memory.axhline(8, color="#d62728", linewidth=0.8, linestyle=":", label="8 GB (issue 32's target at scale 100)")
    memory.legend(fontsize=7, loc="lower right")
    fig.suptitle("ETL runs against scale (2 cores): a full build and its one-month increment")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "data")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--plot", type=Path, help="draw wall time and peak memory against scale to this PNG")
    parser.add_argument("--from", dest="saved", type=Path, nargs="+", help="results of earlier runs (--json's output): no run, only --plot")
    args = parser.parse_args()
    if args.saved:
        results = [r for path in args.saved for r in json.loads(path.read_text(encoding="utf-8"))["results"]]
        if args.plot:
            plot(results, args.plot)
        for result in results:
            print(line(result))
        return

    say = (lambda m: print(m, file=sys.stderr, flush=True)) if args.json else print
    results = []
    for scale in args.scales:
        base = seed42_drop(args.data / f"scale{scale:g}-seed42", scale, say=say)
        added = increment_drop(args.data / f"scale{scale:g}-seed42-2018-11", scale, say=say)
        for engine in args.engines:
            result = measure(scale, engine, base, added, say)
            results.append(result)
            if not args.json:
                print(line(result), flush=True)
    if args.json:
        print(json.dumps({"cores": os.cpu_count(), "results": results}, indent=2))
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()

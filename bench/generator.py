"""Benchmark: generator wall time and peak memory at scales 1 and 10.

Targets (issue: foundation): scale 1 in at most 30 s, scale 10 in at most 5 minutes, peak
memory at most 2 GB at scale 10, on a 2-core machine. Each scale runs in a child process so
that its peak resident memory is its own.

    .venv/bin/python -m bench.generator [--scales 1 10] [--out DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {1.0: (30.0, None), 10.0: (300.0, 2.0)}  # seconds, peak GB


def run_scale(scale: float, out: Path) -> dict:
    command = [sys.executable, "-m", "olist_bi.cli", "generate", "--scale", str(scale), "--seed", "42", "--out", str(out)]
    began = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - began
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"generate at scale {scale} failed; run it by hand: {' '.join(command)}")
    size = sum(p.stat().st_size for p in out.iterdir())
    return {
        "scale": scale,
        "seconds": round(seconds, 2),
        "peak_memory_gb": round(usage.ru_maxrss / 1024 / 1024, 3),  # ru_maxrss is in KiB on Linux
        "output_gb": round(size / 1e9, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--out", type=Path, default=None, help="keep the files here (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    results = []
    for scale in args.scales:
        folder = (args.out or Path(tempfile.mkdtemp(prefix="olist-bench-"))) / f"scale{scale:g}"
        try:
            result = run_scale(scale, folder)
        finally:
            if args.out is None:
                shutil.rmtree(folder.parent, ignore_errors=True)
        seconds_target, memory_target = TARGETS.get(scale, (None, None))
        result["meets_targets"] = (seconds_target is None or result["seconds"] <= seconds_target) and (
            memory_target is None or result["peak_memory_gb"] <= memory_target
        )
        results.append(result)
        if not args.json:
            print(
                f"scale {scale:>5g}: {result['seconds']:>7.2f} s, peak memory {result['peak_memory_gb']:.2f} GB, "
                f"{result['output_gb']:.2f} GB written, targets {'met' if result['meets_targets'] else 'MISSED'}"
            )
    machine = {"cores": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine()}
    if args.json:
        print(json.dumps({"machine": machine, "results": results}, indent=2))
    else:
        print(f"machine: {machine}")


if __name__ == "__main__":
    main()

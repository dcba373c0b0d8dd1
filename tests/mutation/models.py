"""Mutation testing of what is not Python: plant one small defect at a time in the SQL models,
the quality rules and the semantic layer, run the tests that should notice, and count.

    python -m tests.mutation.models [--limit N] [--seed S] [--json FILE]     (make mutate)

Operators, each applied at one place of one file:
- a boundary shifted (`>=` to `>`, `<=` to `<`, `>` to `>=`, `<` to `<=`) or an equality flipped (`=` to `<>`);
- a condition dropped (the rest of a line after `and` / `or`);
- an aggregate swapped (`sum(` to `max(`, `count(distinct ` to `count(`, `avg(` to `sum(`);
- a column swapped for a sibling of the same type (`customer_city` for `customer_state`, ...).

Every file is restored after each mutant (and on Ctrl-C). A mutant is *caught* when the tests
fail; a defect that no longer builds, or makes the tests run past `--timeout`, is counted
apart (`caught by the build`, `caught by a timeout`), since any run would notice it.
The candidates are all the places an operator applies; `--limit` takes an
evenly spread, seeded sample of them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).parents[2]
MODELS = ROOT / "platform" / "etl" / "models"
SEMANTIC = ROOT / "platform" / "semantic"
RULES = ROOT / "platform" / "etl" / "rules.yaml"

# The tests that should notice a defect in each kind of file: the independent answers.
SUITES = {
    "model": ["tests/etl/test_correctness.py", "tests/semantic", "tests/dashboards/test_specs.py", "tests/metabase/test_assets.py"],
    "semantic": ["tests/semantic", "tests/dashboards/test_specs.py", "tests/metabase/test_assets.py"],
    "rules": ["tests/etl/test_rules.py", "tests/etl/test_quality.py"],
}

SIBLINGS = [
    ("customer_city", "customer_state"),
    ("seller_city", "seller_state"),
    ("order_purchase_timestamp", "order_approved_at"),
    ("order_delivered_customer_date", "order_estimated_delivery_date"),
    ("price", "freight_value"),
    ("review_score", "payment_installments"),
    ("product_category_name", "product_category_name_english"),
]

OPERATORS: list[tuple[str, re.Pattern, str]] = [
    ("boundary >= to >", re.compile(r"(?<=\s)>=(?=\s)"), ">"),
    ("boundary <= to <", re.compile(r"(?<=\s)<=(?=\s)"), "<"),
    ("boundary > to >=", re.compile(r"(?<=\s)>(?=\s)"), ">="),
    ("boundary < to <=", re.compile(r"(?<=\s)<(?=\s)"), "<="),
    ("equality flipped", re.compile(r"(?<=\s)=(?=\s)"), "<>"),
    ("condition dropped", re.compile(r"\s(?:and|or)\s[^\n]*"), ""),
    ("sum to max", re.compile(r"\bsum\("), "max("),
    ("count distinct to count", re.compile(r"\bcount\(distinct\s"), "count("),
    ("avg to sum", re.compile(r"\bavg\("), "sum("),
    *[(f"{a} for {b}", re.compile(rf"\b{b}\b"), a) for a, b in SIBLINGS],
    *[(f"{b} for {a}", re.compile(rf"\b{a}\b"), b) for a, b in SIBLINGS],
]


@dataclass
class Mutant:
    file: str
    kind: str
    operator: str
    line: int
    before: str
    after: str
    outcome: str = ""
    seconds: float = 0.0


def targets() -> list[tuple[Path, str]]:
    files = [(p, "model") for p in sorted(MODELS.rglob("*.sql"))]
    files += [
        (p, "semantic")
        for p in (SEMANTIC / "metrics.yaml", SEMANTIC / "dimensions.yaml", SEMANTIC / "models.yaml", SEMANTIC / "macros.sql")
    ]
    files.append((RULES, "rules"))
    return files


PROSE = re.compile(r"^\s*-?\s*(description|label|title|counts|notes|summary):")  # YAML text, not code


def _commented(text: str, at: int) -> bool:
    """A comment, or prose in a YAML file: a defect there changes no behaviour."""
    start = text.rfind("\n", 0, at) + 1
    line = text[start:at]
    return "--" in line or line.lstrip().startswith(("#", "{#")) or bool(PROSE.match(line))


def candidates() -> list[tuple[Path, str, Mutant, int, int, str]]:
    found = []
    for path, kind in targets():
        text = path.read_text(encoding="utf-8")
        for name, pattern, replacement in OPERATORS:
            for match in pattern.finditer(text):
                if _commented(text, match.start()):
                    continue
                line = text.count("\n", 0, match.start()) + 1
                start = max(text.rfind("\n", 0, match.start()) + 1, match.start() - 40)  # the change, in its context
                end = text.find("\n", match.end())
                end = min(len(text) if end < 0 else end, match.end() + 30)
                before = text[start:end]
                after = text[start : match.start()] + replacement + text[match.end() : end]
                mutant = Mutant(str(path.relative_to(ROOT)), kind, name, line, before.strip(), after.strip())
                found.append((path, kind, mutant, match.start(), match.end(), replacement))
    return found


def run_tests(kind: str, limit: float) -> tuple[str, str]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "not slow and not superset and not browser",
        *SUITES[kind],
    ]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        # A defect that makes a query run away (a join on `<>` multiplies rows): no test ends
        # in time, which a user would notice too.
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return "caught by a timeout", ""
    if process.returncode == 0:
        return "survived", ""
    build = any(
        word in output
        for word in (
            "Parser Error",
            "Binder Error",
            "Catalog Error",
            "syntax error",
            "ParserException",
            "BinderException",
            "YAMLError",
            "CompileError",
        )
    )
    return ("caught by the build" if build else "caught"), output[-400:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=60, help="how many mutants to run (an evenly spread sample)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=300, help="seconds a mutant's tests may take; longer counts as caught")
    parser.add_argument("--json", type=Path, default=None, help="write every mutant and its outcome here")
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))  # restore the file, then stop
    every = candidates()
    random.Random(args.seed).shuffle(every)
    chosen = sorted(every[: args.limit], key=lambda c: (c[2].file, c[3]))
    print(f"{len(every)} places a defect can be planted; running {len(chosen)}", flush=True)
    results = []
    for path, kind, mutant, start, end, replacement in chosen:
        original = path.read_text(encoding="utf-8")
        began = time.monotonic()
        try:
            path.write_text(original[:start] + replacement + original[end:], encoding="utf-8")
            mutant.outcome, _ = run_tests(kind, args.timeout)
        finally:
            path.write_text(original, encoding="utf-8")
        mutant.seconds = round(time.monotonic() - began, 1)
        results.append(mutant)
        print(
            f"{mutant.outcome:<20} {mutant.file}:{mutant.line}  {mutant.operator}: {mutant.before[:70]!r} -> {mutant.after[:70]!r}",
            flush=True,
        )
    caught = sum(m.outcome != "survived" for m in results)
    by_tests = sum(m.outcome == "caught" for m in results)
    print(
        f"\ncaught {caught} of {len(results)} ({caught / max(len(results), 1):.0%}); "
        f"{by_tests} by a test's assertion, {caught - by_tests} by the build or a timeout"
    )
    for kind in SUITES:
        mine = [m for m in results if m.kind == kind]
        if mine:
            print(f"  {kind:<9} {sum(m.outcome != 'survived' for m in mine)} of {len(mine)}")
    if args.json:
        args.json.write_text(json.dumps([asdict(m) for m in results], indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()

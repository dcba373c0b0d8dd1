"""The house's plan: every part is a folder (or one of a few root modules) under platform/, and
the parts import each other in one direction only, read from the code's own imports (every
`import`, function-local ones too). `python -m tests.test_layout` prints the graph."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "platform"

# The modules at the root of the package: the settings and the source contract (what every
# part reads), the demo's secrets beside the settings, and the Python API.
ROOT_MODULES = {"settings", "demo", "contract", "api"}

# What a part may not import, beyond the no-cycle rule: the engines know neither the
# pipeline nor the layers above it; runtime and settings sit under everything.
FORBIDDEN = {
    "engines": {"etl", "semantic", "dashboards", "bi", "notify", "app", "cli"},
    "runtime": {"*"},
    "settings": {"*", "-runtime"},
    "contract": {"*"},
    "semantic": {"etl", "dashboards", "bi", "notify", "cli"},
    "dashboards": {"etl", "bi", "notify", "cli"},
    "etl": {"bi", "notify", "app", "cli"},
    "bi": {"etl", "app", "cli"},
    "operations": {"etl", "semantic", "dashboards", "bi", "notify", "cli"},
}


def part_of(module: str) -> str | None:
    """The part an olist_bi module belongs to: its folder under platform/, or its root module."""
    bits = module.split(".")
    if bits[0] != "olist_bi" or len(bits) < 2:
        return None
    return bits[1]


def _imported(tree: ast.AST, here: str) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m.startswith("olist_bi.") and part_of(m) != here}


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        dotted = ".".join(("olist_bi", *path.relative_to(PACKAGE).with_suffix("").parts))
        out[dotted.removesuffix(".__init__")] = path
    return out


def graph() -> dict[str, set[str]]:
    """Part -> the parts it imports."""
    parts = {part_of(m) for m in modules()}
    edges: dict[str, set[str]] = defaultdict(set)
    for module, path in modules().items():
        here = part_of(module)
        edges[here] |= {p for p in map(part_of, _imported(ast.parse(path.read_text(encoding="utf-8")), here)) if p in parts}
    return {p: edges[p] for p in sorted(parts)}


def cycles(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Pairs of parts that reach each other."""

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reached = {p: reach(p) for p in edges}
    return sorted({tuple(sorted((a, b))) for a in edges for b in reached[a] if a != b and a in reached[b]})


def test_no_part_imports_a_part_that_imports_it():
    assert cycles(graph()) == []


def test_the_cycle_check_can_fail():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [("a", "b"), ("a", "c"), ("b", "c")]


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_lower_parts_import_nothing_above_them(part):
    edges = graph()
    rule = FORBIDDEN[part]
    banned = set(edges) - {part} - {r[1:] for r in rule if r.startswith("-")} if "*" in rule else rule
    assert edges[part] & banned == set(), f"{part} imports {sorted(edges[part] & banned)}"


def test_the_root_holds_only_the_settings_the_contract_and_the_api():
    loose = {p.stem for p in PACKAGE.glob("*.py")}
    assert loose == ROOT_MODULES


def test_every_init_only_documents_and_re_exports():
    for path in PACKAGE.rglob("__init__.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            exported = isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["__all__"]
            assert docstring or exported or isinstance(node, (ast.Import, ast.ImportFrom)), f"{path}:{node.lineno} is logic"
        assert ast.get_docstring(tree), f"{path} says nothing about its part"


def test_no_re_export_hides_a_module_of_its_package():
    """`from olist_bi.access import spec` must give the module: a name re-exported by the
    package's __init__ that is also one of its modules would give the name instead."""
    for path in PACKAGE.rglob("__init__.py"):
        modules_here = {p.stem for p in path.parent.glob("*.py")} | {p.name for p in path.parent.iterdir() if p.is_dir()}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom):
                hidden = {a.asname or a.name for a in node.names} & modules_here
                assert not hidden, f"{path} re-exports {sorted(hidden)}, which are also modules beside it"


def test_one_name_per_class():
    seen: dict[str, list[str]] = defaultdict(list)
    for module, path in modules().items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                seen[node.name].append(module)
    assert {name: where for name, where in seen.items() if len(where) > 1} == {}


def test_the_readme_names_every_part_on_one_line():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme.split("## Layout", 1)[1].split("```", 2)[1]
    order = re.findall(r"^  (\w+)(?:/|\.py)\s", layout, re.M)
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert sorted(order) == sorted(folders | ROOT_MODULES)
    for at, part in enumerate(order):  # listed from the bottom up: each imports only parts before it
        assert graph()[part] <= set(order[:at]), f"{part} imports {sorted(graph()[part] - set(order[:at]))}, listed after it"


def test_benchmarks_are_not_in_the_runtime_package():
    assert not any("bench" in p.stem for p in PACKAGE.rglob("*.py"))


if __name__ == "__main__":
    for part, imported in graph().items():
        print(f"{part:<12} -> {', '.join(sorted(imported)) or '(nothing)'}")
    print("cycles:", cycles(graph()) or "none")

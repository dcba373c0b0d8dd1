"""The Makefile's dependency graph as a newcomer meets it: `make up` and `make test` on a tree
without the install stamps, read with `make -n`, and `make up` run where Chromium cannot be
installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


@pytest.fixture
def bare_tree(tmp_path) -> Path:
    """The Makefile and what its stamps depend on, without .venv or .venv-superset."""
    shutil.copy(ROOT / "Makefile", tmp_path)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copy(ROOT / "setup.py", tmp_path)
    shutil.copytree(ROOT / "platform" / "bi" / "superset" / "requirements", tmp_path / "platform" / "bi" / "superset" / "requirements")
    (tmp_path / "docker" / "metabase").mkdir(parents=True)
    shutil.copy(ROOT / "docker" / "metabase" / "Dockerfile", tmp_path / "docker" / "metabase")  # the driver's DuckDB release
    return tmp_path


def outside_make() -> dict[str, str]:
    """This environment without what a parent make passes down (`make test` runs the suite)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}


def planned(tree: Path, target: str) -> list[str]:
    return subprocess.run(
        ["make", "-n", target], cwd=tree, env=outside_make(), capture_output=True, text=True, check=True
    ).stdout.splitlines()


def position(lines: list[str], needle: str) -> int:
    found = [i for i, line in enumerate(lines) if needle in line]
    assert found, f"{needle!r} is not in the plan:\n" + "\n".join(lines)
    return found[0]


def test_make_up_on_a_bare_tree_installs_both_environments_and_chromium_before_it_starts(bare_tree):
    lines = planned(bare_tree, "up")
    platform = position(lines, "-m venv .venv")
    superset = position(lines, "-r platform/bi/superset/requirements/superset.txt")
    chromium = position(lines, "apt-get install -y -qq chromium")
    up = position(lines, ".venv/bin/olist-bi up")
    assert platform < superset < chromium < up


def test_make_test_on_a_bare_tree_installs_what_the_tests_need_before_it_runs_them(bare_tree):
    lines = planned(bare_tree, "test")
    tests = position(lines, ".venv/bin/pytest")
    for needed in (
        "-m venv .venv",
        "-r platform/bi/superset/requirements/superset.txt",
        "apt-get install -y -qq chromium",
        "docker-compose",
        "--target .venv-metabase-duckdb duckdb==1.5.5",  # the Metabase stand-in's DuckDB, the pinned driver's
    ):
        assert position(lines, needed) < tests


def test_make_up_goes_on_when_chromium_cannot_be_installed(bare_tree):
    """No root, no apt-get: `up` still runs, after a line that says what waits for Chromium."""
    for stamp in (".venv/.installed", ".venv-superset/.installed"):
        (bare_tree / stamp).parent.mkdir(parents=True)
        (bare_tree / stamp).touch()
    fake = bare_tree / "fake-bin"
    fake.mkdir()
    (fake / "apt-get").write_text("#!/bin/sh\necho 'E: Could not open lock file - are you root?' >&2\nexit 100\n")
    (bare_tree / ".venv" / "bin").mkdir()
    (bare_tree / ".venv" / "bin" / "olist-bi").write_text('#!/bin/sh\necho "olist-bi $*"\n')
    for script in (fake / "apt-get", bare_tree / ".venv" / "bin" / "olist-bi"):
        script.chmod(0o755)
    env = {**outside_make(), "PATH": f"{fake}:{os.environ['PATH']}"}
    result = subprocess.run(["make", "up", "CHROMIUM=no-such-chromium"], cwd=bare_tree, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "could not be installed; going on without it" in result.stdout
    assert result.stdout.strip().endswith("olist-bi up")

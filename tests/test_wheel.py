"""The package as a wheel, installed alone into a clean environment away from the checkout:
it finds its own files (models, specs, the notebook, Superset's config and pins, Metabase's
assets), answers a semantic query on a generated drop, and a mistake in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from olist_bi.cli import main
from tests.conftest import fresh_database

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A virtual environment holding the wheel built from this checkout (and its dependencies)."""
    base = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "--wheel-dir", str(base / "dist"), str(ROOT)], check=True, capture_output=True)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    wheel = next((base / "dist").glob("olist_bi-*.whl"))
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
    )
    return venv


def run(venv: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OLIST_", "PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run(
        [str(venv / "bin" / "olist-bi"), *args], cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=600
    )


def test_the_wheel_carries_every_file_the_code_reads(installed, tmp_path):
    probe = (
        "import json, olist_bi.notebook.server as n, olist_bi.bi.superset.server as s;"
        "import olist_bi.bi.metabase.assets as a, olist_bi.etl.transform as t;"
        "print(json.dumps([str(n.NOTEBOOK), str(s.CONFIG), str(s.CONSTRAINTS), str(a.ASSETS_DIR / 'access.yaml'), str(t.MODELS)]))"
    )
    out = subprocess.run([str(installed / "bin" / "python"), "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    for path in map(Path, json.loads(out.stdout)):
        assert path.exists(), path
        assert installed in path.parents, f"{path} is read from outside the installed package"


def test_the_wheel_runs_alone(installed, tmp_path, ops_url):
    version = run(installed, tmp_path, "--version")
    assert version.returncode == 0 and "0.1.0" in version.stdout

    assert run(installed, tmp_path, "generate", "--scale", "0.01", "--seed", "3", "--out", "drop").returncode == 0
    with fresh_database(ops_url, "olist_test_wheel") as url:
        env = {"OLIST_HOME": str(tmp_path / "home"), "OLIST_DATABASE_URL": url}
        loaded = run(installed, tmp_path, "etl", "run", "--source", "drop", "--no-after-publish", **env)
        assert loaded.returncode == 0, loaded.stderr
        from_wheel = run(
            installed, tmp_path, "semantic", "query", "--metric", "orders", "--by", "customer_state", "--format", "json", **env
        )
        assert from_wheel.returncode == 0, from_wheel.stderr
        from_checkout = CliRunner().invoke(
            main, ["semantic", "query", "--metric", "orders", "--by", "customer_state", "--format", "json"], env=env
        )
        assert json.loads(from_wheel.stdout) == json.loads(from_checkout.output) != []

        wrong = run(installed, tmp_path, "semantic", "query", "--metric", "nosuch", **env)
        assert wrong.returncode != 0 and wrong.stdout == ""
        assert len(wrong.stderr.strip().splitlines()) == 1 and "nosuch" in wrong.stderr and "Traceback" not in wrong.stderr

"""Shared fixtures: small generated drops, built once per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from olist_bi.contract import load_raw
from olist_bi.generator import generate


@pytest.fixture(scope="session")
def small_drop(tmp_path_factory) -> Path:
    """A scale-0.01 drop: enough rows for format and contract tests, generated in well under a second."""
    folder = tmp_path_factory.mktemp("drop-0.01")
    generate(folder, scale=0.01, seed=7)
    return folder


@pytest.fixture(scope="session")
def drop(tmp_path_factory) -> Path:
    """A scale-0.2 drop (about 20,000 orders): enough rows for shares and distributions."""
    folder = tmp_path_factory.mktemp("drop-0.2")
    generate(folder, scale=0.2, seed=7)
    return folder


@pytest.fixture(scope="session")
def raw(drop) -> duckdb.DuckDBPyConnection:
    """The scale-0.2 drop loaded through the source contract into schema `raw`."""
    con = duckdb.connect()
    load_raw(con, drop)
    yield con
    con.close()


@pytest.fixture
def drop_copy(small_drop, tmp_path) -> Path:
    """A private copy of the small drop that a test may break."""
    target = tmp_path / "drop"
    shutil.copytree(small_drop, target)
    return target

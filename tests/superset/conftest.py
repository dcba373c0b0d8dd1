"""A real Superset (gunicorn, from .venv-superset) on the machine's PostgreSQL, provisioned
once per session over its REST API."""

import shutil
import socket
from pathlib import Path

import psycopg
import pytest

from olist_bi.notify import outbox
from olist_bi.etl import readers
from olist_bi.operations.postgres import with_database
from olist_bi.bi.superset import provision, server

from olist_bi.bi.superset.client import SupersetClient
from tests.conftest import fresh_database, make_settings


def pytest_collection_modifyitems(config, items):
    """Every test here talks to a real Superset: marked, so that `make test-fast` leaves them out."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.superset)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def superset(warehouse, ops_url, tmp_path_factory):
    """(settings, admin client, first provisioning report)."""
    source_settings, _ = warehouse
    home = tmp_path_factory.mktemp("superset-home")
    shutil.copyfile(source_settings.warehouse_path, home / "warehouse.duckdb")
    for reader in readers.readers():  # the copies Superset opens (etl/readers.py)
        shutil.copyfile(reader.served(source_settings.warehouse_path), reader.served(home / "warehouse.duckdb"))
    with fresh_database(ops_url, "olist_test_superset") as metadata_url:
        settings = make_settings(
            home,
            ops_url,
            olist_superset_port=free_port(),
            olist_superset_database_url=metadata_url,
            olist_smtp_port=free_port(),
            olist_query_timeout_seconds=10,
            olist_query_max_result_mb=20,
        )
        sink = outbox.controller(settings, say=lambda m: None)  # the reports' mail lands in settings.outbox_dir
        sink.start()
        try:
            server.serve(settings, say=lambda m: None)
            report = provision.provision(settings, say=lambda m: None)
            client = SupersetClient(settings.superset_base_url, server.ADMIN_USER, server.admin_password(settings))
            yield settings, client, report
        finally:
            server.stop(settings)
            sink.stop()
            with psycopg.connect(with_database(metadata_url, "postgres"), autocommit=True) as conn:  # the Celery broker's
                conn.execute(f"drop database if exists {metadata_url.rpartition('/')[2]}_celery with (force)")


@pytest.fixture(scope="session")
def login(superset):
    settings, _, report = superset

    def login(username: str) -> SupersetClient:
        return SupersetClient(settings.superset_base_url, username, report.users[username])

    return login

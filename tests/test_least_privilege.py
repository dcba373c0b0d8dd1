"""The platform runs as a least-privilege login: migrations as the store's owner
(`olist-bi migrate`), every other command as a member of `olist_app` (migration 0004), which
may append to the audit trail and nothing more."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from click.testing import CliRunner

from olist_bi.cli import main
from olist_bi.operations.postgres import ensure_ops_reader
from olist_bi.app.scheduler import Scheduler
from tests.conftest import fresh_database, make_settings, server_url

ADMIN = server_url()


@pytest.fixture
def app_login():
    """A login role that is a member of olist_app only (the role exists once migrated)."""
    name = f"olist_test_rt_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(
            "do $$ begin if not exists (select 1 from pg_roles where rolname = 'olist_app') "
            "then create role olist_app nologin; end if; end $$"
        )
        conn.execute(f"create role {name} login in role olist_app")
    yield name
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f"drop owned by {name}")
        conn.execute(f"drop role {name}")


def as_login(url: str, login: str) -> str:
    return url.replace("postgres@", f"{login}@", 1)


def cli(env: dict, *args: str):
    return CliRunner().invoke(main, list(args), env=env)


def test_every_command_works_as_a_member_of_olist_app(app_login, small_drop, tmp_path):
    with fresh_database(ADMIN, "olist_test_roles") as owner_url:
        home = tmp_path / "home"
        owner = {"OLIST_HOME": str(home), "OLIST_DATABASE_URL": owner_url, "OLIST_WAREHOUSE_PATH": str(tmp_path / "w.duckdb")}
        migrated = cli(owner, "migrate")
        assert migrated.exit_code == 0 and "applied 0001_operations.sql" in migrated.output and "olist_ops_reader ready" in migrated.output
        assert "no migration pending" in cli(owner, "migrate").output

        env = {**owner, "OLIST_DATABASE_URL": as_login(owner_url, app_login)}
        for args in (
            ["etl", "run", "--source", str(small_drop)],
            ["etl", "status"],
            ["audit", "tail"],
            ["audit", "checkpoint"],
            ["audit", "verify"],
            ["audit", "export", "--out", str(tmp_path / "a.jsonl")],
        ):
            result = cli(env, *args)
            assert result.exit_code == 0, (args, result.output)
        settings = make_settings(home, env["OLIST_DATABASE_URL"])
        assert ensure_ops_reader(settings).user == "olist_ops_reader"  # made by the owner, used as it is
        scheduler = Scheduler(settings)  # its job table comes from the migrations, not from APScheduler
        scheduler.scheduler.start(paused=True)
        scheduler.register()
        assert len(scheduler.scheduler.get_jobs()) == 4
        scheduler.scheduler.shutdown(wait=False)
        with psycopg.connect(env["OLIST_DATABASE_URL"], autocommit=True) as conn:
            for statement in (
                "update audit_logs set actor = 'x'",
                "create table mine (x int)",
                "drop table pipeline_runs",
                "alter table audit_logs disable trigger all",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
        with psycopg.connect(owner_url) as conn:
            assert conn.execute("select count(*) from audit_logs where action = 'etl.run.succeeded'").fetchone()[0] == 1


def test_a_store_that_needs_migrations_names_the_command_to_run(app_login, tmp_path):
    with fresh_database(ADMIN, "olist_test_roles") as owner_url:
        with psycopg.connect(owner_url, autocommit=True) as conn:
            conn.execute(f"grant connect on database {owner_url.rsplit('/', 1)[1]} to {app_login}")
        env = {"OLIST_HOME": str(tmp_path), "OLIST_DATABASE_URL": as_login(owner_url, app_login)}
        result = cli(env, "audit", "tail")
        assert result.exit_code == 1 and "needs migrations (0001_operations.sql" in result.output
        assert "run `olist-bi migrate` as the store's owner" in result.output and "Traceback" not in result.output

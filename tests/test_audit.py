"""The audit trail on a real PostgreSQL: append-only, tamper-evident, never forked."""

import json
import threading
import uuid

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.rows import dict_row

from olist_bi.operations import audit
from olist_bi.cli import main
from olist_bi.etl import pipeline
from olist_bi.operations import store
from tests.conftest import fresh_database, make_settings


@pytest.fixture
def trail_url(ops_url):
    """A database of its own: these tests break the chain on purpose."""
    with fresh_database(ops_url, "olist_test_audit") as url:
        with store.connect(url):
            pass  # migrated
        yield url


def events(url, count=3):
    with store.connect(url) as conn:
        return [audit.append(conn, "test.event", f"target {i}", {"i": i}, actor="tester") for i in range(count)]


def test_appended_events_chain_and_verify(trail_url):
    ids = events(trail_url, 5)
    assert ids == sorted(ids) and len(set(ids)) == 5
    with store.connect(trail_url) as conn:
        result = audit.verify(conn)
        rows = conn.execute("select * from audit_logs order by id").fetchall()
    assert result.ok and result.rows == 5
    assert rows[0]["prev_hash"] == audit.GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(rows, rows[1:]))


@pytest.mark.parametrize("statement", ["update audit_logs set actor = 'someone else'", "delete from audit_logs", "truncate audit_logs"])
def test_update_delete_and_truncate_are_refused_even_for_a_superuser(trail_url, statement):
    events(trail_url)
    with psycopg.connect(trail_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute(statement)
        assert conn.execute("select count(*) from audit_logs").fetchone()[0] == 3


def test_the_application_role_may_append_but_not_change(trail_url):
    events(trail_url)
    login = f"olist_test_app_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(trail_url, autocommit=True) as conn:
        conn.execute(f"create role {login} login in role olist_app")
    try:
        as_app = trail_url.replace("postgres@", f"{login}@")
        with psycopg.connect(as_app, autocommit=True, row_factory=dict_row) as conn:
            assert audit.append(conn, "test.by_app", actor="app") > 0
            for statement in ("update audit_logs set actor = 'x'", "delete from audit_logs"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
    finally:
        with psycopg.connect(trail_url, autocommit=True) as conn:
            conn.execute(f"drop role {login}")


def test_a_row_altered_with_triggers_disabled_is_caught(trail_url):
    ids = events(trail_url, 5)
    with psycopg.connect(trail_url, autocommit=True) as conn:
        conn.execute("set session_replication_role = replica")  # triggers off: only a superuser can
        conn.execute("update audit_logs set details = '{\"i\": 99}' where id = %s", (ids[2],))
    with store.connect(trail_url) as conn:
        result = audit.verify(conn)
    assert not result.ok and result.broken_at == ids[2] and "altered" in result.reason
    runner = CliRunner()
    out = runner.invoke(main, ["audit", "verify"], env={"OLIST_DATABASE_URL": trail_url})
    assert out.exit_code == 1 and f"row {ids[2]}" in out.output


def test_a_removed_row_is_caught(trail_url):
    ids = events(trail_url, 5)
    with psycopg.connect(trail_url, autocommit=True) as conn:
        conn.execute("set session_replication_role = replica")
        conn.execute("delete from audit_logs where id = %s", (ids[1],))
    with store.connect(trail_url) as conn:
        result = audit.verify(conn)
    assert not result.ok and result.broken_at == ids[2] and "link" in result.reason


def test_eight_concurrent_writers_leave_one_valid_chain(trail_url):
    per_writer, errors = 40, []
    barrier = threading.Barrier(8)

    def writer(n):
        try:
            with store.connect(trail_url) as conn:
                barrier.wait()
                for i in range(per_writer):
                    audit.append(conn, "test.concurrent", f"writer {n}", {"i": i}, actor=f"writer-{n}")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with store.connect(trail_url) as conn:
        result = audit.verify(conn)
        per_actor = {r["actor"]: r["n"] for r in conn.execute("select actor, count(*) as n from audit_logs group by actor").fetchall()}
        ids = [r["id"] for r in conn.execute("select id from audit_logs order by id").fetchall()]
    assert result.ok and result.rows == 8 * per_writer
    assert per_actor == {f"writer-{n}": per_writer for n in range(8)}
    assert ids == list(range(ids[0], ids[0] + 8 * per_writer))


def test_etl_runs_leave_their_start_and_end(trail_url, small_drop, drop_copy, tmp_path):
    settings = make_settings(tmp_path / "home", trail_url)
    ok = pipeline.run(settings, small_drop)
    (drop_copy / "olist_orders_dataset.csv").write_bytes(b"")
    with pytest.raises(pipeline.EtlError):
        pipeline.run(settings, drop_copy)
    with store.connect(trail_url) as conn:
        rows = conn.execute("select action, target, source, details from audit_logs order by id").fetchall()
        assert audit.verify(conn).ok
    actions = [(r["action"], r["target"]) for r in rows]
    assert actions[0] == ("etl.run.started", f"run {ok.run_id}")
    assert ("warehouse.published", str(settings.warehouse_path)) in actions
    assert ("etl.run.succeeded", f"run {ok.run_id}") in actions
    failed = [r for r in rows if r["action"] == "etl.run.failed"]
    assert len(failed) == 1 and "olist_orders_dataset.csv" in failed[0]["details"]["error"]
    assert all(r["source"] == "etl" for r in rows)


def test_tail_and_export(trail_url, tmp_path):
    events(trail_url, 4)
    with store.connect(trail_url) as conn:
        audit.append(conn, "other.thing", actor="someone")
    env = {"OLIST_DATABASE_URL": trail_url}
    runner = CliRunner()
    tail = runner.invoke(main, ["audit", "tail", "--action", "test.", "--actor", "tester"], env=env)
    assert tail.exit_code == 0 and tail.output.count("test.event") == 4 and "other.thing" not in tail.output
    assert runner.invoke(main, ["audit", "tail", "--since", "2999-01-01"], env=env).output.strip() == "no audit events match"
    out = tmp_path / "trail.jsonl"
    assert runner.invoke(main, ["audit", "export", "--format", "jsonl", "--out", str(out)], env=env).exit_code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 5 and rows[0]["prev_hash"] == audit.GENESIS and rows[-1]["action"] == "other.thing"
    csv_out = runner.invoke(main, ["audit", "export", "--format", "csv"], env=env)
    assert csv_out.stdout.splitlines()[0] == ",".join(audit.COLUMNS) and len(csv_out.stdout.splitlines()) == 6

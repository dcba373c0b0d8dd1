"""The audit trail on a real PostgreSQL: append-only, tamper-evident, never forked."""

import datetime as dt
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
from olist_bi.operations import checkpoint, store
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


def test_a_row_altered_with_triggers_disabled_is_caught(trail_url, tmp_path):
    ids = events(trail_url, 5)
    with psycopg.connect(trail_url, autocommit=True) as conn:
        conn.execute("set session_replication_role = replica")  # triggers off: only a superuser can
        conn.execute("update audit_logs set details = '{\"i\": 99}' where id = %s", (ids[2],))
    with store.connect(trail_url) as conn:
        result = audit.verify(conn)
    assert not result.ok and result.broken_at == ids[2] and "altered" in result.reason
    runner = CliRunner()
    out = runner.invoke(main, ["audit", "verify"], env={"OLIST_DATABASE_URL": trail_url, "OLIST_HOME": str(tmp_path)})
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
    assert all(r["source"] == "etl" for r in rows if r["action"] != "audit.checkpoint")
    # each run, the failed one too, ends with a signed checkpoint
    ends = [i for i, (action, _) in enumerate(actions) if action in ("etl.run.succeeded", "etl.run.failed")]
    assert [actions[i + 1][0] for i in ends] == ["audit.checkpoint", "audit.checkpoint"]


def test_a_rewrite_of_anything_before_the_last_run_fails_verify_with_no_scheduler(trail_url, small_drop, tmp_path):
    """The demo starts no scheduler: the run's own checkpoint is what catches a rewrite."""
    settings = make_settings(tmp_path / "home", trail_url)
    pipeline.run(settings, small_drop)
    with store.connect(trail_url) as conn:
        first = conn.execute("select id from audit_logs where action = 'etl.run.started'").fetchone()["id"]
    attack(
        trail_url,
        "update audit_logs set details = '{\"drops\": []}' where id = %(id)s",
        RECOMPUTE.format(from_id=first).replace("%(from)s", str(first)),
        params={"id": first},
    )
    with store.connect(trail_url) as conn:
        assert audit.verify(conn).ok  # the chain alone holds: every hash was recomputed
    code, output = verify_cli(trail_url, tmp_path / "home")
    assert code == 1 and "the trail was rewritten and its hashes recomputed" in output


def test_tail_and_export(trail_url, tmp_path):
    events(trail_url, 4)
    with store.connect(trail_url) as conn:
        audit.append(conn, "other.thing", actor="someone")
    env = {"OLIST_DATABASE_URL": trail_url, "OLIST_HOME": str(tmp_path / "home")}
    runner = CliRunner()
    tail = runner.invoke(main, ["audit", "tail", "--action", "test.", "--actor", "tester"], env=env)
    assert tail.exit_code == 0 and tail.output.count("test.event") == 4 and "other.thing" not in tail.output
    assert runner.invoke(main, ["audit", "tail", "--since", "2999-01-01"], env=env).output.strip() == "no audit events match"
    out = tmp_path / "trail.jsonl"
    assert runner.invoke(main, ["audit", "export", "--format", "jsonl", "--out", str(out)], env=env).exit_code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    carried = rows.pop()["checkpoint"]  # the export carries the checkpoint it wrote, which covers its own event
    assert (
        len(rows) == 6 and rows[0]["prev_hash"] == audit.GENESIS and [r["action"] for r in rows[-2:]] == ["other.thing", "audit.checkpoint"]
    )
    assert carried["rows"] == 6 and carried["last_id"] == rows[-1]["id"] and carried["last_hash"] == rows[-1]["hash"]
    csv_out = runner.invoke(main, ["audit", "export", "--format", "csv"], env=env)
    assert csv_out.stdout.splitlines()[0] == ",".join(audit.COLUMNS) and len(csv_out.stdout.splitlines()) == 8
    assert '"rows": 7' in csv_out.stderr


# --- against whoever controls the database: each attack of the hardening review ------------

RECOMPUTE = """
    update audit_logs set prev_hash = '', hash = '' where id >= %(from)s;
    do $$ declare r record; last text; begin
        select hash into last from audit_logs where id < {from_id} order by id desc limit 1;
        for r in select * from audit_logs where id >= {from_id} order by id loop
            update audit_logs set prev_hash = coalesce(last, repeat('0', 64)),
                hash = audit_row_hash_v2(coalesce(last, repeat('0', 64)), r.at, r.actor, r.source, r.action, r.target, r.details)
            where id = r.id;
            select hash into last from audit_logs where id = r.id;
        end loop;
    end $$;
"""


def attack(url: str, *statements: str, params: dict | None = None) -> None:
    """As the database's owner can: triggers off for the session, then the statements."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set session_replication_role = replica")
        for statement in statements:
            conn.execute(statement, params or {})


def checkpointed(url: str, home) -> tuple:
    settings = make_settings(home, url)
    with store.connect(url) as conn:
        written, _ = checkpoint.write(settings, conn)
    return settings, written


def verify_cli(url: str, home) -> tuple[int, str]:
    out = CliRunner().invoke(main, ["audit", "verify"], env={"OLIST_DATABASE_URL": url, "OLIST_HOME": str(home)})
    return out.exit_code, out.output


def test_a_rewrite_with_recomputed_hashes_passes_the_chain_but_not_the_checkpoint(trail_url, tmp_path):
    ids = events(trail_url, 6)
    checkpointed(trail_url, tmp_path)
    attack(
        trail_url,
        "update audit_logs set details = '{\"i\": 99}' where id = %(id)s",
        RECOMPUTE.format(from_id=ids[2]).replace("%(from)s", str(ids[2])),
        params={"id": ids[2]},
    )
    with store.connect(trail_url) as conn:
        assert audit.verify(conn).ok  # the chain alone holds: every hash was recomputed
    code, output = verify_cli(trail_url, tmp_path)
    assert code == 1 and "the trail was rewritten and its hashes recomputed" in output


def test_rows_deleted_from_the_end_are_caught(trail_url, tmp_path):
    ids = events(trail_url, 6)
    _, written = checkpointed(trail_url, tmp_path)
    attack(trail_url, f"delete from audit_logs where id >= {ids[4]}")
    code, output = verify_cli(trail_url, tmp_path)
    # 7 rows were checkpointed (6 events and the checkpoint's own): 3 are gone
    assert code == 1 and f"3 rows up to id {written.last_id} are missing" in output and "rows were removed" in output


def test_a_row_slipped_in_with_the_chain_recomputed_is_caught(trail_url, tmp_path):
    ids = events(trail_url, 4)
    _, written = checkpointed(trail_url, tmp_path)
    attack(
        trail_url,
        f"""insert into audit_logs (id, at, actor, source, action, target, details, prev_hash, hash, hash_version)
            values ({ids[0] - 1}, now(), 'intruder', 'platform', 'test.forged', null, '{{}}', '', '', 2)""",
        RECOMPUTE.format(from_id=ids[0] - 1).replace("%(from)s", str(ids[0] - 1)),
    )
    with store.connect(trail_url) as conn:
        assert audit.verify(conn).ok  # the chain alone holds
    code, output = verify_cli(trail_url, tmp_path)
    assert code == 1 and f"1 more rows up to id {written.last_id}" in output and "rows were inserted" in output


def test_checkpoint_files_are_private(trail_url, tmp_path):
    events(trail_url, 1)
    checkpointed(trail_url, tmp_path)
    [path] = (tmp_path / "audit" / "checkpoints").glob("*.json")
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_an_emptied_trail_is_caught(trail_url, tmp_path):
    events(trail_url, 3)
    checkpointed(trail_url, tmp_path)
    attack(trail_url, "delete from audit_logs")
    code, output = verify_cli(trail_url, tmp_path)
    assert code == 1 and "every row was deleted" in output


def test_text_moved_across_a_field_boundary_breaks_the_hash(trail_url):
    with store.connect(trail_url) as conn:
        target = audit.append(conn, "test.event", "ab", {"i": 1}, actor="tester|x", source="etl")
    # In the old encoding, 'tester|x' + 'etl' and 'tester' + 'x|etl' joined the same way.
    row = {"prev_hash": audit.GENESIS, "at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "target": "ab", "details_text": "{}", "action": "a"}
    old = [audit.row_hash({**row, "hash_version": 1, "actor": a, "source": s}) for a, s in (("tester|x", "etl"), ("tester", "x|etl"))]
    new = [audit.row_hash({**row, "hash_version": 2, "actor": a, "source": s}) for a, s in (("tester|x", "etl"), ("tester", "x|etl"))]
    assert old[0] == old[1] and new[0] != new[1]
    attack(trail_url, f"update audit_logs set actor = 'tester', source = 'x|etl' where id = {target}")
    with store.connect(trail_url) as conn:
        result = audit.verify(conn)
    assert not result.ok and result.broken_at == target and "altered" in result.reason


def test_an_altered_or_foreign_checkpoint_is_refused(trail_url, tmp_path):
    events(trail_url, 3)
    checkpointed(trail_url, tmp_path)
    path = next((tmp_path / "audit" / "checkpoints").glob("*.json"))
    forged = json.loads(path.read_text())
    path.write_text(json.dumps({**forged, "rows": forged["rows"] - 1}))  # to match a trail cut by one row
    code, output = verify_cli(trail_url, tmp_path)
    assert code == 1 and "NOT VERIFIED" in output and "signature" in output
    path.write_text(json.dumps(forged))
    assert verify_cli(trail_url, tmp_path)[0] == 0
    other_key = CliRunner().invoke(
        main, ["audit", "verify"], env={"OLIST_DATABASE_URL": trail_url, "OLIST_HOME": str(tmp_path), "OLIST_AUDIT_KEY": "x" * 40}
    )
    assert other_key.exit_code == 1 and "not the key it was signed with" in other_key.output


def test_the_application_role_appends_only_through_the_function(trail_url):
    events(trail_url)
    login = f"olist_test_app_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(trail_url, autocommit=True) as conn:
        conn.execute(f"create role {login} login in role olist_app")
        owner = conn.execute("select tableowner from pg_tables where tablename = 'audit_logs'").fetchone()[0]
    assert owner == "olist_audit_owner"
    try:
        as_app = trail_url.replace("postgres@", f"{login}@")
        with psycopg.connect(as_app, autocommit=True, row_factory=dict_row) as conn:
            assert audit.append(conn, "test.by_app", actor="app") > 0
            for statement in (
                "insert into audit_logs (id, at, actor, source, action, prev_hash, hash) values (0, now(), 'x', 'x', 'x', '', '')",
                "alter table audit_logs disable trigger all",
                "alter table audit_logs owner to current_user",
                "set session_replication_role = replica",
                "create or replace function audit_row_hash_v2(a text, b timestamptz, c text, d text, e text, f text, g jsonb) "
                "returns text language sql as $$ select '' $$",
                "drop table audit_logs",
                "set role olist_audit_owner",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
        with store.connect(trail_url) as conn:
            assert audit.verify(conn).ok and audit.verify(conn).rows == 4
    finally:
        with psycopg.connect(trail_url, autocommit=True) as conn:
            conn.execute(f"drop role {login}")


def test_the_scheduler_job_writes_a_checkpoint_verify_then_holds_against(trail_url, tmp_path, monkeypatch):
    from olist_bi.app import scheduler

    events(trail_url, 2)
    monkeypatch.setenv("OLIST_DATABASE_URL", trail_url)
    monkeypatch.setenv("OLIST_HOME", str(tmp_path))
    scheduler.audit_checkpoint()
    code, output = verify_cli(trail_url, tmp_path)
    assert code == 0 and "holds against the checkpoint" in output and "3 rows up to id" in output


@pytest.mark.parametrize(
    "column, value",
    [
        ("at", "at + interval '1 second'"),
        ("actor", "'someone else'"),
        ("source", "'metabase'"),
        ("action", "'test.other'"),
        ("target", "'target 99'"),
        ("target", "null"),
        ("details", "'{\"i\": 99}'::jsonb"),
        ("prev_hash", "repeat('1', 64)"),
        ("hash", "repeat('2', 64)"),
        ("hash_version", "1"),
    ],
)
def test_every_field_of_a_row_tampered_in_turn_is_caught(trail_url, column, value):
    ids = events(trail_url, 4)
    attack(trail_url, f"update audit_logs set {column} = {value} where id = {ids[1]}")
    with store.connect(trail_url) as conn:
        result = audit.verify(conn)
    assert not result.ok and result.broken_at in (ids[1], ids[2]), (column, result)

import json

import pytest
from click.testing import CliRunner

from olist_bi.cli import main
from tests.metabase.standin import MetabaseStandIn
from tests.test_postgres import free_port


def run(*args, env=None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_generate_writes_the_nine_files(tmp_path):
    result = run("generate", "--scale", "0.01", "--seed", "3", "--out", str(tmp_path / "d"))
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "d").iterdir())) == 9
    assert "olist_orders_dataset.csv" in result.output


def test_generate_rejects_a_bad_scale(tmp_path):
    result = run("generate", "--scale", "0", "--out", str(tmp_path))
    assert result.exit_code == 2 and "--scale" in result.output


def test_check_reports_rows(small_drop):
    result = run("check", str(small_drop))
    assert result.exit_code == 0, result.output
    assert "all nine files match the contract" in result.output


def test_check_names_the_broken_file(drop_copy):
    (drop_copy / "olist_orders_dataset.csv").unlink()
    result = run("check", str(drop_copy))
    assert result.exit_code == 1
    assert "olist_orders_dataset.csv: missing" in result.output


def test_check_and_etl_run_agree_on_a_truncated_and_a_swallowed_file(drop_copy, tmp_path, ops_url):
    from olist_bi.etl import pipeline
    from tests.conftest import make_settings

    sellers = drop_copy / "olist_sellers_dataset.csv"
    sellers.write_text(sellers.read_text(encoding="utf-8").rstrip("\n")[:-10], encoding="utf-8")  # a truncated last line
    result = run("check", str(drop_copy))
    assert result.exit_code == 0 and "1 record `etl run` would quarantine: sellers.csv_format" in result.output, result.output
    loaded = pipeline.run(make_settings(tmp_path / "home", ops_url), drop_copy)
    assert loaded.status == "succeeded" and loaded.rows_quarantined["sellers"] == 1  # the run quarantines that record too

    translation = drop_copy / "product_category_name_translation.csv"
    rows = translation.read_text(encoding="utf-8").split("\n")
    rows[2] = '"' + rows[2]  # a stray quote that swallows the rest of the file
    translation.write_text("\n".join(rows), encoding="utf-8")
    refused = run("check", str(drop_copy))
    assert refused.exit_code == 1 and "`etl run` would fail" in refused.output and "product_category_name_translation.csv" in refused.output
    (gate,) = json.loads(run("check", str(drop_copy), "--format", "json").stdout)["etl_run_would_fail"]
    with pytest.raises(pipeline.EtlError, match="OLIST_MAX_QUARANTINE_SHARE") as failed:
        pipeline.run(make_settings(tmp_path / "home2", ops_url), drop_copy)
    assert gate in str(failed.value)  # one gate, word for word: the run's own


def test_doctor_exits_nonzero_with_remedy(tmp_path):
    result = run("doctor", env={"OLIST_HOME": str(tmp_path), "OLIST_DATABASE_URL": "postgresql://u@127.0.0.1:1/x"})
    assert result.exit_code == 1
    assert "FAIL" in result.output and "remedy:" in result.output


@pytest.mark.slow
@pytest.mark.superset
def test_up_builds_the_warehouse_and_serves_provisioned_superset(tmp_path, ops_url):
    """The README's main command, end to end (on the test database, its own Superset)."""
    import socket

    from olist_bi.bi.superset import server
    from tests.conftest import fresh_database, make_settings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with fresh_database(ops_url, "olist_test_up") as metadata_url:
        _up_end_to_end(tmp_path, ops_url, port, metadata_url, server, make_settings)


def _up_end_to_end(tmp_path, ops_url, port, metadata_url, server, make_settings):
    env = {
        "OLIST_HOME": str(tmp_path / "home"),
        "OLIST_DATABASE_URL": ops_url,
        "OLIST_SAMPLE_SCALE": "0.01",
        "OLIST_SUPERSET_PORT": str(port),
        "OLIST_SUPERSET_DATABASE_URL": metadata_url,
        "OLIST_METABASE_URL": f"http://127.0.0.1:{free_port()}",  # nothing answers there
        "OLIST_NOTEBOOK_PORT": str(free_port()),
        "OLIST_SMTP_PORT": str(free_port()),
    }
    standin = MetabaseStandIn(initializing=0, sync_polls=0)
    try:
        result = run("up", env=env)
        assert result.exit_code == 0, result.output
        assert (tmp_path / "home" / "drops" / "sample-scale0.01-seed42" / "olist_orders_dataset.csv").exists()
        assert (tmp_path / "home" / "warehouse.duckdb").exists()
        assert f"Superset     http://127.0.0.1:{port}  6 dashboards" in result.output
        assert f"Metabase     {env['OLIST_METABASE_URL']}  not answering" in result.output
        token = (tmp_path / "home" / "secrets" / "olist_notebook_password").read_text()
        assert f"notebook     http://127.0.0.1:{env['OLIST_NOTEBOOK_PORT']}/?access_token={token}" in result.output
        assert f"mail sink    smtp://127.0.0.1:{env['OLIST_SMTP_PORT']}" in result.output
        for login in ("admin", "viewer", "analyst", "manager", "regional_sp"):
            assert f"  {login} " in result.output
        assert "make down" in result.output and "later version" not in result.output
        from olist_bi.operations import checkpoint, store

        with store.connect(ops_url) as ops:  # `up` ended with a signed checkpoint of the whole trail
            newest = ops.execute("select max(id) as id from audit_logs").fetchone()["id"]
        assert checkpoint.latest(make_settings(tmp_path / "home", ops_url))[0].last_id == newest
        standin.start()
        env["OLIST_METABASE_URL"] = standin.url
        again = run("up", env=env)  # a second `up` finds Superset in place and provisions the Metabase that now answers
        assert again.exit_code == 0 and "skipped" in again.output, again.output
        assert f"Metabase     {standin.url}" in again.output and "analyst@olist-bi.local" in again.output
        # the six dashboards, and the SP regional managers' copy of the five business ones
        assert standin.violations == [] and len(standin.state.dashboards) == 6 + 5
    finally:
        standin.stop()
        server.stop(make_settings(tmp_path / "home", ops_url, olist_superset_port=port))
        assert run("notebook", "stop", env=env).output.strip() == "stopped"
        assert run("outbox", "stop", env=env).output.strip() == "stopped"


def test_etl_commands(tmp_path, ops_url, small_drop):
    env = {"OLIST_HOME": str(tmp_path / "home"), "OLIST_DATABASE_URL": ops_url}
    result = run("etl", "run", "--source", str(small_drop), env=env)
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output and "olist_orders_dataset.csv" in result.output
    status = run("etl", "status", "--limit", "3", env=env)
    assert status.exit_code == 0 and "succeeded" in status.output
    rollback = run("etl", "rollback", env=env)
    assert rollback.exit_code == 1 and "no previous warehouse in" in rollback.output
    missing = run("etl", "run", env=env)
    assert missing.exit_code == 2 and "--source" in missing.output


def test_etl_run_failure_names_the_file(tmp_path, ops_url, drop_copy):
    (drop_copy / "olist_products_dataset.csv").write_bytes(b"")
    result = run("etl", "run", "--source", str(drop_copy), env={"OLIST_HOME": str(tmp_path), "OLIST_DATABASE_URL": ops_url})
    assert result.exit_code == 1
    assert "olist_products_dataset.csv: the file is empty" in result.output and "Traceback" not in result.output


def test_postgres_commands_refuse_when_an_external_database_is_configured():
    result = run("postgres", "start", env={"OLIST_DATABASE_URL": "postgresql://u@h/d"})
    assert result.exit_code == 1 and "OLIST_DATABASE_URL is set" in result.output


def test_semantic_commands(warehouse):
    settings, _ = warehouse
    env = {"OLIST_HOME": str(settings.home), "OLIST_DATABASE_URL": settings.database_url}
    listing = run("semantic", "list", env=env)
    assert listing.exit_code == 0 and "revenue" in listing.output and "purchase_date" in listing.output
    shown = run("semantic", "show", "late_delivery_rate", env=env)
    assert shown.exit_code == 0 and "calendar day" in shown.output
    assert run("semantic", "show", "customer_state", env=env).exit_code == 0
    unknown = run("semantic", "show", "profit", env=env)
    assert unknown.exit_code == 1 and "revenue" in unknown.output
    compiled = run("semantic", "compile", "--metric", "revenue", "--by", "purchase_date:month", "--where", "customer_state=SP", env=env)
    assert compiled.exit_code == 0 and "fact_payments" in compiled.output and "parameters: ['SP']" in compiled.output
    table = run("semantic", "query", "--metric", "revenue", "--metric", "orders", "--by", "purchase_date:year", env=env)
    assert table.exit_code == 0 and "2017-01-01" in table.output
    as_json = run("semantic", "query", "--metric", "orders", "--by", "customer_state", "--format", "json", env=env)
    import json

    rows = json.loads(as_json.output)
    assert {r["customer_state"] for r in rows} >= {"SP", "RJ"} and all(r["orders"] > 0 for r in rows)
    as_csv = run("semantic", "query", "--metric", "orders", "--where", "customer_state=SP", "--format", "csv", env=env)
    assert as_csv.output.splitlines()[0] == "orders"
    bad = run("semantic", "query", "--metric", "revenue", "--by", "state", env=env)
    assert bad.exit_code == 1 and "known dimensions" in bad.output


def test_semantic_query_without_a_warehouse_says_what_to_do(tmp_path):
    result = run("semantic", "query", "--metric", "orders", env={"OLIST_HOME": str(tmp_path)})
    assert result.exit_code == 1 and "load a drop first" in result.output

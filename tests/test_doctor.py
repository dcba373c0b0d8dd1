from olist_bi.doctor import run_checks


def by_name(checks):
    return {c.name: c for c in checks}


def test_doctor_passes_against_the_machines_postgres(tmp_path):
    config, checks = run_checks({"OLIST_HOME": str(tmp_path), "OLIST_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres"})
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    assert "PostgreSQL" in by_name(checks)["postgresql"].detail
    assert config["OLIST_HOME"] == str(tmp_path)


def test_doctor_reports_an_unreachable_database_with_a_remedy(tmp_path):
    _, checks = run_checks({"OLIST_HOME": str(tmp_path), "OLIST_DATABASE_URL": "postgresql://u:hunter2@127.0.0.1:1/x"})
    check = by_name(checks)["postgresql"]
    assert not check.ok
    assert "cannot connect" in check.detail and "hunter2" not in check.detail
    assert "OLIST_DATABASE_URL" in check.remedy


def test_doctor_reports_a_stopped_embedded_server(tmp_path):
    _, checks = run_checks({"OLIST_HOME": str(tmp_path), "OLIST_EMBEDDED_PG_PORT": "5999"})
    check = by_name(checks)["postgresql"]
    assert not check.ok and "not running" in check.detail
    assert "olist-bi postgres start" in check.remedy


def test_doctor_reports_a_broken_setting(tmp_path):
    config, checks = run_checks({"OLIST_HOME": str(tmp_path), "OLIST_SAMPLE_SCALE": "lots"})
    assert config == {}
    [check] = checks
    assert not check.ok and "OLIST_SAMPLE_SCALE" in check.detail and check.remedy

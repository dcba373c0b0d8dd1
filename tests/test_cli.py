from click.testing import CliRunner

from olist_bi.cli import main


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


def test_doctor_exits_nonzero_with_remedy(tmp_path):
    result = run("doctor", env={"OLIST_HOME": str(tmp_path), "OLIST_DATABASE_URL": "postgresql://u@127.0.0.1:1/x"})
    assert result.exit_code == 1
    assert "FAIL" in result.output and "remedy:" in result.output


def test_up_with_an_external_database_prepares_a_sample_drop(tmp_path):
    env = {
        "OLIST_HOME": str(tmp_path / "home"),
        "OLIST_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
        "OLIST_SAMPLE_SCALE": "0.01",
    }
    result = run("up", env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "home" / "drops" / "sample-scale0.01-seed42" / "olist_orders_dataset.csv").exists()
    assert "matching the source contract" in result.output


def test_postgres_commands_refuse_when_an_external_database_is_configured():
    result = run("postgres", "start", env={"OLIST_DATABASE_URL": "postgresql://u@h/d"})
    assert result.exit_code == 1 and "OLIST_DATABASE_URL is set" in result.output

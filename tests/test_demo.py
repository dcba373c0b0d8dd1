"""Insecure defaults exist only in the local demo; production refuses them, naming the variable."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from olist_bi import demo
from olist_bi.bi.metabase import passwords as metabase_passwords
from olist_bi.operations.postgres import PostgresError, database_url
from olist_bi.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[1]


def test_demo_secrets_are_generated_once_and_private(tmp_path):
    settings = Settings.from_env({"OLIST_HOME": str(tmp_path)})
    first = demo.secret(settings, "OLIST_SUPERSET_SECRET_KEY", None, 48)
    assert len(first) >= 48 and demo.secret(settings, "OLIST_SUPERSET_SECRET_KEY", None) == first
    path = tmp_path / "secrets" / "olist_superset_secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700
    assert demo.secret(settings, "OLIST_SUPERSET_SECRET_KEY", "given-value") == "given-value"


def test_generated_passwords_meet_every_bi_tools_rules_and_older_ones_are_replaced(tmp_path):
    settings = Settings.from_env({"OLIST_HOME": str(tmp_path)})
    # 12 random URL-safe bytes have no digit about 7% of the time: 400 draws catch a missing rule.
    drawn = [demo.password(settings, f"OLIST_DEMO_U{i}_PASSWORD", None, 12) for i in range(400)]
    assert all(any(c.isdigit() for c in p) and any(c.islower() for c in p) and any(c.isupper() for c in p) for p in drawn)
    assert all(not metabase_passwords.problems(p) for p in drawn)
    kept = tmp_path / "secrets" / "olist_demo_viewer_password"
    kept.write_text("NoDigitsAtAll-here")  # generated before the rule
    renewed = demo.password(settings, "OLIST_DEMO_VIEWER_PASSWORD", None, 12)
    assert renewed != "NoDigitsAtAll-here" and demo.login_password(renewed) and kept.read_text() == renewed
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


def test_production_refuses_to_generate_secrets(tmp_path):
    settings = Settings.from_env({"OLIST_HOME": str(tmp_path), "OLIST_ENV": "production"})
    with pytest.raises(SettingsError, match="OLIST_SUPERSET_ADMIN_PASSWORD is required when OLIST_ENV=production"):
        demo.secret(settings, "OLIST_SUPERSET_ADMIN_PASSWORD", None)
    assert not (tmp_path / "secrets").exists()


def test_production_refuses_the_embedded_postgres(tmp_path):
    settings = Settings.from_env({"OLIST_HOME": str(tmp_path), "OLIST_ENV": "production"})
    with pytest.raises(PostgresError, match="OLIST_DATABASE_URL is required when OLIST_ENV=production"):
        database_url(settings)


@pytest.mark.parametrize(
    "env, message",
    [
        ({}, "OLIST_SUPERSET_SECRET_KEY is unset or shorter than 32 characters"),
        ({"OLIST_SUPERSET_SECRET_KEY": "short"}, "OLIST_SUPERSET_SECRET_KEY is unset or shorter than 32 characters"),
        ({"OLIST_SUPERSET_SECRET_KEY": "x" * 40}, "OLIST_SUPERSET_DATABASE_URL is unset"),
    ],
)
def test_superset_config_refuses_to_start_without_its_secrets(env, message):
    python = ROOT / ".venv-superset" / "bin" / "python"
    if not python.exists():
        python = Path(sys.executable)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OLIST_")}
    result = subprocess.run(
        [str(python), "-c", f"import runpy; runpy.run_path({str(ROOT / 'platform' / 'bi' / 'superset' / 'superset_config.py')!r})"],
        env={**clean, **env},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and message in result.stderr


@pytest.mark.superset  # superset_config.py imports Superset's event logger: Superset's environment
def test_superset_config_reads_everything_from_the_environment():
    python = ROOT / ".venv-superset" / "bin" / "python"
    env = {
        "OLIST_SUPERSET_SECRET_KEY": "k" * 40,
        "OLIST_SUPERSET_DATABASE_URL": "postgresql://u@h/d",
        "OLIST_REDIS_URL": "redis://127.0.0.1:6379/3",
        "OLIST_SUPERSET_SQL_MAX_ROW": "500",
        "OLIST_SMTP_HOST": "smtp.example.com",
        "OLIST_SMTP_PORT": "465",
        "OLIST_SMTP_SECURITY": "tls",
        "OLIST_MAIL_FROM": "bi@example.com",
        "PATH": os.environ["PATH"],
    }
    code = (
        f"import json, runpy; c = runpy.run_path({str(ROOT / 'platform' / 'bi' / 'superset' / 'superset_config.py')!r}); "
        "print(c['SQLALCHEMY_DATABASE_URI'], c['CACHE_CONFIG']['CACHE_TYPE'], c['SQL_MAX_ROW'], c['WTF_CSRF_ENABLED']); "
        "c['BROKER'] = [c['CELERY_CONFIG'].broker_url, c['CELERY_CONFIG'].result_backend]; "
        "print(json.dumps({k: c[k] for k in ('FEATURE_FLAGS', 'PREVENT_UNSAFE_DB_CONNECTIONS', "
        "'SESSION_COOKIE_HTTPONLY', 'TALISMAN_ENABLED', "
        "'BROKER', 'SMTP_HOST', 'SMTP_PORT', 'SMTP_SSL', 'SMTP_STARTTLS', 'SMTP_SSL_SERVER_AUTH', 'SMTP_MAIL_FROM')}))"
    )
    result = subprocess.run([str(python), "-c", code], env=env, capture_output=True, text=True)
    first, facts = result.stdout.splitlines()
    assert first.split() == ["postgresql+psycopg2://u@h/d", "RedisCache", "500", "True"], result.stderr
    facts = json.loads(facts)
    flags = facts["FEATURE_FLAGS"]
    assert flags["ENABLE_TEMPLATE_PROCESSING"] is False  # no Jinja in SQL Lab: user SQL is never templated
    assert flags["DASHBOARD_NATIVE_FILTERS"] and flags["DASHBOARD_RBAC"]
    assert flags["ALERT_REPORTS"] and flags["PLAYWRIGHT_REPORTS_AND_THUMBNAILS"]  # reports, screenshots with Playwright
    assert facts["PREVENT_UNSAFE_DB_CONNECTIONS"] and facts["SESSION_COOKIE_HTTPONLY"] and facts["TALISMAN_ENABLED"]
    assert facts["BROKER"] == ["redis://127.0.0.1:6379/3"] * 2  # Celery on Redis when it is set
    assert (facts["SMTP_HOST"], facts["SMTP_PORT"], facts["SMTP_SSL"], facts["SMTP_STARTTLS"]) == ("smtp.example.com", 465, True, False)
    assert facts["SMTP_SSL_SERVER_AUTH"] and facts["SMTP_MAIL_FROM"] == "bi@example.com"

    # Without Redis: Celery on PostgreSQL through kombu's SQLAlchemy transport, or no start at all.
    del env["OLIST_REDIS_URL"]
    env["OLIST_SUPERSET_CACHE_DIR"] = "/tmp/cache"
    refused = subprocess.run([str(python), "-c", code], env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "OLIST_SUPERSET_BROKER_URL" in refused.stderr
    env["OLIST_SUPERSET_BROKER_URL"] = "postgresql://u@h/d_celery"
    facts = json.loads(subprocess.run([str(python), "-c", code], env=env, capture_output=True, text=True).stdout.splitlines()[1])
    assert facts["BROKER"] == ["sqla+postgresql+psycopg2://u@h/d_celery", "db+postgresql+psycopg2://u@h/d_celery"]


def test_demo_secrets_created_at_once_agree_and_loose_modes_are_closed(tmp_path):
    import concurrent.futures

    settings = Settings.from_env({"OLIST_HOME": str(tmp_path)})
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        values = list(pool.map(lambda _: demo.secret(settings, "OLIST_AUDIT_KEY", None, 32), range(64)))
    assert len(set(values)) == 1 and len(values[0]) >= 32  # one value, never empty, no FileExistsError
    assert [p.name for p in (tmp_path / "secrets").iterdir()] == ["olist_audit_key"]  # no scratch files left
    path = tmp_path / "secrets" / "olist_audit_key"
    os.chmod(path, 0o644)
    os.chmod(tmp_path / "secrets", 0o755)
    assert demo.secret(settings, "OLIST_AUDIT_KEY", None) == values[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700

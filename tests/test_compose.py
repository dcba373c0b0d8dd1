"""The production stack: docker-compose.yml validated offline by Debian's docker-compose (no
Docker engine runs here), its images pinned and its secrets only from .env; the PostgreSQL
init script run against a real (embedded) PostgreSQL; the platform's init script run for real."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
import yaml

from olist_bi.operations.postgres import EmbeddedPostgres
from tests.test_postgres import free_port

ROOT = Path(__file__).parents[1]
COMPOSE = ROOT / "docker-compose.yml"
SECRET = re.compile(r"PASSWORD|SECRET|_KEY|_PASS$|TOKEN", re.I)
PINNED = re.compile(r"^[\w./-]+:[\w.-]*\d[\w.-]*$")  # a tag with a version number in it, never `latest`


def compose(*args: str, env_file: Path | None = None) -> subprocess.CompletedProcess:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is not installed: `make test` installs Debian's package"
    env = {"PATH": os.environ["PATH"]}  # nothing from this machine's environment leaks in
    options = ["--env-file", str(env_file)] if env_file else []
    return subprocess.run(
        [binary, "-p", "olist", "-f", str(COMPOSE), *options, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def config() -> dict:
    result = compose("config", env_file=ROOT / ".env.example")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.mark.compose
def test_the_compose_file_validates_and_defines_the_stack(config):
    services = set(config["services"])
    assert {"postgres", "superset", "metabase", "scheduler", "init", "provision", "notebook"} <= services


@pytest.mark.compose
def test_a_missing_secret_stops_the_stack_with_its_name(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = compose("config", "-q", env_file=empty)
    assert result.returncode == 1
    assert "set POSTGRES_PASSWORD in .env" in result.stderr


def test_no_literal_secrets_only_variables_from_env():
    raw = yaml.safe_load(COMPOSE.read_text())
    found = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{path}.{k}")
                if isinstance(k, str) and SECRET.search(k) and isinstance(v, (str, int)):
                    found.append((f"{path}.{k}", str(v)))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")

    walk(raw, "")
    assert len(found) >= 10
    for where, value in found:
        # a required variable from .env, or an optional one with no default (the mail server's password)
        assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", value) or re.fullmatch(r"\$\{[A-Z0-9_]+:-\}", value), (
            f"{where} is not a variable from .env: {value!r}"
        )
    for url in re.findall(r"postgresql://[^\s]+", COMPOSE.read_text()):
        assert re.search(r"://\w+:\$\{[A-Z_]+:\?", url), f"a database URL with a literal password: {url}"
    assert ".env" in (ROOT / ".gitignore").read_text().split()


@pytest.mark.compose
def test_every_image_is_pinned(config):
    for name, service in config["services"].items():
        assert PINNED.match(service["image"]), f"{name}: image {service['image']} is not pinned"
        if "build" in service:
            dockerfile = Path(service["build"]["context"]) / service["build"].get("dockerfile", "Dockerfile")
            for base in re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), re.M):
                assert PINNED.match(base), f"{name}: base image {base} is not pinned"
    metabase = (ROOT / "docker" / "metabase" / "Dockerfile").read_text()
    assert "jre" in metabase and ":21" in metabase.replace("temurin:21", ":21"), "Metabase runs on Java 21"
    assert re.search(r"ARG METABASE_VERSION=\d+\.\d+\.\d+", metabase) and re.search(r"ARG DUCKDB_DRIVER_VERSION=1\.5\.5\.\d+", metabase)
    assert "icu.duckdb_extension" in metabase  # the driver's TimeZone=UTC needs it at start-up, offline too


def test_the_superset_image_uses_the_drivers_of_the_tested_environment():
    tested = dict(
        line.split("#")[0].strip().split("==")
        for line in (ROOT / "platform" / "bi" / "superset" / "requirements" / "superset.txt").read_text().splitlines()
        if "==" in line
    )
    tested |= dict(
        line.strip().split("==")
        for line in (ROOT / "platform" / "bi" / "superset" / "requirements" / "superset-constraints.txt").read_text().splitlines()
        if "==" in line
    )
    image = dict(
        line.strip().split("==")
        for line in (ROOT / "docker" / "superset" / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert image
    for package, version in image.items():
        assert tested.get(package) == version, f"{package}=={version} in the image, {tested.get(package)} in the tested environment"
    assert image["duckdb"] == "1.4.4"


@pytest.mark.compose
def test_the_warehouse_is_read_only_in_the_bi_tools_and_the_order_holds(config):
    services = config["services"]
    for name in ("superset", "metabase", "notebook"):
        assert any(v.endswith("/warehouse:ro") for v in _volumes(services[name])), f"{name} must mount the warehouse read-only"
    for name in ("init", "scheduler"):
        assert any(v.endswith("/warehouse:rw") for v in _volumes(services[name])), f"{name} writes the warehouse"
    for name in ("superset", "metabase", "scheduler"):
        assert services[name]["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert services["superset"]["depends_on"]["superset-init"]["condition"] == "service_completed_successfully"
    for name in ("superset", "metabase"):
        assert services["provision"]["depends_on"][name]["condition"] == "service_healthy"
    for name in ("postgres", "superset", "metabase", "redis"):
        assert services[name]["healthcheck"]["test"], name
    env = services["scheduler"]["environment"]
    assert env["OLIST_ENV"] == "production" and env["OLIST_DATABASE_URL"].startswith("postgresql://olist_runtime:")  # least privilege
    assert "OLIST_MIGRATION_DATABASE_URL" not in env and env["OLIST_AUDIT_KEY"]
    assert services["postgres"]["environment"]["OLIST_RUNTIME_DB_PASSWORD"]  # its init script makes the runtime login
    assert services["init"]["environment"]["OLIST_MIGRATION_DATABASE_URL"].startswith(
        "postgresql://olist:"
    )  # the owner migrates, in init only


def _volumes(service: dict) -> list[str]:
    out = []
    for v in service.get("volumes", []):
        out.append(v if isinstance(v, str) else f"{v['source']}:{v['target']}:{'ro' if v.get('read_only') else 'rw'}")
    return out


def test_the_postgres_init_script_makes_one_database_and_role_per_consumer(tmp_path):
    pg = EmbeddedPostgres(tmp_path / "postgres", free_port(), "p0")  # scram-sha-256, as the official image's
    pg.start()
    try:
        with psycopg.connect(pg.admin_url, autocommit=True) as conn:  # as empty as the official image's first start
            conn.execute("drop database if exists olist_ops")
        env = {
            "PATH": os.environ["PATH"],
            "PGHOST": "127.0.0.1",
            "PGPORT": str(pg.port),
            "PGPASSWORD": "p0",
            "POSTGRES_USER": "postgres",
            "POSTGRES_DB": "postgres",
            "POSTGRES_PASSWORD": "p0",
            "OLIST_DB_PASSWORD": "p1",
            "SUPERSET_DB_PASSWORD": "p2",
            "METABASE_DB_PASSWORD": "p3",
            "OLIST_RUNTIME_DB_PASSWORD": "p4",
        }
        script = ROOT / "docker" / "postgres" / "init.sh"
        result = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        passwords = {"olist": "p1", "superset": "p2", "metabase": "p3", "olist_runtime": "p4"}

        def login(role: str, database: str) -> str:
            return f"postgresql://{role}:{passwords[role]}@127.0.0.1:{pg.port}/{database}"

        for role, database in (("olist", "olist_ops"), ("superset", "superset"), ("metabase", "metabase")):
            with psycopg.connect(login(role, database)) as conn:
                assert conn.execute(
                    "select current_user, pg_catalog.pg_get_userbyid(datdba) from pg_database where datname = current_database()"
                ).fetchone() == (role, role)
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            psycopg.connect(login("metabase", "olist_ops"))
        with psycopg.connect(login("olist", "olist_ops")) as conn:
            assert conn.execute("select rolcreaterole from pg_roles where rolname = 'olist'").fetchone() == (True,)
        # The roles as the stack uses them: the owner migrates (and hands the audit trail to
        # olist_audit_owner), the runtime login does the rest and may only append to the trail.
        cli = [str(ROOT / ".venv" / "bin" / "olist-bi")] if (ROOT / ".venv" / "bin" / "olist-bi").exists() else ["olist-bi"]
        platform = {
            "PATH": os.environ["PATH"],
            "OLIST_HOME": str(tmp_path / "home"),
            "OLIST_ENV": "production",
            "OLIST_AUDIT_KEY": "k" * 40,
            "OLIST_OPS_READER_PASSWORD": "p5",
            "OLIST_MIGRATION_DATABASE_URL": login("olist", "olist_ops"),
            "OLIST_DATABASE_URL": login("olist_runtime", "olist_ops"),
        }
        for args in (["migrate"], ["audit", "checkpoint"], ["audit", "verify"], ["etl", "status"]):
            ran = subprocess.run([*cli, *args], env=platform, capture_output=True, text=True, timeout=120)
            assert ran.returncode == 0, (args, ran.stderr)
        with psycopg.connect(login("olist_runtime", "olist_ops")) as conn:
            assert conn.execute("select tableowner from pg_tables where tablename = 'audit_logs'").fetchone() == ("olist_audit_owner",)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("update audit_logs set actor = 'x'")

        refused = subprocess.run(
            ["sh", str(script)], env={**env, "SUPERSET_DB_PASSWORD": "change-me"}, capture_output=True, text=True, timeout=60
        )
        assert refused.returncode == 1 and "SUPERSET_DB_PASSWORD still holds the example value" in refused.stderr
    finally:
        pg.stop()


def test_the_platform_init_script_loads_the_mounted_drop(small_drop, ops_url, tmp_path):
    env = {
        "PATH": f"{Path(shutil.which('olist-bi') or ROOT / '.venv/bin/olist-bi').parent}:{os.environ['PATH']}",
        "OLIST_HOME": str(tmp_path / "home"),
        "OLIST_DATABASE_URL": ops_url,
        "OLIST_DROP": str(small_drop),
        "OLIST_WAREHOUSE_PATH": str(tmp_path / "warehouse" / "warehouse.duckdb"),
    }
    (tmp_path / "warehouse").mkdir()
    result = subprocess.run(["sh", str(ROOT / "docker" / "platform" / "init.sh")], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"loading the drop at {small_drop}" in result.stdout
    assert (tmp_path / "warehouse" / "warehouse.duckdb").exists()
    again = subprocess.run(["sh", str(ROOT / "docker" / "platform" / "init.sh")], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "skipped" in (again.stdout + again.stderr).lower()


def test_production_refuses_the_example_secrets(tmp_path):
    from olist_bi.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="OLIST_SUPERSET_ADMIN_PASSWORD still holds the example value"):
        Settings.from_env({"OLIST_ENV": "production", "OLIST_SUPERSET_ADMIN_PASSWORD": "change-me", "OLIST_HOME": str(tmp_path)})
    assert Settings.from_env({"OLIST_ENV": "demo", "OLIST_SUPERSET_ADMIN_PASSWORD": "change-me", "OLIST_HOME": str(tmp_path)}).is_demo


@pytest.mark.compose
def test_the_clickhouse_profile_runs_a_pinned_server_with_the_bundles_users(config):
    service = config["services"]["clickhouse"]
    assert service["profiles"] == ["clickhouse"]  # not started unless asked for
    volumes = _volumes(service)
    assert any(v.endswith("/etc/clickhouse-server/users.d/olist.xml:ro") for v in volumes)
    assert any(v.endswith("/etc/clickhouse-server/config.d/olist.xml:ro") for v in volumes)
    assert "ping" in " ".join(service["healthcheck"]["test"])
    assert config["services"]["scheduler"]["environment"]["OLIST_WAREHOUSE_ENGINE"] == "duckdb"  # unless .env says otherwise


def test_the_clickhouse_users_match_the_databases_the_etl_uses_and_lock_readers_down():
    import xml.etree.ElementTree as ET

    from olist_bi.engines.clickhouse.dialect import SETTINGS
    from olist_bi.engines.clickhouse.warehouse import KEEP, Databases

    root = ET.parse(ROOT / "docker" / "clickhouse" / "users.xml").getroot()
    users = root.find("users")
    assert users.find("default").get("remove") == "remove"  # no passwordless default user
    db = Databases("olist")
    generations = {db.served, db.build, *(db.previous(n) for n in range(1, KEEP + 1))}
    expected = generations | {Databases.raw(g) for g in generations} | {db.staging, db.semantic}
    etl = [q.text for q in users.find("olist_etl/grants")]
    assert {g.removeprefix("GRANT ALL ON ").removesuffix(".*") for g in etl} == expected
    reader = [q.text for q in users.find("olist_reader/grants")]
    assert reader == [f"GRANT SELECT ON {db.served}.*", f"GRANT SELECT ON {db.semantic}.*"]  # no SOURCES: no file(), url()
    for name in ("olist_etl", "olist_reader"):
        password = users.find(f"{name}/password")
        assert password.get("from_env", "").startswith("OLIST_CLICKHOUSE_") and not (password.text or "").strip()
        profile = root.find(f"profiles/{users.find(f'{name}/profile').text}")
        for setting, value in SETTINGS.items():  # the dialect's semantics for every client
            assert profile.find(setting).text == str(value), (name, setting)
    reader_profile = root.find("profiles/olist_reader")
    assert reader_profile.find("readonly").text == "2"
    for limit in ("max_memory_usage", "max_execution_time", "max_result_rows", "max_rows_to_read"):
        assert int(reader_profile.find(limit).text) > 0, limit
        bounds = reader_profile.find(f"constraints/{limit}")  # a client may not lift it (readonly=2 allows SET)
        assert int(bounds.find("min").text) >= 1 and int(bounds.find("max").text) == int(reader_profile.find(limit).text), limit
    assert reader_profile.find("constraints/result_overflow_mode/const") is not None


@pytest.mark.compose
def test_the_notebook_faces_the_hosts_loopback_only_and_every_reader_gets_the_limits(config):
    """One shared token over plain HTTP: reachable through a proxy on the host, not the network
    (docs/security.md). The query limits and the mail allow-list reach every service that reads
    the warehouse or sends mail."""
    services = config["services"]
    (port,) = services["notebook"]["ports"]
    published = port if isinstance(port, str) else f"{port.get('host_ip', '0.0.0.0')}:{port['published']}:{port['target']}"
    assert published.startswith("127.0.0.1:"), published
    for name in ("superset", "superset-worker", "notebook", "scheduler"):
        env = services[name]["environment"]
        assert env["OLIST_QUERY_TIMEOUT_SECONDS"] == "60" and env["OLIST_QUERY_MAX_RESULT_MB"] == "100", name
    for name in ("superset", "superset-worker", "scheduler"):
        assert services[name]["environment"]["OLIST_MAIL_ALLOWED_DOMAINS"] == "example.com", name


def test_the_notebook_container_holds_no_secret_of_another_part(config):
    """The notebook reads the warehouse as a reader; the audit key, the operations store's
    login and the BI tools' admin passwords stay with the services that use them."""
    from olist_bi.settings import BY_NAME

    env = config["services"]["notebook"]["environment"]
    its_own = {"OLIST_NOTEBOOK_PASSWORD", "OLIST_CLICKHOUSE_URL", "OLIST_CLICKHOUSE_READER_URL"}  # the URLs: the read-only user's
    theirs = {name for name, s in BY_NAME.items() if s.secret} - its_own
    assert theirs & set(env) == set()
    assert "OLIST_NOTEBOOK_PASSWORD" in env and env["OLIST_CLICKHOUSE_URL"] == env["OLIST_CLICKHOUSE_READER_URL"]

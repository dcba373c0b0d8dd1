"""`olist-bi doctor`: is this machine ready to run the platform, and if not, what to do."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlsplit

import duckdb
import psycopg

from olist_bi.operations.postgres import PostgresError, bin_dir, database_url, embedded, superset_metadata_url
from olist_bi.engines.base import engine
from olist_bi.settings import SETTINGS, Settings, SettingsError, mask_url

MIN_FREE_GB = 2.0
# Production's secrets and the shortest each may be: keys sign and encrypt, passwords log in.
REQUIRED_SECRETS = {s.name: s.shortest for s in SETTINGS if s.shortest}  # production: name -> shortest length
EXAMPLES = ("change-me", "changeme", "password", "secret", "example", "admin")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    remedy: str = ""
    required: bool = True  # a failing optional check is a warning: doctor still exits 0


def run_checks(env: Mapping[str, str] | None = None) -> tuple[dict[str, str], list[Check]]:
    """Resolve the configuration and check each dependency; never raises."""
    try:
        settings = Settings.from_env(env)
    except SettingsError as e:
        return {}, [Check("configuration", False, str(e), "fix the variable named above (docs/configuration.md)")]
    checks = [Check("configuration", True, "all variables valid")]
    checks.append(_check_home(settings))
    checks.append(_check_postgres(settings))
    if checks[-1].ok:
        checks.append(_check_logins(settings))
    checks.append(Check("duckdb", True, f"DuckDB {duckdb.__version__}"))
    checks.append(_check_disk(settings))
    checks.append(_check_chromium())
    if (needs := engine(settings).health()) is not None:  # what the engine needs beyond DuckDB
        checks.append(Check(engine(settings).name, *needs))
    if not settings.is_demo:
        checks.append(_check_secrets(settings, env if env is not None else os.environ))
    return settings.describe(), checks


def _check_chromium() -> Check:
    """Debian's Chromium takes Superset's report and alert screenshots; without it the
    dashboards still serve, so its absence is a warning."""
    from olist_bi.bi.superset.server import CHROMIUM, CHROMIUM_MISSING

    if not CHROMIUM.exists():
        return Check(
            "chromium", False, CHROMIUM_MISSING.split(": run")[0], "run `make chromium` (apt-get install chromium, as root)", required=False
        )
    return Check("chromium", True, f"Debian's Chromium at {CHROMIUM} (reports' and thumbnails' screenshots)")


def _check_home(settings: Settings) -> Check:
    home = settings.home
    existing = next((p for p in (home, *home.parents) if p.exists()), None)
    if existing is None or not os.access(existing, os.W_OK):
        return Check("data folder", False, f"{home} cannot be created or written", "set OLIST_HOME to a writable folder")
    return Check("data folder", True, f"{home} is writable")


def _check_postgres(settings: Settings) -> Check:
    if settings.uses_embedded_postgres:
        try:
            server = embedded(settings)
        except PostgresError as e:
            return Check("postgresql", False, str(e), "set OLIST_DATABASE_URL to your PostgreSQL")
        try:
            bin_dir()
        except PostgresError as e:
            return Check("postgresql", False, str(e), "run `make up` to install the platform's environment")
        if not server.is_running():
            return Check(
                "postgresql",
                False,
                f"the embedded PostgreSQL in {server.data_dir} is not running",
                "start it with `olist-bi postgres start` (or `make up`), or set OLIST_DATABASE_URL",
            )
        url = database_url(settings, start=False)
    else:
        url = settings.database_url
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            version = conn.execute("show server_version").fetchone()[0]
    except psycopg.Error as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return Check(
            "postgresql",
            False,
            f"cannot connect to {mask_url(url)}: {reason}",
            "check that the server runs and that OLIST_DATABASE_URL has the right host, port, user and password",
        )
    major = int(version.split(".")[0])
    if major < 14:
        return Check("postgresql", False, f"PostgreSQL {version} at {mask_url(url)}", "use PostgreSQL 14 or newer")
    return Check("postgresql", True, f"PostgreSQL {version} at {mask_url(url)}")


def logins(settings: Settings) -> dict[str, str]:
    """Each PostgreSQL login the platform is configured with, by what it is for."""
    found = {"the platform (OLIST_DATABASE_URL)": database_url(settings, start=False)}
    metadata = settings.superset_database_url or superset_metadata_url(settings, start=False)
    if metadata:
        found["Superset's metadata"] = metadata
    if settings.migration_database_url:
        found["migrations (OLIST_MIGRATION_DATABASE_URL)"] = settings.migration_database_url
    return found


def without_password(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = (
        (f"{parts.username}@" if parts.username else "") + (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    )
    return parts._replace(netloc=netloc).geturl()


def _check_logins(settings: Settings) -> Check:
    """How each login authenticates: whether it gets in without its password (a `trust` line),
    and whether it is a superuser. In production either fails the check, but for the login
    that migrates, which may be the owner or a superuser."""
    seen, wrong = [], []
    for purpose, url in logins(settings).items():
        if not url.startswith(("postgresql://", "postgres://")):
            continue  # a key=value DSN: nothing to check without parsing its own syntax
        try:
            with psycopg.connect(url, connect_timeout=5) as conn:
                user, superuser = conn.execute("select current_user, rolsuper from pg_roles where rolname = current_user").fetchone()
        except psycopg.Error as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            return Check("logins", False, f"{purpose}: cannot log in as {mask_url(url)}: {reason}", "check the login's user and password")
        try:
            with psycopg.connect(without_password(url), connect_timeout=5):
                passwordless = True
        except psycopg.Error:
            passwordless = False
        how = "gets in WITHOUT a password" if passwordless else "password required"
        seen.append(f"{purpose}: {user}, {how}{', superuser' if superuser else ''}")
        migrates = purpose.startswith("migrations")
        if passwordless:
            wrong.append(f"{purpose}: {user} logs in without a password")
        if superuser and not migrates:
            wrong.append(f"{purpose}: {user} is a superuser")
    if wrong and not settings.is_demo:
        return Check(
            "logins",
            False,
            "; ".join(wrong),
            "give every role a password (scram-sha-256 in pg_hba.conf, no trust line) and run the platform and Superset "
            "as roles that are not superusers (docs/operations.md#roles)",
        )
    return Check("logins", True, "; ".join(seen) or "no PostgreSQL login to check")


def _check_disk(settings: Settings) -> Check:
    path = next(p for p in (settings.home, *settings.home.parents) if p.exists())
    free_gb = shutil.disk_usage(path).free / 1e9
    if free_gb < MIN_FREE_GB:
        return Check(
            "disk",
            False,
            f"{free_gb:.1f} GB free at {path}",
            f"free at least {MIN_FREE_GB:g} GB or point OLIST_HOME at a larger disk (scale 10 needs about 10 GB)",
        )
    return Check("disk", True, f"{free_gb:.1f} GB free at {path}")


def _check_secrets(settings: Settings, env: Mapping[str, str]) -> Check:
    """Production: every secret given, long enough, and not an example value."""
    wrong = []
    for name, shortest in REQUIRED_SECRETS.items():
        value = env.get(name) or ""
        if not value:
            wrong.append(f"{name} is not set")
        elif len(value) < shortest:
            wrong.append(f"{name} is shorter than {shortest} characters")
        elif any(example in value.lower() for example in EXAMPLES):
            wrong.append(f"{name} still holds an example value")
    url_password = urlsplit(settings.database_url or "").password or ""
    if url_password and (len(url_password) < 12 or any(example in url_password.lower() for example in EXAMPLES)):
        wrong.append("the password in OLIST_DATABASE_URL is short or an example value")
    if wrong:
        return Check(
            "secrets", False, "; ".join(wrong), "set each to a long random value (openssl rand -base64 42); see docs/configuration.md"
        )
    return Check("secrets", True, f"{len(REQUIRED_SECRETS)} secrets set, none short or an example")

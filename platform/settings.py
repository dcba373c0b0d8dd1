"""The platform's configuration: every setting comes from one environment variable.

`VARIABLES` is the single list of what can be set; `docs/configuration.md` documents each
one and a test fails when a variable is missing there. `Settings.from_env()` resolves them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping


@dataclass(frozen=True)
class Variable:
    name: str
    default: str | None
    help: str
    secret: bool = False


VARIABLES: tuple[Variable, ...] = (
    Variable(
        "OLIST_ENV",
        "demo",
        "demo (the local demo: embedded PostgreSQL, generated secrets, demo users) or production "
        "(every secret and the database URL must be given; insecure defaults refuse to run).",
    ),
    Variable(
        "OLIST_HOME",
        "./.olist",
        "Data folder: generated drops, the served warehouse, the embedded PostgreSQL, logs.",
    ),
    Variable(
        "OLIST_DATABASE_URL",
        None,
        "PostgreSQL URL for operations and audit (postgresql://user:pass@host:5432/db). "
        "Unset: an embedded PostgreSQL is started under $OLIST_HOME/postgres.",
        secret=True,
    ),
    Variable(
        "OLIST_WAREHOUSE_PATH",
        None,
        "The served DuckDB warehouse file. Default: $OLIST_HOME/warehouse.duckdb.",
    ),
    Variable(
        "OLIST_WAREHOUSE_ENGINE",
        "duckdb",
        "duckdb (the served warehouse is the DuckDB file) or clickhouse (the ETL also builds the models "
        "in ClickHouse and publishes them there; the semantic layer reads ClickHouse). docs/clickhouse.md.",
    ),
    Variable(
        "OLIST_CLICKHOUSE_URL",
        None,
        "Where ClickHouse is, with OLIST_WAREHOUSE_ENGINE=clickhouse: http(s)://user:password@host:8123 for a "
        "server or cluster, or chdb:///folder for embedded ClickHouse (one process at a time). "
        "Default: chdb://$OLIST_HOME/clickhouse.",
        secret=True,
    ),
    Variable(
        "OLIST_CLICKHOUSE_READER_URL",
        None,
        "The ClickHouse server as the BI tools connect to it, with the read-only user: "
        "http(s)://olist_reader:password@host:8123. Unset: OLIST_CLICKHOUSE_URL, in the local demo only (production refuses).",
        secret=True,
    ),
    Variable(
        "OLIST_CLICKHOUSE_DATABASE",
        "olist",
        "The ClickHouse database that serves the warehouse; the ETL also uses <name>_build, <name>_staging, "
        "<name>_previous_1 and _2 (rollback) and <name>_semantic.",
    ),
    Variable(
        "OLIST_EMBEDDED_PG_PORT",
        "5433",
        "TCP port on 127.0.0.1 for the embedded PostgreSQL (only when OLIST_DATABASE_URL is unset).",
    ),
    Variable(
        "OLIST_DUCKDB_MEMORY_LIMIT",
        "3GB",
        "Memory limit of the ETL's DuckDB (it spills to $OLIST_HOME/tmp beyond it).",
    ),
    Variable(
        "OLIST_DUCKDB_THREADS",
        "2",
        "Threads of the ETL's DuckDB.",
    ),
    Variable(
        "OLIST_MAIL_ALLOWED_DOMAINS",
        "olist-bi.local",
        "Where mail may go: comma-separated domains (example.com) or single addresses (someone@example.org). "
        "The platform's mail and Superset's reports and alerts refuse any other recipient.",
    ),
    Variable(
        "OLIST_QUERY_TIMEOUT_SECONDS",
        "60",
        "Time limit of a reader's query (Superset's SQL Lab, charts and alerts, the Python API, the notebook, "
        "`semantic query`; ClickHouse's max_execution_time): interrupted from outside the query at its deadline.",
    ),
    Variable(
        "OLIST_QUERY_MAX_RESULT_MB",
        "100",
        "Size cap of a reader's answer, in megabytes (estimated as it is fetched): a larger one is refused with a message naming the cap.",
    ),
    Variable(
        "OLIST_MAX_QUARANTINE_SHARE",
        "0.05",
        "A run fails, publishing nothing, when a file has more than this share of its rows quarantined.",
    ),
    Variable(
        "OLIST_ETL_SCHEDULE",
        "0 2 * * *",
        "Cron expression (minute hour day month weekday) of the scheduled ETL run; default nightly at 02:00.",
    ),
    Variable(
        "OLIST_INBOX",
        None,
        "Folder the scheduler watches for new drops (one sub-folder per drop). Default: $OLIST_HOME/inbox.",
    ),
    Variable(
        "OLIST_INBOX_POLL_SECONDS",
        "60",
        "How often the scheduler looks for new drops in the inbox.",
    ),
    Variable(
        "OLIST_SUPERSET_PORT",
        "8088",
        "Port on 127.0.0.1 where `olist-bi superset serve` runs Superset.",
    ),
    Variable(
        "OLIST_SUPERSET_WORKERS",
        "2",
        "Gunicorn worker processes of the Superset `olist-bi superset serve` runs (one per core: a request holds the GIL).",
    ),
    Variable(
        "OLIST_SUPERSET_THREADS",
        "4",
        "Threads per Superset worker (a dashboard sends its chart requests together; a thread waiting on a database frees the GIL).",
    ),
    Variable(
        "OLIST_SUPERSET_VENV",
        None,
        "Superset's virtual environment (made by `make up`). Default: .venv-superset in the project folder.",
    ),
    Variable(
        "OLIST_SUPERSET_URL",
        None,
        "The Superset to provision. Default: http://127.0.0.1:$OLIST_SUPERSET_PORT.",
    ),
    Variable(
        "OLIST_SUPERSET_DATABASE_URL",
        None,
        "PostgreSQL URL of Superset's metadata database. Default: database `superset` on the operations server.",
        secret=True,
    ),
    Variable(
        "OLIST_SUPERSET_SECRET_KEY",
        None,
        "Superset's session-signing key (32+ random characters). Demo: generated into $OLIST_HOME/secrets.",
        secret=True,
    ),
    Variable(
        "OLIST_SUPERSET_ADMIN_PASSWORD",
        None,
        "Password of Superset's `admin` user, used to provision. Demo: generated into $OLIST_HOME/secrets.",
        secret=True,
    ),
    Variable(
        "OLIST_MIGRATION_DATABASE_URL",
        None,
        "The operations store as its owner, for `olist-bi migrate` (migrations, roles). Default: OLIST_DATABASE_URL. "
        "In production OLIST_DATABASE_URL is then a least-privilege login, a member of olist_app.",
        secret=True,
    ),
    Variable(
        "OLIST_OPS_READER_PASSWORD",
        None,
        "Password of the read-only PostgreSQL role `olist_ops_reader` that Superset uses for the operations "
        "store. Demo: generated into $OLIST_HOME/secrets.",
        secret=True,
    ),
    Variable(
        "OLIST_METABASE_URL",
        "http://127.0.0.1:3000",
        "The Metabase that `olist-bi metabase provision` provisions (its --url overrides this).",
    ),
    Variable(
        "OLIST_METABASE_ADMIN_EMAIL",
        "admin@olist-bi.local",
        "Login of the Metabase admin that provisioning creates on first run and signs in as afterwards.",
    ),
    Variable(
        "OLIST_METABASE_ADMIN_PASSWORD",
        None,
        "Password of that Metabase admin. Demo: generated into $OLIST_HOME/secrets.",
        secret=True,
    ),
    Variable(
        "OLIST_METABASE_API_KEY",
        None,
        "A Metabase API key (Admin > Settings > API keys) to provision with instead of the admin's password; "
        "needs Metabase to be set up already.",
        secret=True,
    ),
    Variable(
        "OLIST_METABASE_WAREHOUSE_PATH",
        None,
        "The warehouse file as Metabase's server sees it (in docker-compose: /warehouse/warehouse.duckdb). Default: OLIST_WAREHOUSE_PATH.",
    ),
    Variable(
        "OLIST_METABASE_POSTGRES_HOST",
        None,
        "The operations store's host as Metabase's server sees it (in docker-compose: postgres). Default: the host of OLIST_DATABASE_URL.",
    ),
    Variable(
        "OLIST_REDIS_URL",
        None,
        "Redis for Superset's caches (redis://host:6379/0). Unset: caches in memory and in the metadata database.",
    ),
    Variable(
        "OLIST_ACCESS_REVIEW_MINUTES",
        "15",
        "How often the scheduler's access review snapshots Superset's users and roles and copies SQL Lab history into the audit trail.",
    ),
    Variable(
        "OLIST_AUDIT_KEY",
        None,
        "The key that signs the audit trail's checkpoints (32+ random characters; keep it out of the database and "
        "never change it, or older checkpoints no longer verify). Demo: generated into $OLIST_HOME/secrets.",
        secret=True,
    ),
    Variable(
        "OLIST_AUDIT_CHECKPOINT_MINUTES",
        "15",
        "How often the scheduler writes a signed checkpoint of the audit trail ($OLIST_HOME/audit/checkpoints).",
    ),
    Variable(
        "OLIST_NOTEBOOK_PORT",
        "2718",
        "Port on 127.0.0.1 where `olist-bi notebook` serves the analysts' marimo notebook (platform/notebook/explore.py).",
    ),
    Variable(
        "OLIST_NOTEBOOK_PASSWORD",
        None,
        "The notebook's access token (marimo's token password; open it at /?access_token=...). Demo: generated into $OLIST_HOME/secrets.",
        secret=True,
    ),
    Variable(
        "OLIST_SMTP_HOST",
        None,
        "The mail server the platform sends through (alerts to admins, reports). Demo default: the local mail sink on 127.0.0.1 "
        "(`olist-bi outbox`), which keeps each message as a file; in production unset means no mail, and each mail not sent is logged.",
    ),
    Variable(
        "OLIST_SMTP_PORT",
        "8025",
        "The mail server's port (587 for STARTTLS, 465 for TLS; 8025 is the demo's mail sink).",
    ),
    Variable(
        "OLIST_SMTP_SECURITY",
        "none",
        "none, starttls or tls (SMTPS). Production refuses none for a server other than localhost.",
    ),
    Variable(
        "OLIST_SMTP_USER",
        None,
        "The mail server's login, if it takes one.",
    ),
    Variable(
        "OLIST_SMTP_PASSWORD",
        None,
        "The mail server's password.",
        secret=True,
    ),
    Variable(
        "OLIST_MAIL_FROM",
        "olist-bi@localhost",
        "The sender address of the platform's mail.",
    ),
    Variable(
        "OLIST_SAMPLE_SCALE",
        "1",
        "Scale factor of the sample drop that `olist-bi up` generates when no drop is given.",
    ),
)

_BY_NAME = {v.name: v for v in VARIABLES}
EXAMPLE_VALUE = re.compile(r"change-me")  # the placeholders of .env.example


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None
    warehouse_path: Path
    warehouse_engine: str
    clickhouse_url: str
    clickhouse_database: str
    clickhouse_reader_url: str | None
    embedded_pg_port: int
    sample_scale: float
    duckdb_memory_limit: str
    duckdb_threads: int
    max_quarantine_share: float
    etl_schedule: str
    inbox: Path
    inbox_poll_seconds: int
    env: str = "demo"
    superset_port: int = 8088
    superset_workers: int = 2
    superset_threads: int = 4
    superset_url: str | None = None
    superset_venv: Path | None = None
    superset_database_url: str | None = None
    superset_secret_key: str | None = None
    superset_admin_password: str | None = None
    ops_reader_password: str | None = None
    migration_database_url: str | None = None
    redis_url: str | None = None
    access_review_minutes: int = 15
    audit_key: str | None = None
    audit_checkpoint_minutes: int = 15
    metabase_url: str = "http://127.0.0.1:3000"
    metabase_admin_email: str = "admin@olist-bi.local"
    metabase_admin_password: str | None = None
    metabase_api_key: str | None = None
    metabase_warehouse_path: str | None = None
    metabase_postgres_host: str | None = None
    notebook_port: int = 2718
    notebook_password: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 8025
    smtp_security: str = "none"
    smtp_user: str | None = None
    smtp_password: str | None = None
    mail_from: str = "olist-bi@localhost"
    mail_allowed_domains: tuple[str, ...] = ("olist-bi.local",)
    query_timeout_seconds: float = 60.0
    query_max_result_mb: float = 100.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Resolve every variable; raise `SettingsError` naming the variable that is wrong."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name)
            if value is None or value.strip() == "":
                return _BY_NAME[name].default
            return value.strip()

        if get("OLIST_ENV") == "production":
            for variable in VARIABLES:
                value = get(variable.name) or ""
                if variable.secret and EXAMPLE_VALUE.search(value):
                    raise SettingsError(
                        f"{variable.name} still holds the example value of .env.example: set a real secret (openssl rand -base64 42)"
                    )
            if get("OLIST_WAREHOUSE_ENGINE") == "clickhouse" and not (env.get("OLIST_CLICKHOUSE_URL") or "").strip():
                raise SettingsError(
                    "OLIST_WAREHOUSE_ENGINE=clickhouse in production needs OLIST_CLICKHOUSE_URL (a ClickHouse server): embedded "
                    "chdb serves one process at a time, so the scheduler, the notebook and the BI tools could not share it"
                )
            if get("OLIST_WAREHOUSE_ENGINE") == "clickhouse" and not (env.get("OLIST_CLICKHOUSE_READER_URL") or "").strip():
                raise SettingsError(
                    "OLIST_WAREHOUSE_ENGINE=clickhouse in production needs OLIST_CLICKHOUSE_READER_URL (the read-only olist_reader): "
                    "without it Superset and Metabase would connect as the ETL's user"
                )
        home = Path(get("OLIST_HOME")).expanduser().resolve()
        warehouse = get("OLIST_WAREHOUSE_PATH")
        return cls(
            home=home,
            database_url=_postgres_url("OLIST_DATABASE_URL", get("OLIST_DATABASE_URL")),
            warehouse_path=Path(os.path.abspath(Path(warehouse).expanduser()))  # not resolve(): the served path is a link to its generation
            if warehouse
            else home / "warehouse.duckdb",
            warehouse_engine=_parse_choice("OLIST_WAREHOUSE_ENGINE", get("OLIST_WAREHOUSE_ENGINE"), ("duckdb", "clickhouse")),
            clickhouse_url=_clickhouse_url(get("OLIST_CLICKHOUSE_URL"), home),
            clickhouse_database=_parse_identifier("OLIST_CLICKHOUSE_DATABASE", get("OLIST_CLICKHOUSE_DATABASE")),
            clickhouse_reader_url=_clickhouse_url(get("OLIST_CLICKHOUSE_READER_URL"), home) if get("OLIST_CLICKHOUSE_READER_URL") else None,
            embedded_pg_port=_parse_int("OLIST_EMBEDDED_PG_PORT", get("OLIST_EMBEDDED_PG_PORT"), 1024, 65535),
            sample_scale=_parse_float("OLIST_SAMPLE_SCALE", get("OLIST_SAMPLE_SCALE"), 0, 100, low_inclusive=False),
            duckdb_memory_limit=_parse_memory(get("OLIST_DUCKDB_MEMORY_LIMIT")),
            duckdb_threads=_parse_int("OLIST_DUCKDB_THREADS", get("OLIST_DUCKDB_THREADS"), 1, 256),
            max_quarantine_share=_parse_float("OLIST_MAX_QUARANTINE_SHARE", get("OLIST_MAX_QUARANTINE_SHARE"), 0, 1),
            etl_schedule=_parse_cron(get("OLIST_ETL_SCHEDULE")),
            inbox=Path(get("OLIST_INBOX")).expanduser().resolve() if get("OLIST_INBOX") else home / "inbox",
            inbox_poll_seconds=_parse_int("OLIST_INBOX_POLL_SECONDS", get("OLIST_INBOX_POLL_SECONDS"), 1, 86_400),
            env=_parse_choice("OLIST_ENV", get("OLIST_ENV"), ("demo", "production")),
            superset_port=_parse_int("OLIST_SUPERSET_PORT", get("OLIST_SUPERSET_PORT"), 1024, 65535),
            superset_url=get("OLIST_SUPERSET_URL"),
            superset_workers=_parse_int("OLIST_SUPERSET_WORKERS", get("OLIST_SUPERSET_WORKERS"), 1, 64),
            superset_threads=_parse_int("OLIST_SUPERSET_THREADS", get("OLIST_SUPERSET_THREADS"), 1, 64),
            superset_venv=Path(get("OLIST_SUPERSET_VENV")).expanduser().resolve() if get("OLIST_SUPERSET_VENV") else None,
            superset_database_url=get("OLIST_SUPERSET_DATABASE_URL"),
            superset_secret_key=get("OLIST_SUPERSET_SECRET_KEY"),
            superset_admin_password=get("OLIST_SUPERSET_ADMIN_PASSWORD"),
            ops_reader_password=get("OLIST_OPS_READER_PASSWORD"),
            migration_database_url=_postgres_url("OLIST_MIGRATION_DATABASE_URL", get("OLIST_MIGRATION_DATABASE_URL")),
            redis_url=get("OLIST_REDIS_URL"),
            access_review_minutes=_parse_int("OLIST_ACCESS_REVIEW_MINUTES", get("OLIST_ACCESS_REVIEW_MINUTES"), 1, 10_080),
            audit_key=get("OLIST_AUDIT_KEY"),
            audit_checkpoint_minutes=_parse_int("OLIST_AUDIT_CHECKPOINT_MINUTES", get("OLIST_AUDIT_CHECKPOINT_MINUTES"), 1, 10_080),
            metabase_url=get("OLIST_METABASE_URL").rstrip("/"),
            metabase_admin_email=get("OLIST_METABASE_ADMIN_EMAIL"),
            metabase_admin_password=get("OLIST_METABASE_ADMIN_PASSWORD"),
            metabase_api_key=get("OLIST_METABASE_API_KEY"),
            metabase_warehouse_path=get("OLIST_METABASE_WAREHOUSE_PATH"),
            metabase_postgres_host=get("OLIST_METABASE_POSTGRES_HOST"),
            notebook_port=_parse_int("OLIST_NOTEBOOK_PORT", get("OLIST_NOTEBOOK_PORT"), 1024, 65535),
            notebook_password=get("OLIST_NOTEBOOK_PASSWORD"),
            smtp_host=get("OLIST_SMTP_HOST"),
            smtp_port=_parse_int("OLIST_SMTP_PORT", get("OLIST_SMTP_PORT"), 1, 65535),
            smtp_security=_parse_choice("OLIST_SMTP_SECURITY", get("OLIST_SMTP_SECURITY"), ("none", "starttls", "tls")),
            smtp_user=get("OLIST_SMTP_USER"),
            smtp_password=get("OLIST_SMTP_PASSWORD"),
            mail_from=get("OLIST_MAIL_FROM"),
            mail_allowed_domains=parse_allowed_recipients(get("OLIST_MAIL_ALLOWED_DOMAINS")),
            query_timeout_seconds=_parse_float(
                "OLIST_QUERY_TIMEOUT_SECONDS", get("OLIST_QUERY_TIMEOUT_SECONDS"), 0, 86_400, low_inclusive=False
            ),
            query_max_result_mb=_parse_float(
                "OLIST_QUERY_MAX_RESULT_MB", get("OLIST_QUERY_MAX_RESULT_MB"), 0, 1_000_000, low_inclusive=False
            ),
        )

    @property
    def uses_embedded_postgres(self) -> bool:
        return self.database_url is None

    @property
    def embedded_pg_dir(self) -> Path:
        return self.home / "postgres"

    @property
    def drops_dir(self) -> Path:
        return self.home / "drops"

    @property
    def tmp_dir(self) -> Path:
        return self.home / "tmp"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    @property
    def superset_dir(self) -> Path:
        return self.home / "superset"

    @property
    def superset_base_url(self) -> str:
        return (self.superset_url or f"http://127.0.0.1:{self.superset_port}").rstrip("/")

    @property
    def is_demo(self) -> bool:
        return self.env == "demo"

    def describe(self) -> dict[str, str]:
        """The resolved configuration for display, secrets masked."""
        return {
            "OLIST_HOME": str(self.home),
            "OLIST_DATABASE_URL": mask_url(self.database_url)
            if self.database_url
            else f"(unset: embedded PostgreSQL in {self.embedded_pg_dir})",
            "OLIST_MIGRATION_DATABASE_URL": mask_url(self.migration_database_url)
            if self.migration_database_url
            else "(unset: OLIST_DATABASE_URL)",
            "OLIST_WAREHOUSE_PATH": str(self.warehouse_path),
            "OLIST_WAREHOUSE_ENGINE": self.warehouse_engine,
            "OLIST_CLICKHOUSE_URL": mask_url(self.clickhouse_url),
            "OLIST_CLICKHOUSE_DATABASE": self.clickhouse_database,
            "OLIST_CLICKHOUSE_READER_URL": mask_url(self.clickhouse_reader_url)
            if self.clickhouse_reader_url
            else "(unset: OLIST_CLICKHOUSE_URL)",
            "OLIST_EMBEDDED_PG_PORT": str(self.embedded_pg_port),
            "OLIST_DUCKDB_MEMORY_LIMIT": self.duckdb_memory_limit,
            "OLIST_DUCKDB_THREADS": str(self.duckdb_threads),
            "OLIST_MAIL_ALLOWED_DOMAINS": ",".join(self.mail_allowed_domains),
            "OLIST_QUERY_TIMEOUT_SECONDS": f"{self.query_timeout_seconds:g}",
            "OLIST_QUERY_MAX_RESULT_MB": f"{self.query_max_result_mb:g}",
            "OLIST_MAX_QUARANTINE_SHARE": f"{self.max_quarantine_share:g}",
            "OLIST_ETL_SCHEDULE": self.etl_schedule,
            "OLIST_INBOX": str(self.inbox),
            "OLIST_INBOX_POLL_SECONDS": str(self.inbox_poll_seconds),
            "OLIST_SAMPLE_SCALE": f"{self.sample_scale:g}",
            "OLIST_ENV": self.env,
            "OLIST_SUPERSET_PORT": str(self.superset_port),
            "OLIST_SUPERSET_URL": self.superset_base_url,
            "OLIST_SUPERSET_WORKERS": str(self.superset_workers),
            "OLIST_SUPERSET_THREADS": str(self.superset_threads),
            "OLIST_SUPERSET_VENV": str(self.superset_venv) if self.superset_venv else "(unset: .venv-superset in the project folder)",
            "OLIST_SUPERSET_DATABASE_URL": mask_url(self.superset_database_url)
            if self.superset_database_url
            else "(unset: database `superset` on the operations server)",
            "OLIST_SUPERSET_SECRET_KEY": "****" if self.superset_secret_key else "(unset)",
            "OLIST_SUPERSET_ADMIN_PASSWORD": "****" if self.superset_admin_password else "(unset)",
            "OLIST_OPS_READER_PASSWORD": "****" if self.ops_reader_password else "(unset)",
            "OLIST_REDIS_URL": mask_url(self.redis_url) if self.redis_url else "(unset)",
            "OLIST_ACCESS_REVIEW_MINUTES": str(self.access_review_minutes),
            "OLIST_AUDIT_KEY": "****" if self.audit_key else "(unset)",
            "OLIST_AUDIT_CHECKPOINT_MINUTES": str(self.audit_checkpoint_minutes),
            "OLIST_METABASE_URL": self.metabase_url,
            "OLIST_METABASE_ADMIN_EMAIL": self.metabase_admin_email,
            "OLIST_METABASE_ADMIN_PASSWORD": "****" if self.metabase_admin_password else "(unset)",
            "OLIST_METABASE_API_KEY": "****" if self.metabase_api_key else "(unset)",
            "OLIST_METABASE_WAREHOUSE_PATH": self.metabase_warehouse_path or "(unset: OLIST_WAREHOUSE_PATH)",
            "OLIST_METABASE_POSTGRES_HOST": self.metabase_postgres_host or "(unset: the host of OLIST_DATABASE_URL)",
            "OLIST_NOTEBOOK_PORT": str(self.notebook_port),
            "OLIST_NOTEBOOK_PASSWORD": "****" if self.notebook_password else "(unset)",
            "OLIST_SMTP_HOST": self.smtp_host or ("(unset: the demo's mail sink on 127.0.0.1)" if self.is_demo else "(unset: no mail)"),
            "OLIST_SMTP_PORT": str(self.smtp_port),
            "OLIST_SMTP_SECURITY": self.smtp_security,
            "OLIST_SMTP_USER": self.smtp_user or "(unset)",
            "OLIST_SMTP_PASSWORD": "****" if self.smtp_password else "(unset)",
            "OLIST_MAIL_FROM": self.mail_from,
        }


class SettingsError(ValueError):
    """A setting has a value the platform cannot use; the message names the variable."""


def mask_url(url: str) -> str:
    """Hide the password in a connection string: a URL's `user:secret@`, a `password=` query
    parameter, or a key=value DSN's `password=secret` (quoted or not)."""
    url = re.sub(r"(//[^:/@\s]*:)[^@\s]*@", r"\1****@", url)
    url = re.sub(r"([?&]password=)[^&\s]*", r"\1****", url, flags=re.I)
    return re.sub(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)", r"\1****", url, flags=re.I)


def _postgres_url(name: str, value: str | None) -> str | None:
    """A PostgreSQL URL (postgresql://...) or key=value connection string, as psycopg takes."""
    if value and "://" in value and not value.startswith(("postgresql://", "postgres://")):
        raise SettingsError(f"{name} must be a PostgreSQL URL (postgresql://user:password@host:5432/database), got {mask_url(value)}")
    return value


def _parse_int(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {value!r}") from None
    if not low <= number <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {number}")
    return number


def parse_allowed_recipients(value: str) -> tuple[str, ...]:
    """OLIST_MAIL_ALLOWED_DOMAINS as its entries (Superset's processes parse it with this too)."""
    entries = tuple(e.strip().lower() for e in value.split(",") if e.strip())
    wrong = [e for e in entries if not re.fullmatch(r"([^@\s]+@)?[a-z0-9-]+(\.[a-z0-9-]+)*", e)]
    if not entries or wrong:
        raise SettingsError(f"OLIST_MAIL_ALLOWED_DOMAINS must list domains (example.com) or addresses (a@example.com), got {value!r}")
    return entries


def _parse_float(name: str, value: str, low: float, high: float, low_inclusive: bool = True) -> float:
    try:
        number = float(value)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {value!r}") from None
    if not (low <= number if low_inclusive else low < number) or number > high:
        bound = "at least" if low_inclusive else "above"
        raise SettingsError(f"{name} must be {bound} {low:g} and at most {high:g}, got {number:g}")
    return number


def _parse_memory(value: str) -> str:
    if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", value, re.IGNORECASE):
        raise SettingsError(f"OLIST_DUCKDB_MEMORY_LIMIT must be a size such as 3GB or 512MB, got {value!r}")
    return value


def _parse_cron(value: str) -> str:
    from olist_bi.runtime import cron

    try:
        cron.trigger(value, timezone="UTC")
    except ValueError as e:
        raise SettingsError(f"OLIST_ETL_SCHEDULE must be a cron expression (minute hour day month weekday), got {value!r}: {e}") from None
    return value


def _clickhouse_url(value: str | None, home: Path) -> str:
    from urllib.parse import urlsplit

    url = value or f"chdb://{home / 'clickhouse'}"
    parts = urlsplit(url)
    if parts.scheme == "chdb":
        if parts.netloc or not parts.path.startswith("/"):
            raise SettingsError(f"OLIST_CLICKHOUSE_URL {url!r}: an embedded ClickHouse is chdb:///absolute/folder")
    elif parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(
            f"OLIST_CLICKHOUSE_URL {mask_url(url)!r}: use http(s)://user:password@host:8123 for a server, or chdb:///folder"
        )
    return url


def _parse_identifier(name: str, value: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", value):
        raise SettingsError(f"{name}={value!r}: lower-case letters, digits and underscores, starting with a letter")
    return value


def _parse_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value

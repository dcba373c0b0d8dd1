"""Provision Superset over its REST API: connections, datasets, charts and dashboards (one
asset bundle, imported with overwrite), the platform's roles, row-level security and, in the
local demo only, one user per role. Idempotent: a second run changes no count and keeps ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import yaml

from olist_bi import access
from olist_bi.engines.base import engine
from olist_bi.engines.duckdb import warehouse
from olist_bi.dashboards import chart_source, dashboards, datasets, filter_targets, warehouse_views
from olist_bi.operations.postgres import database_url, ensure_ops_reader
from olist_bi.semantic.catalog import load
from olist_bi.settings import Settings
from olist_bi.bi.superset import bundle as bundle_module
from olist_bi.bi.superset import reports
from olist_bi.bi.superset.client import SupersetClient
from olist_bi.bi.superset.server import ADMIN_USER, admin_password

BUSINESS_DATASETS = (
    "fact_deliveries",
    "fact_payments",
    "fact_order_items",
    "mart_customer_cohorts",
    "mart_revenue_forecast",
    "seller_scorecard",
    "freshness",
    "forecast_band",
    "forecast_accuracy",
)
# A regional role (any role with a row scope in access.yaml `scopes`) reads the order, payment,
# item and cohort datasets, narrowed to its value by row-level security, the freshness row (no
# customer rows in it, so no filter), and the scoped datasets (datasets.yaml `scope`), narrowed
# to its value's scope. Its connections read its scope's copy of the warehouse besides (scope.py).
REGIONAL = {
    "datasets": ("fact_deliveries", "fact_payments", "fact_order_items", "mart_customer_cohorts"),
    "unfiltered": ("freshness",),
    "scoped": ("forecast_band", "forecast_accuracy"),
}
READER = Path(__file__).with_name("reader.yaml")  # what a dashboard reader may do in Superset


@dataclass
class SupersetProvisioning:
    counts: dict[str, int] = field(default_factory=dict)
    roles: dict[str, int] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)  # demo logins: username -> password
    changes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        counts = ", ".join(f"{v} {k}" for k, v in self.counts.items())
        return f"{counts}; changed: " + ("; ".join(self.changes) if self.changes else "nothing (already up to date)")


def build_bundle(settings: Settings, ops_uri: str) -> tuple[bundle_module.Bundle, str | None]:
    """The asset bundle, and the password of the warehouse server it connects to (given at
    import), or None. The warehouse connection is the server the engine serves it from, as the
    read-only user; else the reader copy's served path through our dialect (superset/dialect.py):
    one open database per published generation in each Superset worker, never a file open per
    query; a user with a row scope is sent to the scope's copy (scope.connection)."""
    server = engine(settings).bi_reader("Superset")
    uri = server.sqlalchemy_uri if server else f"duckdb+olist:///{warehouse.reader_path(settings.warehouse_path)}"
    built = bundle_module.build(uri, ops_uri, row_columns(settings), clickhouse_database=server.database if server else None)
    return built, server.password if server else None


def row_columns(settings: Settings) -> dict[str, list[str]]:
    """The columns of each row dataset, read from its database (the warehouse's from the engine
    that serves it)."""
    columns, serving = {}, engine(settings)
    with psycopg.connect(database_url(settings)) as conn:
        for name, dataset in datasets().items():
            if dataset.database == "warehouse":
                columns[name] = serving.columns(dataset.view)
            else:
                columns[name] = [c.name for c in conn.execute(f"select * from {dataset.view} limit 0").description]
    return columns


def check_semantic_views(settings: Settings) -> None:
    """The datasets read views in the warehouse: the semantic layer's, each with the columns
    the semantic layer gives it now, and the row datasets' (a warehouse built before a change
    of either has older views, or none)."""
    from olist_bi.semantic.flat import SCHEMA, flat_model

    catalog = load()
    expected = {f"{SCHEMA}.{flat.view}": list(flat.columns) for flat in (flat_model(name, catalog) for name in catalog.models)}
    expected |= {view: None for view in warehouse_views()}  # any columns: the bundle reads them from the view
    serving = engine(settings)
    for view, columns in expected.items():
        found = serving.columns(view)
        if not found or (columns is not None and found != columns):
            raise RuntimeError(
                f"the warehouse's view {view} does not match the semantic layer and the dashboards (built before a change to them?): "
                "rebuild the warehouse with `olist-bi etl run --full`, then provision again"
            )


def provision(settings: Settings, say=print) -> SupersetProvisioning:
    if engine(settings).ledger() is None:
        raise RuntimeError(f"no warehouse at {engine(settings).location}: load a drop first (`olist-bi etl run --source DIR`)")
    check_semantic_views(settings)
    report = SupersetProvisioning()
    client = SupersetClient(settings.superset_base_url, ADMIN_USER, admin_password(settings))
    before = _counts(client)

    say("superset: importing the asset bundle (connections, datasets, charts, dashboards) ...")
    reader = ensure_ops_reader(settings)
    ops_uri, ops_password = reader.sqlalchemy_uri(), reader.password
    built, warehouse_password = build_bundle(settings, ops_uri)
    passwords = {f"databases/{bundle_module.OPERATIONS}.yaml": ops_password}
    if warehouse_password is not None:
        passwords[f"databases/{bundle_module.WAREHOUSE}.yaml"] = warehouse_password
    client.post(
        "/api/v1/assets/import/",
        files={"bundle": ("olist_bi_assets.zip", built.zip_bytes(), "application/zip")},
        data={"passwords": json.dumps(passwords)},
    )
    ids = ids_by_uuid(client)
    _scope_filters(client, built, ids)

    say("superset: roles, permissions, row-level security and who may open each dashboard ...")
    report.roles = _roles(client, built, ids)
    _row_level_security(client, built, ids, report.roles)
    _dashboard_roles(client, built, ids, report.roles)
    groups = _groups(client, report.roles)
    if settings.is_demo:
        report.users = _demo_users(settings, client, report.roles, groups)

    say("superset: reports and alerts (platform/notify/reports.yaml) ...")
    reports.provision(settings, client, ids)

    report.counts = _counts(client)
    for kind, count in report.counts.items():
        if count != before.get(kind):
            report.changes.append(f"{kind}: {before.get(kind, 0)} -> {count}")
    from olist_bi.operations import audit, store

    with store.connect(database_url(settings)) as ops:
        record_access_model(ops, report)
        details = {"counts": report.counts, "changes": report.changes, "roles": sorted(report.roles), "demo_users": sorted(report.users)}
        audit.append(ops, "superset.provisioned", settings.superset_base_url, details, source="superset")
    return report


def _counts(client: SupersetClient) -> dict[str, int]:
    counts = {}
    for kind, path in (("databases", "database"), ("datasets", "dataset"), ("charts", "chart"), ("dashboards", "dashboard")):
        counts[kind] = client.get(f"/api/v1/{path}/", q="(page_size:1)")["count"]
    counts["roles"] = len(client.list_all("/api/v1/security/roles/", order="id"))
    counts["groups"] = len(client.list_all("/api/v1/security/groups/", order="id"))
    counts["row_level_security"] = client.get("/api/v1/rowlevelsecurity/", q="(page_size:1)")["count"]
    counts["reports_and_alerts"] = client.get("/api/v1/report/", q="(page_size:1)")["count"]
    return counts


def ids_by_uuid(client: SupersetClient) -> dict[str, int]:
    ids = {}
    for path in ("database", "dataset", "chart", "dashboard"):
        for row in client.list_all(f"/api/v1/{path}/", ["id", "uuid"], order="changed_on_delta_humanized" if path != "database" else None):
            ids[str(row["uuid"])] = row["id"]
    return ids


def _scope_filters(client: SupersetClient, built: bundle_module.Bundle, ids: dict[str, int]) -> None:
    """Exclude from each native filter the charts it cannot filter (their dataset lacks the
    column); chart ids are known only after the import, so this runs after it."""
    catalog = load()
    for dashboard in built.dashboards:
        if not dashboard.filters:
            continue
        dashboard_id = ids[dashboard.uuid()]
        metadata = json.loads(client.get(f"/api/v1/dashboard/{dashboard_id}")["result"]["json_metadata"])
        all_charts = {c.key: ids[dashboard.chart_uuid(c)] for c in dashboard.charts}
        for native in metadata.get("native_filter_configuration", []):
            dimension = native["id"].removeprefix("NATIVE_FILTER-")
            targets = {c.key for c in filter_targets(dashboard, dimension, catalog)}
            native["scope"] = {"rootPath": ["ROOT_ID"], "excluded": [i for k, i in all_charts.items() if k not in targets]}
            native["chartsInScope"] = [i for k, i in all_charts.items() if k in targets]
        client.put(f"/api/v1/dashboard/{dashboard_id}", {"json_metadata": json.dumps(metadata)})


def _permissions(client: SupersetClient) -> dict[tuple[str, str], int]:
    rows = client.list_all("/api/v1/security/permissions-resources/", order="id")
    return {(r["permission"]["name"], r["view_menu"]["name"]): r["id"] for r in rows}


def _role_id(client: SupersetClient, name: str) -> int:
    found = client.get("/api/v1/security/roles/", q=f"(filters:!((col:name,opr:eq,value:{name})))")["result"]
    if found:
        return found[0]["id"]
    return client.post("/api/v1/security/roles/", {"name": name})["id"]


def _role_permissions(client: SupersetClient, name: str, by_pair: dict[tuple[str, str], int]) -> set[int]:
    role = _role_id(client, name)
    rows = client.get(f"/api/v1/security/roles/{role}/permissions/")["result"]
    found = set()
    for r in rows:
        pair = (r.get("permission_name"), r.get("view_menu_name"))
        if pair in by_pair:
            found.add(by_pair[pair])
        elif "id" in r:
            found.add(r["id"])
    return found


def _permission(by_pair: dict[tuple[str, str], int], permission: str, view: str) -> int:
    if (permission, view) not in by_pair:
        raise RuntimeError(
            f"Superset has no permission {permission} on {view} (platform/bi/superset/reader.yaml names it): another Superset version?"
        )
    return by_pair[(permission, view)]


def _access(by_pair: dict[tuple[str, str], int], permission: str, suffix: str) -> int:
    for (perm, view), pid in by_pair.items():
        if perm == permission and view.endswith(suffix):
            return pid
    raise RuntimeError(f"Superset has no {permission} permission on a view ending with {suffix!r}")


def _roles(client: SupersetClient, built: bundle_module.Bundle, ids: dict[str, int]) -> dict[str, int]:
    """olist_viewer (dashboards only), olist_analyst (viewer + explore + SQL Lab on the
    warehouse), olist_admin (everything, the operations store included), the regional role."""
    by_pair = _permissions(client)
    gamma = _role_permissions(client, "Gamma", by_pair)
    sql_lab = _role_permissions(client, "sql_lab", by_pair)
    admin = _role_permissions(client, "Admin", by_pair)

    def dataset_access(names) -> set[int]:
        return {_access(by_pair, "datasource_access", f"(id:{ids[built.datasets[n].uuid]})") for n in names}

    read_only = {_permission(by_pair, permission, view) for permission, view in yaml.safe_load(READER.read_text())["permissions"]}
    warehouse_db = _access(by_pair, "database_access", f"(id:{ids[bundle_module.database_uuid(bundle_module.WAREHOUSE)]})")
    grants = {  # the roles of access.yaml
        "olist_viewer": read_only | dataset_access(readable_datasets("olist_viewer")),
        "olist_analyst": gamma | sql_lab | dataset_access(readable_datasets("olist_analyst")) | {warehouse_db},
        "olist_admin": admin,
        **{role: read_only | dataset_access(readable_datasets(role)) for role in access.scopes()},
    }
    roles = {}
    for name, permission_ids in grants.items():
        role = _role_id(client, name)
        client.post(f"/api/v1/security/roles/{role}/permissions", {"permission_view_menu_ids": sorted(permission_ids)})
        roles[name] = role
    return roles


def readable_datasets(role: str) -> tuple[str, ...] | None:
    """The datasets a platform role may read (None: all of them)."""
    if role == "olist_admin":
        return None
    if role in access.scopes():
        return REGIONAL["datasets"] + REGIONAL["unfiltered"] + REGIONAL["scoped"]
    return BUSINESS_DATASETS


def dashboard_roles(dashboard) -> list[str]:
    """The platform roles that may open a dashboard: those that may read every dataset of
    its charts, so that nobody opens a dashboard holding a chart they may not read."""
    catalog = load()
    needed = {chart_source(c, catalog) for c in dashboard.charts}
    return [r for r in access.roles() if (readable := readable_datasets(r)) is None or needed <= set(readable)]


def _dashboard_roles(client: SupersetClient, built: bundle_module.Bundle, ids: dict[str, int], roles: dict[str, int]) -> None:
    """Each dashboard's Roles field (DASHBOARD_RBAC): the roles that may open it. Superset
    then shows a dashboard to those roles only (and to admins and owners)."""
    for dashboard in built.dashboards:
        client.put(f"/api/v1/dashboard/{ids[dashboard.uuid()]}", {"roles": [roles[r] for r in dashboard_roles(dashboard)]})


def _groups(client: SupersetClient, roles: dict[str, int]) -> dict[str, int]:
    """One group per platform role, named after it and holding it, with the role's
    description (access.yaml): Flask-AppBuilder's roles have no description field, its
    groups do (Security > List Groups), and an admin may add users to a group instead."""
    existing = {g["name"]: g["id"] for g in client.list_all("/api/v1/security/groups/", ["id", "name"], order="id")}
    groups = {}
    for name, description in access.roles().items():
        payload = {"name": name, "description": description, "roles": [roles[name]]}
        if name in existing:
            client.put(f"/api/v1/security/groups/{existing[name]}", payload)
            groups[name] = existing[name]
        else:
            groups[name] = client.post("/api/v1/security/groups/", payload)["id"]
    return groups


def _row_level_security(client: SupersetClient, built: bundle_module.Bundle, ids: dict[str, int], roles: dict[str, int]) -> None:
    tables = lambda names: [ids[built.datasets[n].uuid] for n in names]  # noqa: E731
    scoped = access.scopes()
    for role, (column, value) in scoped.items():
        _rls_filter(
            client,
            f"{role}: {column} = {value}",
            f"A regional manager sees the customers of {value} only.",
            "Regular",
            tables(REGIONAL["datasets"]),
            [roles[role]],
            f"{column} = '{value}'",
        )
    for name in REGIONAL["scoped"]:
        column, default = datasets()[name].scope
        # A Base filter applies to everyone but the roles it names: every reader sees the default scope ...
        _rls_filter(
            client,
            f"{name}: {column} = {default}",
            f"Everyone reads the {default} rows of {name}, but roles with their own scope.",
            "Base",
            tables([name]),
            [roles[role] for role in scoped],
            f"{column} = '{default}'",
        )
        # ... and each regional manager the rows of its own value.
        for role, (_, value) in scoped.items():
            _rls_filter(
                client,
                f"{role}: {name} {column} = {value}",
                f"A regional manager reads the {value} rows of {name}.",
                "Regular",
                tables([name]),
                [roles[role]],
                f"{column} = '{value}'",
            )


def _rls_filter(client: SupersetClient, name: str, description: str, kind: str, tables: list[int], roles: list[int], clause: str) -> None:
    payload = {
        "name": name,
        "description": description,
        "filter_type": kind,
        "tables": tables,
        "roles": roles,
        "clause": clause,
        "group_key": "",
    }
    existing = client.named("/api/v1/rowlevelsecurity/", name)
    if existing:
        client.put(f"/api/v1/rowlevelsecurity/{existing[0]['id']}", payload)
    else:
        client.post("/api/v1/rowlevelsecurity/", payload)


def _demo_users(settings: Settings, client: SupersetClient, roles: dict[str, int], groups: dict[str, int]) -> dict[str, str]:
    """One user per role, local demo only; passwords generated into $OLIST_HOME/secrets."""
    logins = {}
    existing = {u["username"]: u["id"] for u in client.list_all("/api/v1/security/users/", ["id", "username"], order="id")}
    for username, role_names in access.demo_users().items():
        password = access.demo_password(settings, username)
        payload = {
            "first_name": username.replace("_", " ").title(),
            "last_name": "Demo",
            "username": username,
            "email": access.demo_email(username),
            "password": password,
            "active": True,
            "roles": [roles[r] for r in role_names],
            "groups": [groups[r] for r in role_names],
        }
        if username in existing:
            client.put(f"/api/v1/security/users/{existing[username]}", payload)
        else:
            client.post("/api/v1/security/users/", payload)
        logins[username] = password
    return logins


def chart_ids(client: SupersetClient) -> dict[str, int]:
    """Chart ids of the provisioned dashboards, by '<slug>/<chart key>'."""
    ids = ids_by_uuid(client)
    return {f"{d.slug}/{c.key}": ids[d.chart_uuid(c)] for d in dashboards() for c in d.charts if d.chart_uuid(c) in ids}


def record_access_model(ops, report: SupersetProvisioning) -> None:
    """Write the declared roles and the users provisioned into the operations store."""
    for name, description in access.roles().items():
        ops.execute(
            """insert into roles (name, description, source) values (%s, %s, 'platform')
               on conflict (name) do update set description = excluded.description, updated_at = now()""",
            (name, description),
        )
    for username in report.users:
        ops.execute(
            """insert into users (username, roles, source) values (%s, %s, 'platform')
               on conflict (source, username) do update set roles = excluded.roles, updated_at = now()""",
            (username, list(access.demo_users()[username])),
        )

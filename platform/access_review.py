"""The access review: what changed in Superset's users, roles and permissions since the last
look, and who ran what in SQL Lab, recorded in the audit trail.

Admins change access in Superset's UI, so the platform cannot log those changes as they
happen. The scheduler runs this job periodically (OLIST_ACCESS_REVIEW_MINUTES): it snapshots
users, their roles and each role's permissions through Superset's REST API, compares the
snapshot with the previous one kept in `access_snapshots`, and appends one audit event per
difference, with the actor and time Superset records for it where it has them. It then
copies the SQL Lab queries run since the last review (user, database, SQL, status, time).
"""

from __future__ import annotations

import datetime as dt
import json

import psycopg

from olist_bi.operations import audit, store
from olist_bi.operations.postgres import database_url
from olist_bi.settings import Settings
from olist_bi.superset.client import SupersetClient
from olist_bi.superset.server import ADMIN_USER, admin_password

TOOL = "superset"
SQL_EXCERPT = 2000


def snapshot(client: SupersetClient) -> dict:
    """Users (active, roles, who changed them last and when) and roles (permissions)."""
    users = client.list_all("/api/v1/security/users/", order="id")
    by_id = {u["id"]: u["username"] for u in users}
    roles = client.list_all("/api/v1/security/roles/", order="id")
    role_permissions = {}
    for role in roles:
        rows = client.get(f"/api/v1/security/roles/{role['id']}/permissions/")["result"]
        role_permissions[role["name"]] = sorted(f"{r['permission_name']} on {r['view_menu_name']}" for r in rows)
    return {
        "users": {
            u["username"]: {
                "active": u["active"],
                "roles": sorted(r["name"] for r in u["roles"]),
                "changed_by": by_id.get((u.get("changed_by") or {}).get("id")),
                "changed_on": u.get("changed_on"),
            }
            for u in users
        },
        "roles": role_permissions,
        "user_names": {str(k): v for k, v in by_id.items()},
    }


def differences(before: dict, after: dict) -> list[tuple[str, str, dict, str | None]]:
    """(action, target, details, actor) for every change from `before` to `after`."""
    events = []
    old_users, new_users = before.get("users", {}), after["users"]
    for name, user in new_users.items():
        actor = user.get("changed_by")
        when = {"changed_on": user.get("changed_on")}
        if name not in old_users:
            events.append(("access.user.added", name, {"roles": user["roles"], "active": user["active"], **when}, actor))
            continue
        old = old_users[name]
        for role in sorted(set(user["roles"]) - set(old["roles"])):
            events.append(("access.role.granted", name, {"role": role, **when}, actor))
        for role in sorted(set(old["roles"]) - set(user["roles"])):
            events.append(("access.role.revoked", name, {"role": role, **when}, actor))
        if old["active"] != user["active"]:
            events.append(("access.user.activated" if user["active"] else "access.user.deactivated", name, when, actor))
    for name in sorted(set(old_users) - set(new_users)):
        events.append(("access.user.removed", name, {"roles": old_users[name]["roles"]}, None))
    old_roles, new_roles = before.get("roles", {}), after["roles"]
    for name, permissions in new_roles.items():
        if name not in old_roles:
            events.append(("access.role.created", name, {"permissions": len(permissions)}, None))
            continue
        added = sorted(set(permissions) - set(old_roles[name]))
        removed = sorted(set(old_roles[name]) - set(permissions))
        if added or removed:
            events.append(("access.role.permissions_changed", name, {"added": added, "removed": removed}, None))
    for name in sorted(set(old_roles) - set(new_roles)):
        events.append(("access.role.deleted", name, {}, None))
    return events


def copy_sql_lab(client: SupersetClient, ops: psycopg.Connection, after: float, user_names: dict[str, str]) -> float:
    """Append one `sqllab.query` event per query started after `after` (epoch ms, Superset's
    own clock); return the start time of the last one copied."""
    last = after
    page = 0
    while True:
        q = f"(filters:!((col:start_time,opr:gt,value:{after!r})),order_column:start_time,order_direction:asc,page:{page},page_size:100)"
        rows = client.get("/api/v1/query/", q=q)["result"]
        for row in rows:
            user = row.get("user") or {}
            actor = user_names.get(str(user.get("id")), f"superset-user:{user.get('id')}")
            started = dt.datetime.fromtimestamp(row["start_time"] / 1000, dt.UTC).isoformat() if row.get("start_time") else None
            details = {
                "query_id": row["id"],
                "database": (row.get("database") or {}).get("database_name"),
                "sql": (row.get("sql") or "")[:SQL_EXCERPT],
                "status": row.get("status"),
                "rows": row.get("rows"),
                "started_at": started,
            }
            audit.append(ops, "sqllab.query", details["database"], details, actor=f"superset:{actor}", source="sqllab")
            last = max(last, row.get("start_time") or last)
        if len(rows) < 100:
            return last
        page += 1


def run(settings: Settings) -> list[str]:
    """Review Superset once; return the actions recorded."""
    client = SupersetClient(settings.superset_base_url, ADMIN_USER, admin_password(settings))
    now = snapshot(client)
    recorded = []
    with store.connect(database_url(settings)) as ops:
        previous = ops.execute("select snapshot, last_query_time from access_snapshots where tool = %s", (TOOL,)).fetchone()
        if previous is None:
            details = {"users": len(now["users"]), "roles": len(now["roles"])}
            audit.append(ops, "access.snapshot.first", TOOL, details, actor="access_review", source="access_review")
            recorded.append("access.snapshot.first")
            last_query = 0.0
        else:
            for action, target, details, actor in differences(previous["snapshot"], now):
                audit.append(ops, action, target, details, actor=f"superset:{actor}" if actor else "superset:unknown", source="access_review")
                recorded.append(action)
            last_query = previous["last_query_time"]
        last_query = copy_sql_lab(client, ops, last_query, now["user_names"])
        ops.execute(
            """insert into access_snapshots (tool, taken_at, snapshot, last_query_time) values (%s, now(), %s, %s)
               on conflict (tool) do update set taken_at = now(), snapshot = excluded.snapshot, last_query_time = excluded.last_query_time""",
            (TOOL, json.dumps(now), last_query),
        )
        for name, user in now["users"].items():
            ops.execute(
                """insert into users (username, roles, active, source) values (%s, %s, %s, 'superset')
                   on conflict (username) do update set roles = excluded.roles, active = excluded.active, updated_at = now()""",
                (name, user["roles"], user["active"]),
            )
    return recorded


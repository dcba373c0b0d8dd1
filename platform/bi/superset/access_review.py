"""Superset's access review: its users, roles and role permissions, read over its REST API,
and the SQL Lab history (who ran what, on which database, when), copied into the audit trail.
The comparison and the audit events are `olist_bi.access.review`'s."""

from __future__ import annotations

import datetime as dt

import psycopg

from olist_bi.access import review as access_review
from olist_bi.operations import audit
from olist_bi.settings import Settings
from olist_bi.bi.superset.client import SupersetClient

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


def run(settings: Settings, client: SupersetClient) -> list[str]:
    """Review Superset once, as its admin (`client`); return the actions recorded."""
    now = snapshot(client)
    return access_review.record(settings, TOOL, now, lambda ops, since: copy_sql_lab(client, ops, since, now["user_names"]))

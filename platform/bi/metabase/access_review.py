"""Metabase's access review: its users (active, groups), its groups and what each group may do
(the data permission graph and the collection graph), read over Metabase's REST API as its
admin. The comparison and the audit events are `olist_bi.access.review`'s.

What the open-source edition's API gives and does not give (read in Metabase's source,
users_rest/api.clj, permissions_rest/api.clj, collections_rest/api.clj):
- `GET /api/user/?status=all`: every user, deactivated ones too, each with `group_ids` and
  `updated_at` (for an admin), so a change to a user carries the time of its last update;
- `GET /api/permissions/graph` and `GET /api/collection/graph`: each group's permissions per
  database and per collection;
- no "changed by": who made a change is in Metabase's own audit log, which only the paid
  edition's audit app reads, so the events' actor is `metabase:unknown`;
- no query history: native queries run in Metabase are not copied (Superset's SQL Lab is).
"""

from __future__ import annotations

from olist_bi.access import review as access_review
from olist_bi.bi.metabase.client import MetabaseClient
from olist_bi.settings import Settings

TOOL = "metabase"


def snapshot(client: MetabaseClient) -> dict:
    """Users by e-mail (active, groups, last update) and groups (their permissions, as lines
    such as `create-queries: query-builder-and-native on database Olist warehouse`)."""
    groups = {g["id"]: g["name"] for g in client.get("/api/permissions/group")}
    databases = {str(d["id"]): d["name"] for d in client.get("/api/database/")["data"]}
    collections = {str(c["id"]): c["name"] for c in client.get("/api/collection/")}
    data = client.get("/api/permissions/graph")["groups"]
    shared = client.get("/api/collection/graph")["groups"]
    roles = {}
    for group_id, name in groups.items():
        lines = [
            f"{key}: {value} on database {databases.get(db, db)}"
            for db, perms in data.get(str(group_id), {}).items()
            for key, value in _flat(perms)
        ]
        lines += [f"{level} on collection {collections.get(c, c)}" for c, level in shared.get(str(group_id), {}).items() if level != "none"]
        roles[name] = sorted(lines)
    users = client.get("/api/user/", status="all")["data"]
    return {
        "users": {
            u["email"]: {
                "active": u["is_active"],
                "roles": sorted(groups.get(g, f"group {g}") for g in u.get("group_ids") or []),
                "changed_by": None,
                "changed_on": u.get("updated_at"),
            }
            for u in users
        },
        "roles": roles,
    }


def _flat(perms: dict, prefix: str = ""):
    """(key, value) pairs of a group's permissions on one database; a value given per schema or
    table (a nested map) becomes one pair per leaf, its key the path (`download/PUBLIC/12`)."""
    for key, value in perms.items():
        path = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, dict):
            yield from _flat(value, path)
        else:
            yield path, value


def run(settings: Settings, client: MetabaseClient) -> list[str]:
    """Review Metabase once, as its admin (`client`, signed in); return the actions recorded."""
    return access_review.record(settings, TOOL, snapshot(client))

"""The access review: what changed in each BI tool's users, groups (roles) and permissions since
the last look, recorded in the audit trail.

Admins change access in the tools' own UIs, so the platform cannot log those changes as they
happen. The scheduler runs each tool's review periodically (OLIST_ACCESS_REVIEW_MINUTES,
`olist_bi.bi.review_access`): the tool takes a snapshot of its users, their roles (Superset)
or groups (Metabase) and each role's permissions through its REST API (bi/superset/access_review.py,
metabase/access_review.py), and `record` compares it with the previous snapshot of that tool
kept in `access_snapshots`, appends one audit event per difference, with the actor and time the
tool records for it where it has them, and keeps the users it saw in `users` (source = the tool).
A tool with a query history the API exposes (Superset's SQL Lab) copies it too.
"""

from __future__ import annotations

import json
from typing import Callable

import psycopg

from olist_bi.operations import audit, store
from olist_bi.operations.postgres import database_url
from olist_bi.settings import Settings

# (ops, start mark) -> new mark: copies the tool's queries started after the mark (epoch ms).
CopyQueries = Callable[[psycopg.Connection, float], float]


def differences(before: dict, after: dict) -> list[tuple[str, str, dict, str | None]]:
    """(action, target, details, actor) for every change from `before` to `after`."""
    old_users, new_users = before.get("users", {}), after["users"]
    events = _user_differences(old_users, new_users)
    old_roles, new_roles = before.get("roles", {}), after["roles"]
    return events + _role_differences(old_roles, new_roles)


def _user_differences(old_users: dict, new_users: dict) -> list[tuple[str, str, dict, str | None]]:
    """The events of users added, removed, granted or revoked a role, activated or deactivated."""
    events = []
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
    return events


def _role_differences(old_roles: dict, new_roles: dict) -> list[tuple[str, str, dict, str | None]]:
    """The events of roles created, deleted, or given or denied permissions."""
    events = []
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


def record(settings: Settings, tool: str, now: dict, copy_queries: CopyQueries | None = None) -> list[str]:
    """Compare `now` (users: name -> {active, roles, changed_by, changed_on}; roles: name ->
    [permission]) with `tool`'s last snapshot, audit every difference, keep `now`; return the
    actions recorded. The first snapshot of a tool is recorded as one `access.snapshot.first`."""
    recorded = []
    with store.connect(database_url(settings)) as ops:
        previous = ops.execute("select snapshot, last_query_time from access_snapshots where tool = %s", (tool,)).fetchone()
        if previous is None:
            details = {"users": len(now["users"]), "roles": len(now["roles"])}
            audit.append(ops, "access.snapshot.first", tool, details, actor="access_review", source="access_review")
            recorded.append("access.snapshot.first")
            last_query = 0.0
        else:
            for action, target, details, actor in differences(previous["snapshot"], now):
                audit.append(ops, action, target, details, actor=f"{tool}:{actor or 'unknown'}", source="access_review")
                recorded.append(action)
            last_query = previous["last_query_time"]
        if copy_queries is not None:
            last_query = copy_queries(ops, last_query)
        ops.execute(
            """insert into access_snapshots (tool, taken_at, snapshot, last_query_time) values (%s, now(), %s, %s)
               on conflict (tool) do update set taken_at = now(), snapshot = excluded.snapshot,
                 last_query_time = excluded.last_query_time""",
            (tool, json.dumps(now), last_query),
        )
        for name, user in now["users"].items():
            ops.execute(
                """insert into users (username, roles, active, source) values (%s, %s, %s, %s)
                   on conflict (source, username) do update set roles = excluded.roles, active = excluded.active, updated_at = now()""",
                (name, user["roles"], user["active"], tool),
            )
    return recorded

"""Superset's security manager for the platform: Superset's own, with the permission lookups
its role editor needs, and chart-data cache keys that tell readers from those who may query
the whole database. Runs inside Superset (superset_config.py names it as
CUSTOM_SECURITY_MANAGER).

Why: Superset 6.1's Edit Role form looks up a role's permissions with
`GET /api/v1/security/permissions-resources/?q=(filters:!((col:id,opr:in,...)))` and searches
them by `view_menu.name` and `permission.name` (`opr:ct`). Flask-AppBuilder 5.3's API behind
that endpoint allows no filter at all on it, so the form showed permission ids ("193, 191,
185...") and "There was an error loading permissions" (a 400: "Filter column: id not allowed
to filter"; apache/superset#40293, #39967). Declaring the columns searchable is not enough:
FAB finds no filters for the dotted names itself, so the three filters the form uses are
given here. The endpoint stays behind the same permission (can_read on PermissionViewMenu:
admins only). Remove once Superset or FAB allows these filters;
tests/superset/test_admin.py checks the form either way.
"""

from __future__ import annotations

from flask_appbuilder.models.sqla.filters import FilterContains, FilterIn
from flask_appbuilder.security.sqla.apis import PermissionViewMenuApi
from superset.security import SupersetSecurityManager

ROLE_EDITOR_FILTERS = {"id": [FilterIn], "permission.name": [FilterContains], "view_menu.name": [FilterContains]}


class SearchablePermissionViewMenuApi(PermissionViewMenuApi):
    search_columns = list(ROLE_EDITOR_FILTERS)

    def _init_properties(self) -> None:
        super()._init_properties()
        self._filters._search_filters = {**self._filters._search_filters, **ROLE_EDITOR_FILTERS}


class SecurityManager(SupersetSecurityManager):
    permission_view_menu_api = SearchablePermissionViewMenuApi

    def get_rls_cache_key(self, datasource) -> list[str]:
        """Superset's cache key of a chart-data answer holds the user's row-level security
        clauses, not what else the user may read: an admin's answer to a custom SQL metric that
        reads raw.customers was served from the cache to a viewer, whose own request the query
        guard (scope.py) refuses. The key now also says whether the user may query the whole
        database (readers without that share answers only with their own roles), and which row
        scope's copy of the data the user reads (scope.connection), RLS rules or not.
        (tests/superset/test_scope.py)"""
        from olist_bi.bi.superset.scope import scopes_of

        key = super().get_rls_cache_key(datasource)
        scope = [f"olist-scope:{','.join(scoped)}"] if (scoped := scopes_of(self.current_user)) else []  # its own copy of the data
        database = getattr(datasource, "database", None)
        if database is not None and self.can_access_database(database):
            return [*key, *scope, "olist-reach:database"]
        roles = sorted(role.name for role in getattr(self.current_user, "roles", None) or [])
        return [*key, *scope, "olist-reach:datasets:" + ",".join(roles)]

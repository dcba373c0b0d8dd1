"""Two walls under Superset's permissions and row-level security.

The first is data: a user whose role has a row scope (access.yaml `scopes`) has every
connection Superset opens for it (charts, exports, samples, drill-downs, filter values,
alerts and reports run as that user, SQL Lab) pointed at the scope's copy of the warehouse,
which holds only the scope's rows (etl/readers.py). That is `connection`, Superset's
DB_CONNECTION_MUTATOR: no SQL, however it is built, returns a row the file does not hold. A
user with roles of two different scopes is refused a connection.

The second, `guard`, is Superset's SQL_QUERY_MUTATOR, on the text:

Superset's row-level security adds its predicate to the WHERE of the query it generates, and
checks a custom SQL expression for sub-queries only. A custom SQL metric that appends a set
operation (`count(*) from semantic.olist_deliveries group by customer_state union all select
customer_state, count(*)`) puts a branch of its own before Superset's FROM and WHERE: the
predicate lands on the last branch only, and the regional manager read every state, and any
table (raw.customers), through the chart-data API (seen on 6.1, 2026-12-06).

The viewer, who may open a few datasets and no SQL, could read any raw table the same way.
So every statement Superset runs for a user who may not read the whole database (a dashboard
reader, the regional manager: no SQL Lab on it), or whose role has a row scope (access.yaml
`scopes`), is parsed (sqlglot, DuckDB's dialect) and refused unless:
- it combines no queries (no UNION, INTERSECT or EXCEPT);
- every relation it reads is one of the user's datasets (a table function, another schema,
  a dataset of another role: refused);
- every SELECT that reads a dataset with row-level security for the user carries each of that
  dataset's predicates in its own WHERE (so no sub-query or CTE reads around it).

This one is text-level, like RLS itself; it keeps a reader to its own datasets (which the
data wall does not: the reader copy holds every dataset) and refuses early what would read past
a scope. Analysts and admins, who may query the whole database in SQL Lab anyway, are untouched
unless their role has a scope.
"""

from __future__ import annotations

from typing import Callable

import sqlglot
from sqlglot import exp

# (schema, name) -> the RLS predicates the user's rows must meet on that relation, or None
# when the relation is not one of the user's datasets.
Predicates = Callable[[str, str], "list[str] | None"]


def _conjuncts(where: exp.Expression | None) -> set[str]:
    """The normalised terms of a WHERE's top-level AND."""
    if where is None:
        return set()
    terms, stack = set(), [where.this if isinstance(where, exp.Where) else where]
    while stack:
        node = stack.pop()
        while isinstance(node, exp.Paren):
            node = node.this
        if isinstance(node, exp.And):
            stack += [node.left, node.right]
        else:
            terms.add(node.sql(dialect="duckdb").lower())
    return terms


def _normalised(clause: str) -> str:
    condition = sqlglot.parse_one(clause, read="duckdb")
    while isinstance(condition, exp.Paren):
        condition = condition.this
    return condition.sql(dialect="duckdb").lower()


def unguarded(sql: str, predicates: Predicates) -> list[str]:
    """What in `sql` could read past a scoped user's rows; empty when nothing can."""
    try:
        statements = sqlglot.parse(sql, read="duckdb")
    except sqlglot.errors.ParseError as e:
        return [f"the statement cannot be checked ({str(e).splitlines()[0]})"]
    problems: list[str] = []
    for statement in filter(None, statements):
        if any(True for _ in statement.find_all(exp.Union, exp.Intersect, exp.Except)):
            problems.append("it combines queries (UNION, INTERSECT or EXCEPT)")
        ctes = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
        for table in statement.find_all(exp.Table):
            if not isinstance(table.this, exp.Identifier):
                problems.append(f"it reads {table.sql(dialect='duckdb')}, not a dataset")
                continue
            schema, name = (table.db or "").lower(), table.name.lower()
            if not schema and name in ctes:
                continue  # a CTE of the statement: its own SELECTs are checked where they read
            required = predicates(schema, name)
            if required is None:
                problems.append(f"it reads {schema + '.' if schema else ''}{name}, which is not one of your datasets")
                continue
            select = table.find_ancestor(exp.Select)
            present = _conjuncts(select.args.get("where") if select else None)
            missing = [clause for clause in required if _normalised(clause) not in present]
            if missing:
                problems.append(f"it reads {schema}.{name} without its row filter ({'; '.join(missing)})")
    return problems


def scoped(user) -> bool:
    return bool(scopes_of(user))


def scopes_of(user) -> list[str]:
    """The user's roles that have a row scope (access.yaml)."""
    from olist_bi import access

    names = {role.name for role in getattr(user, "roles", None) or []}
    return sorted(names & set(access.scopes()))


def connection(url, params: dict, username: str | None, security_manager, source=None):
    """DB_CONNECTION_MUTATOR: a scoped user's warehouse connections open the scope's copy
    (the reader copy's sibling, `<served stem>.<role>.duckdb`); everyone else's are unchanged."""
    if url.drivername != "duckdb+olist":
        return url, params
    from flask import g

    user = getattr(g, "user", None)
    if getattr(user, "username", None) != username:
        user = security_manager.find_user(username=username)
    roles = scopes_of(user)
    if not roles:
        return url, params
    if len(roles) > 1:
        from superset.errors import ErrorLevel, SupersetError, SupersetErrorType
        from superset.exceptions import SupersetSecurityException

        raise SupersetSecurityException(
            SupersetError(
                error_type=SupersetErrorType.DATABASE_SECURITY_ACCESS_ERROR,
                message=f"Your roles have two row scopes ({', '.join(roles)}): ask an administrator to leave you one",
                level=ErrorLevel.ERROR,
            )
        )
    from olist_bi.engines.duckdb.warehouse import sibling_copy

    return url.set(database=str(sibling_copy(url.database, roles[0]))), params


def guard(sql: str, security_manager=None, database=None, **kwargs) -> str:
    """SQL_QUERY_MUTATOR: `sql` unchanged, or a refusal naming what would read past a user's
    datasets or rows."""
    from flask import g

    user = getattr(g, "user", None)
    if user is None or database is None:
        return sql
    if not scoped(user) and security_manager.can_access_database(database):
        return sql  # may read every relation of the database (SQL Lab): nothing to step around
    from superset.connectors.sqla.models import SqlaTable
    from superset.errors import ErrorLevel, SupersetError, SupersetErrorType
    from superset.exceptions import SupersetSecurityException
    from superset.extensions import db

    def predicates(schema: str, name: str) -> list[str] | None:
        dataset = (
            db.session.query(SqlaTable)
            .filter(SqlaTable.database_id == database.id, SqlaTable.table_name == name, SqlaTable.schema == (schema or None))
            .one_or_none()
        )
        if dataset is None or not security_manager.can_access_datasource(dataset):
            return None
        return [f.clause for f in security_manager.get_rls_filters(dataset)]

    problems = unguarded(sql, predicates)
    if problems:
        raise SupersetSecurityException(
            SupersetError(
                error_type=SupersetErrorType.QUERY_SECURITY_ACCESS_ERROR,
                message="This query could read rows outside your datasets or your scope, so it was not run: "
                + "; ".join(dict.fromkeys(problems)),
                level=ErrorLevel.ERROR,
            )
        )
    return sql

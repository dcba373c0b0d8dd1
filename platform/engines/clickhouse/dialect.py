"""The warehouse's SQL, written once for DuckDB, read by ClickHouse.

Every model (`etl/models/**.sql`) and every query the semantic layer compiles is DuckDB SQL:
one source of truth. For ClickHouse it is transpiled by sqlglot, then a few rules of ours fix
what sqlglot's DuckDB-to-ClickHouse mapping leaves wrong for this project (each checked on
chdb against DuckDB's answer by tests/clickhouse):

- a series in FROM, `range(lo, hi, interval 1 day) as t(d)` (dim_date), becomes an ARRAY
  JOIN over the days: sqlglot's GENERATE_SERIES is refused by ClickHouse, and it would also
  include `hi` where DuckDB's range stops before it;
- a projection that is a bare qualified column (`c.city`) gets its name as an alias:
  ClickHouse would otherwise name the column `c.city` and later models would not find it;
- `strip_accents` becomes `removeDiacriticsUTF8`; `upper`, `lower` and `substring` their
  UTF-8 forms (ClickHouse's plain ones count bytes and change ASCII only);
- `n * interval '1 month'` becomes `interval n month` (ClickHouse multiplies no intervals);
- `median` becomes `quantileExactInclusive(0.5)` (ClickHouse's `median` is approximate);
- a cast to an integer or a boolean of a value that may not fit stays a cast (`try_cast` becomes
  `accurateCastOrNull`);
- a cast to an integer of hexadecimal text, `cast('0x' || h as bigint)` (the models' stable
  keys: the first 15 hex digits of an md5), reads the digits as bytes: ClickHouse parses no
  `0x` text, and its `MD5` gives the same digits once in lower-case hex, which sqlglot writes.

Two session settings make ClickHouse's semantics DuckDB's where the text cannot:
`join_use_nulls=1` (an outer join's missing side is NULL, not 0 or '') and
`prefer_column_name_to_alias=1` (a column of the same name as an alias means the column).

Table names are mapped as the caller says: a build reads `raw.orders` from the database the raw
tables were loaded into, and each model from the database it was built in. A query's `?`
parameters become ClickHouse's typed `{p0:Type}` ones (`to_clickhouse_query`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache

try:
    import sqlglot
    from sqlglot import exp
except ImportError as e:  # an optional dependency: the DuckDB engine does not need it
    raise ImportError("OLIST_WAREHOUSE_ENGINE=clickhouse needs sqlglot and clickhouse-connect: pip install 'olist-bi[clickhouse]'") from e

SETTINGS = {"join_use_nulls": 1, "prefer_column_name_to_alias": 1}

_FUNCTIONS = {
    "STRIP_ACCENTS": "removeDiacriticsUTF8",
}


class DialectError(ValueError):
    """A query uses DuckDB SQL that has no rule here for ClickHouse."""


def to_clickhouse(sql: str, tables: Mapping[str, str] | None = None, database: str | None = None) -> str:
    """`sql` (DuckDB) as ClickHouse SQL. `tables` renames tables as the source names them
    (`raw.orders`, `stg_orders`) to ClickHouse's `database.table`; other unqualified tables are
    read from `database` when given."""
    return _translate(sql, tuple(sorted((tables or {}).items())), database)


def to_clickhouse_query(sql: str, params: list, tables: Mapping[str, str] | None = None, database: str | None = None) -> tuple[str, dict]:
    """A query with DuckDB's `?` parameters as ClickHouse SQL with typed `{p0:Type}` ones, and
    the values by name."""
    types = tuple(_parameter_type(v) for v in params)
    text = _translate(_named_parameters(sql), tuple(sorted((tables or {}).items())), database, types)
    return text, {f"p{i}": v for i, v in enumerate(params)}


def tables_read(sql: str) -> set[str]:
    """The tables (not CTEs) `sql` reads, as it names them."""
    tree = _parse(sql)
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    return {".".join(p for p in (t.db, t.name) if p) for t in tree.find_all(exp.Table) if t.name not in ctes}


def _named_parameters(sql: str) -> str:
    """Each `?` (a token, not a `?` in a string) named `$p<N>` by its place in the text, so that
    a value is bound to its own placeholder wherever the parse tree puts it."""
    from sqlglot.tokens import TokenType

    marks = [t for t in sqlglot.Dialect.get_or_raise("duckdb").tokenize(sql) if t.token_type == TokenType.PLACEHOLDER and t.text == "?"]
    for i, token in reversed(list(enumerate(marks))):
        sql = sql[: token.start] + f"$p{i}" + sql[token.end + 1 :]
    return sql


_OPTIONAL = re.compile(r"\[\[(.*?)\]\]", re.S)
_TAG = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def to_clickhouse_native(sql: str, tables: Mapping[str, str] | None = None, database: str | None = None) -> str:
    """A Metabase native question (DuckDB SQL with `{{tag}}` variables and `[[and ...]]`
    optional clauses) as ClickHouse SQL, its variables and clauses kept for Metabase to bind.
    Each optional clause stands in as `and __optional_N = 1` while the rest is transpiled, each
    variable outside one as the identifier `__tag_<name>`; both are put back as written."""
    clauses: list[str] = []

    def hold(match: re.Match) -> str:
        clauses.append(match.group(0))
        body = match.group(1).strip()
        if not body.lower().startswith("and "):
            raise DialectError(f"an optional clause must start with 'and': {match.group(0)}")
        return f" and __optional_{len(clauses) - 1} = 1 "

    text = _TAG.sub(lambda m: f"__tag_{m.group(1)}", _OPTIONAL.sub(hold, sql))
    out = to_clickhouse(text, tables, database)
    for i, clause in enumerate(clauses):
        out, found = re.subn(rf"\bAND __optional_{i} = 1\b", clause, out)
        if found != 1:
            raise DialectError(f"the optional clause {clause} did not survive the translation")
    return re.sub(r"\b__tag_([A-Za-z0-9_]+)\b", r"{{\1}}", out)


def _parameter_type(value) -> str:
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        return "Int64"
    if isinstance(value, (float, Decimal)):
        return "Float64"
    if isinstance(value, dt.datetime):
        return "DateTime64(6)"
    if isinstance(value, dt.date):
        return "Date32"
    if isinstance(value, str):
        return "String"
    raise DialectError(f"no ClickHouse parameter type for {type(value).__name__}")


@lru_cache(maxsize=1024)
def _translate(sql: str, tables: tuple[tuple[str, str], ...], database: str | None, parameters: tuple[str, ...] | None = None) -> str:
    renames = dict(tables)
    tree = _parse(sql)
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    _rewrite(tree)
    _rename_tables(tree, renames, database, ctes)
    if parameters is not None:
        _bind_parameters(tree, parameters)
    return tree.sql(dialect="clickhouse")


def _parse(sql: str) -> exp.Expression:
    """The one statement of `sql`, read as DuckDB SQL."""
    try:
        statements = sqlglot.parse(sql, read="duckdb")
    except sqlglot.errors.ParseError as e:
        raise DialectError(f"cannot read the query as DuckDB SQL: {e}") from e
    if len(statements) != 1 or statements[0] is None:
        raise DialectError("expected one SQL statement")
    return statements[0]


def _rewrite(tree: exp.Expression) -> None:
    """Apply the function rules to every node, children before their parents, then each select's rules."""
    for node in reversed(list(tree.walk())):  # children before their parents
        rewritten = _rules(node)
        if rewritten is not node:
            node.replace(rewritten)
    for select in tree.find_all(exp.Select):
        _alias_bare_columns(select)
        _series_to_array_join(select)


def _rename_tables(tree: exp.Expression, renames: dict[str, str], database: str | None, ctes: set[str]) -> None:
    """Point each table at its name in `renames` (`schema.*` renames every table of a schema:
    `semantic.*` -> `olist_semantic.*`), or else, unqualified and not a CTE, at `database`."""
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier):
            continue
        key = f"{table.db}.{table.name}" if table.db else table.name
        if key not in renames and table.db and f"{table.db}.*" in renames:
            renames = {**renames, key: renames[f"{table.db}.*"].replace("*", table.name)}
        if key in renames:
            target_db, _, target_name = renames[key].rpartition(".")
            table.set("this", exp.to_identifier(target_name))
            table.set("db", exp.to_identifier(target_db) if target_db else None)
        elif not table.db and database and table.name not in ctes:
            table.set("db", exp.to_identifier(database))


def _bind_parameters(tree: exp.Expression, parameters: tuple[str, ...]) -> None:
    """Replace the placeholders p0, p1, ... with ClickHouse's typed parameters {pN:Type}."""
    placeholders = list(tree.find_all(exp.Placeholder))
    names = sorted(str(n.this) for n in placeholders)
    if names != sorted(f"p{i}" for i in range(len(parameters))):
        raise DialectError(f"the query has {len(placeholders)} parameters, {len(parameters)} values were given")
    for node in placeholders:  # named by their place in the text (_named_parameters)
        node.replace(exp.Var(this=f"{{{node.this}:{parameters[int(str(node.this)[1:])]}}}"))


def _rules(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Anonymous) and node.name.upper() in _FUNCTIONS:
        return exp.Anonymous(this=_FUNCTIONS[node.name.upper()], expressions=node.expressions)
    if isinstance(node, exp.Upper):
        return exp.Anonymous(this="upperUTF8", expressions=[node.this])
    if isinstance(node, exp.Lower):
        return exp.Anonymous(this="lowerUTF8", expressions=[node.this])
    if isinstance(node, exp.Substring):
        args = [node.this, node.args.get("start")] + ([node.args["length"]] if node.args.get("length") else [])
        return exp.Anonymous(this="substringUTF8", expressions=args)
    if isinstance(node, exp.Median):
        return exp.Anonymous(this="quantileExactInclusive(0.5)", expressions=[node.this])
    if isinstance(node, exp.Mul):  # n * interval '1 month' -> interval n month
        for one, other in ((node.left, node.right), (node.right, node.left)):
            if isinstance(one, exp.Interval) and one.this.name == "1" and one.args.get("unit") is not None:
                return exp.Interval(this=other, unit=one.args["unit"])
    return _cast_rules(node)


def _cast_rules(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Cast) and (digits := _hex_digits(node)) is not None:
        padded = exp.Anonymous(this="leftPad", expressions=[digits, exp.Literal.number(16), exp.Literal.string("0")])
        number = sqlglot.parse_one("toInt64(reinterpretAsUInt64(reverse(unhex(x))))", read="clickhouse")
        number.find(exp.Column).replace(padded)
        return number
    if isinstance(node, exp.TryCast):
        return exp.Anonymous(this="accurateCastOrNull", expressions=[node.this, exp.Literal.string(node.to.sql(dialect="clickhouse"))])
    return node


def _hex_digits(cast: exp.Cast) -> exp.Expression | None:
    """The hex digits `h` of `cast('0x' || h as <integer>)`, or None for any other cast."""
    text = cast.this.unnest() if isinstance(cast.this, exp.Paren) else cast.this
    if not (cast.to.is_type(*exp.DataType.INTEGER_TYPES) and isinstance(text, exp.DPipe)):
        return None
    prefix = text.this
    return text.expression if isinstance(prefix, exp.Literal) and prefix.is_string and prefix.name.lower() == "0x" else None


def _alias_bare_columns(select: exp.Select) -> None:
    for i, projection in enumerate(select.expressions):
        if isinstance(projection, exp.Column) and projection.table and not isinstance(projection.this, exp.Star):
            select.expressions[i].replace(exp.alias_(projection.copy(), projection.name))


def _series_to_array_join(select: exp.Select) -> None:
    """`from a, range(lo, hi, step) as t(d)` -> `from a array join <the values> as d`, for a
    series of days (the only kind the models use): the days from lo up to, not including, hi."""
    source = select.args.get("from_")
    if source is not None and isinstance(source.this, exp.Table) and isinstance(source.this.this, exp.GenerateSeries):
        raise DialectError("a series in FROM has a ClickHouse rule only when joined to what bounds it: from b, range(...) as t(d)")
    for join in list(select.args.get("joins") or []):
        table = join.this
        if not (isinstance(table, exp.Table) and isinstance(table.this, exp.GenerateSeries)):
            continue
        series = table.this
        columns = table.args["alias"].columns if table.args.get("alias") else []
        if len(columns) != 1:
            raise DialectError("a series in FROM needs one column alias, as in `range(...) as t(d)`")
        step = series.args.get("step")
        if not (isinstance(step, exp.Interval) and step.text("unit").upper() == "DAY" and step.this.name == "1"):
            raise DialectError("only a series of days (step interval 1 day) has a ClickHouse rule")
        start = series.args["start"].sql(dialect="clickhouse")
        end = series.args["end"].sql(dialect="clickhouse")
        if not series.args.get("is_end_exclusive"):
            end = f"({end}) + INTERVAL 1 DAY"
        days = sqlglot.parse_one(
            f"arrayMap(i -> toDate({start}) + i, range(toUInt32(greatest(dateDiff('day', toDate({start}), toDate({end})), 0))))",
            read="clickhouse",
        )
        join.replace(exp.Join(this=exp.alias_(days, columns[0].name), kind="ARRAY"))

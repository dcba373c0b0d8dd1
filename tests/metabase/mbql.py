"""The stand-in's model of Metabase's query processor for the query builder's questions
(legacy MBQL, `"type": "query"`), on the DuckDB driver: the part of it that the provisioned
models and metrics, and the questions a business user builds on them, reach. Transcribed from
Metabase's source (read December 2026; the newest copies the search index held, not
necessarily the 0.63.5 tag):

- a source `card__<id>`: the card's query as a sub-query (`fetch-source-query`); a `metric`
  aggregation spliced in from the metric card, which must read the same source
  (`query_processor/middleware/metrics.clj`, `splice-compatible-metrics`: else "Incompatible
  metric"); a metric's own filters are pushed into its aggregation there, which no provisioned
  metric has (refused here rather than modelled);
- aggregations as `driver/sql/query_processor.clj` compiles them: `sum-where` is
  `SUM(CASE WHEN p THEN x ELSE 0.0 END)`, `count-where` a `sum-where` of 1, `distinct-where`
  `COUNT(DISTINCT CASE WHEN p THEN x END)`, `/` each operand cast to double and the
  denominator in `NULLIF(..., 0.0)`;
- breakouts before aggregations in the select list, each ordered ascending after any explicit
  order (`add_implicit_clauses.clj`); a date breakout's `temporal-unit` as the DuckDB driver
  truncates it (`date_trunc('month', x)`);
- filters: `=` (several values: any of them), `!=`, `<`, `<=`, `>`, `>=`, `between` (a
  date column at day grain keeps `BETWEEN`, inclusive), `is-null`, `not-null`, `and`, `or`,
  `not`, and `time-interval` (the previous `n` whole units before now's, half-open:
  `optimize_temporal_filters.clj`).

Anything else is refused with the clause named, so a test cannot pass on MBQL this model does
not know.
"""

from __future__ import annotations

import datetime as dt

SOURCE = "source"
UNITS = ("day", "week", "month", "quarter", "year")
COMPARE = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


class Unsupported(ValueError):
    """MBQL outside the modelled part."""


class Incompatible(ValueError):
    """Metabase's "Incompatible metric": a metric read from another source than the query's."""


def _literal(value) -> str:
    if value is True or value is False:
        return "TRUE" if value else "FALSE"
    if value is None:
        return "NULL"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _field(clause: list) -> tuple[str, dict]:
    if not (isinstance(clause, list) and clause and clause[0] == "field" and isinstance(clause[1], str)):
        raise Unsupported(f"the field reference {clause!r} (a source card's columns are named: ['field', name, options])")
    options = clause[2] or {}
    if "base-type" not in options:
        raise Unsupported(f"{clause!r}: a field named by a string needs its base-type (lib/schema/ref.cljc)")
    return f'"{SOURCE}"."{clause[1]}"', options


def field_sql(clause: list) -> str:
    column, options = _field(clause)
    unit = options.get("temporal-unit")
    if unit is None:
        return column
    if unit not in UNITS:
        raise Unsupported(f"the temporal unit {unit!r}")
    return f"date_trunc('{unit}', {column})"


def _time_interval(clause: list, now: dt.datetime) -> str:
    _, field, amount, unit, *rest = clause
    if rest or amount == "current" or not isinstance(amount, int) or amount >= 0 or unit not in UNITS:
        raise Unsupported(f"the time interval {clause!r} (only the previous n whole units)")
    column, _ = _field(field)
    start = f"date_trunc('{unit}', CAST(TIMESTAMP '{now:%Y-%m-%d %H:%M:%S}' AS TIMESTAMPTZ) + INTERVAL '{amount}' {unit})"
    end = f"date_trunc('{unit}', CAST(TIMESTAMP '{now:%Y-%m-%d %H:%M:%S}' AS TIMESTAMPTZ))"
    return f"({column} >= {start} AND {column} < {end})"


def filter_sql(clause: list, now: dt.datetime) -> str:
    operator = clause[0]
    if operator in ("and", "or"):
        return "(" + f" {operator.upper()} ".join(filter_sql(c, now) for c in clause[1:]) + ")"
    if operator == "not":
        return f"(NOT {filter_sql(clause[1], now)})"
    if operator in ("is-null", "not-null"):
        return f"({field_sql(clause[1])} IS {'NOT ' if operator == 'not-null' else ''}NULL)"
    if operator == "time-interval":
        return _time_interval(clause, now)
    if operator == "between":
        _, field, low, high = clause
        column, options = _field(field)
        if options.get("base-type") != "type/Date":
            raise Unsupported("between on a column that is not a date")
        return f"({column} BETWEEN DATE {_literal(low)} AND DATE {_literal(high)})"
    if operator in COMPARE:
        column, values = field_sql(clause[1]), clause[2:]
        if operator in ("=", "!=") and len(values) > 1:
            joined = " OR ".join(f"{column} = {_literal(v)}" for v in values)
            return f"({joined})" if operator == "=" else f"(NOT ({joined}))"
        return f"({column} {COMPARE[operator]} {_literal(values[0])})"
    raise Unsupported(f"the filter {operator!r}")


def aggregation_sql(clause: list, now: dt.datetime) -> str:
    operator = clause[0]
    if operator == "count":
        return f"COUNT({field_sql(clause[1])})" if len(clause) > 1 else "COUNT(*)"
    if operator in ("sum", "avg", "min", "max"):
        return f"{operator.upper()}({field_sql(clause[1])})"
    if operator == "distinct":
        return f"COUNT(DISTINCT {field_sql(clause[1])})"
    if operator == "sum-where":
        return f"SUM(CASE WHEN {filter_sql(clause[2], now)} THEN {field_sql(clause[1])} ELSE 0.0 END)"
    if operator == "count-where":
        return f"SUM(CASE WHEN {filter_sql(clause[1], now)} THEN 1 ELSE 0.0 END)"
    if operator == "distinct-where":
        return f"COUNT(DISTINCT CASE WHEN {filter_sql(clause[2], now)} THEN {field_sql(clause[1])} END)"
    if operator == "/":
        numerator, *denominators = (f"CAST({aggregation_sql(c, now)} AS DOUBLE)" for c in clause[1:])
        return numerator + "".join(f" / NULLIF({d}, 0.0)" for d in denominators)
    raise Unsupported(f"the aggregation {operator!r}")


def _name(clause: list, taken: set[str]) -> str:
    """The aggregation's column name (lib/aggregation.cljc), made unique with _2, _3."""
    if clause[0] == "aggregation-options":
        base = clause[2].get("name") or _name(clause[1], set())
    else:
        base = {"distinct": "count", "distinct-where": "count", "/": "expression"}.get(clause[0], clause[0])
        if clause[0] == "sum-where":
            base = f"sum_where_{clause[1][1]}"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def _spliced(clause: list, source: str, cards: dict[int, dict]) -> list:
    """An aggregation with a `metric` in it replaced by the metric's own (middleware/metrics.clj)."""
    options = None
    if clause[0] == "aggregation-options":
        clause, options = clause[1], clause[2]
    if clause[0] == "metric":
        metric = cards[clause[1]]
        if metric.get("type") != "metric":
            raise Unsupported(f"card {clause[1]} is not a metric")
        stage = metric["dataset_query"]["query"]
        if stage.get("source-table") != source:
            raise Incompatible(f"Incompatible metric: metric {clause[1]} reads {stage.get('source-table')}, the query {source}")
        if stage.get("filter"):
            raise Unsupported("a metric with filters (they are pushed into its aggregation)")
        (clause,) = stage["aggregation"]
    return ["aggregation-options", clause, options] if options else clause


def compile_query(query: dict, cards: dict[int, dict], now: dt.datetime | None = None) -> tuple[int, str, list[str]]:
    """(the database id, the SQL, the columns' names) of a legacy MBQL query whose source is a
    card; `cards`: the server's cards by id."""
    now = now or dt.datetime.now()
    stage = query["query"]
    if "source-query" in stage or "joins" in stage or "expressions" in stage:
        raise Unsupported("nested stages, joins and expressions")
    source = stage.get("source-table")
    if not (isinstance(source, str) and source.startswith("card__")):
        raise Unsupported(f"the source {source!r}: the stand-in runs questions on saved cards only")
    card = cards[int(source.removeprefix("card__"))]
    if card["dataset_query"]["type"] == "native":
        inner = card["dataset_query"]["native"]["query"]
    else:
        _, inner, _ = compile_query(card["dataset_query"], cards, now)
    aggregations = [_spliced(clause, source, cards) for clause in stage.get("aggregation") or []]
    breakouts = stage.get("breakout") or []
    taken: set[str] = set()
    names = [b[1] for b in breakouts]  # a breakout keeps its column's name
    taken.update(names)
    select = [f'{field_sql(b)} AS "{n}"' for b, n in zip(breakouts, names)]
    for clause in aggregations:
        name = _name(clause, taken)
        names.append(name)
        body = clause[1] if clause[0] == "aggregation-options" else clause
        select.append(f'{aggregation_sql(body, now)} AS "{name}"')
    if not select:
        select, names = ["*"], []
    sql = f'SELECT {", ".join(select)} FROM ({inner}) AS "{SOURCE}"'
    if stage.get("filter"):
        sql += f" WHERE {filter_sql(stage['filter'], now)}"
    if breakouts:
        grouped = ", ".join(field_sql(b) for b in breakouts)
        sql += f" GROUP BY {grouped} ORDER BY {grouped} ASC"
    if stage.get("limit"):
        sql += f" LIMIT {int(stage['limit'])}"
    return card["database_id"], sql, names

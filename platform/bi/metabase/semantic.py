"""The semantic layer in Metabase's own terms: a model per semantic model, a metric per metric.

- **Models** (cards of type `model`): one per semantic model, a native question reading its
  flat relation (`semantic.<view>`, `semantic/flat.py`), each column named, described and
  typed (`type/Currency`, `type/State`, ...) as `platform/semantic/` says, through the model's
  `result_metadata`. The query builder offers their columns by those names; drill-through
  and X-rays read the semantic types.
- **Metrics** (cards of type `metric`): one per metric, over its model (`card__<model id>`),
  its aggregation the metric's expression over the flat relation translated into MBQL
  (`aggregation`). A business user picks "Revenue" in the query builder and groups it by
  "Customer state"; the metric is defined here once, from the same expression Superset's
  saved metric and Metabase's native questions use.

Only a small grammar of SQL is translated (the one the metrics are written in): `count(*)`,
`count(x)`, `count(distinct x)`, `sum`, `avg`, each with `filter (where ...)`, a `coalesce(...,
0)` around one, and the safe division `cast(a as double precision) / nullif(b, 0)`; conditions
are a boolean column, a comparison of a column with a literal, and `and`. Anything else stops
`olist-bi metabase build` with the metric's name: no metric is approximated.
"""

from __future__ import annotations

from sqlglot import exp, parse_one

from olist_bi.semantic.catalog import Catalog
from olist_bi.semantic.flat import SCHEMA, WINDOW_COLUMN, FlatModel

CURRENCY_UNITS = {"BRL"}
STATES = {"customer_state", "seller_state"}
CITIES = {"customer_city"}
CREATION_DATES = {"purchase_date"}
COMPARISONS = {exp.EQ: "=", exp.NEQ: "!=", exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<="}
COLLECTION = {
    "key": "semantic-layer",
    "name": "Semantic layer",
    "description": (
        "The semantic layer's models and metrics, for the query builder: pick a metric (Revenue, GMV, Orders, ...) and group it by "
        "a dimension (Customer state, Purchase date, ...). Defined once in platform/semantic/; edit them there, not here."
    ),
    "audience": "business",
}


class Untranslatable(ValueError):
    """A metric's expression leaves the grammar MBQL is generated from."""


def _field(column: exp.Expression) -> list:
    """A column of the model, by name; its base type is Metabase's, filled in when provisioning
    has read it (`typed`)."""
    if not isinstance(column, exp.Column):
        raise Untranslatable(f"{column.sql()} is not a column")
    return ["field", column.name, {}]


def _condition(node: exp.Expression) -> list:
    if isinstance(node, exp.Paren):
        return _condition(node.this)
    if isinstance(node, exp.And):
        return ["and", _condition(node.this), _condition(node.expression)]
    if isinstance(node, exp.Column):  # a boolean column
        return ["=", _field(node), True]
    for kind, operator in COMPARISONS.items():
        if isinstance(node, kind) and isinstance(node.expression, exp.Literal):
            literal = node.expression
            value = literal.this if literal.is_string else (int(literal.this) if literal.is_int else float(literal.this))
            return [operator, _field(node.this), value]
    raise Untranslatable(f"the condition {node.sql()}")


def _aggregate(node: exp.Expression) -> list:
    """One aggregate, with its filter if any."""
    where = None
    if isinstance(node, exp.Filter):
        where = _condition(node.expression.this)
        node = node.this
    if isinstance(node, exp.Count):
        argument = node.this
        if isinstance(argument, exp.Star):
            return ["count-where", where] if where else ["count"]
        if isinstance(argument, exp.Distinct):
            (column,) = argument.expressions
            return ["distinct-where", _field(column), where] if where else ["distinct", _field(column)]
        field = _field(argument)
        return ["count-where", ["and", where, ["not-null", field]]] if where else ["count", field]
    if isinstance(node, exp.Sum):
        field = _field(node.this)
        return ["sum-where", field, where] if where else ["sum", field]
    if isinstance(node, exp.Avg):
        field = _field(node.this)
        if where is None:
            return ["avg", field]
        counted = ["and", where, ["not-null", field]]  # avg over the filtered rows' non-null values
        return ["/", ["sum-where", field, counted], ["count-where", counted]]
    raise Untranslatable(f"the aggregate {node.sql()}")


def aggregation(sql: str) -> list:
    """The MBQL aggregation clause of a metric's expression over its flat relation, its fields
    named without their base type (`typed` adds it)."""
    node = parse_one(sql, read="duckdb")
    if isinstance(node, exp.Coalesce) and [e.sql() for e in node.expressions] == ["0"]:
        node = node.this  # sum-where adds 0 for the rows it leaves out: a group's sum is never null
    if isinstance(node, exp.Div):
        numerator, denominator = node.this, node.expression
        if isinstance(numerator, exp.Cast):
            numerator = numerator.this
        if not (isinstance(denominator, exp.Nullif) and denominator.expression.sql() == "0"):
            raise Untranslatable(f"a division by {denominator.sql()}: only the safe division nullif(..., 0)")
        return ["/", _aggregate(numerator), _aggregate(denominator.this)]
    return _aggregate(node)


def typed(clause, types: dict[str, str]):
    """`clause` with each field reference given its base type (a field named by a string needs
    one: lib/schema/ref.cljc); `types`: each column's base type as Metabase read it."""
    if isinstance(clause, list) and len(clause) == 3 and clause[0] == "field" and isinstance(clause[1], str):
        return ["field", clause[1], {**clause[2], "base-type": types[clause[1]]}]
    return [typed(c, types) for c in clause] if isinstance(clause, list) else clause


def _fields(clause) -> set[str]:
    """The columns a clause reads."""
    if not isinstance(clause, list) or not clause:
        return set()
    return ({clause[1]} if clause[0] == "field" else set()).union(*(_fields(c) for c in clause[1:]))


def _summed(clause) -> set[str]:
    """The columns a clause sums or averages (money, where its metric is in BRL)."""
    if not isinstance(clause, list):
        return set()
    found = {clause[1][1]} if clause and clause[0] in ("sum", "sum-where", "avg") else set()
    return found.union(*(_summed(c) for c in clause[1:]))


def _humanize(column: str) -> str:
    return column.split("__", 1)[-1].replace("_", " ").capitalize()


def _dimension_type(column: str, kind: str) -> str | None:
    if column in STATES:
        return "type/State"
    if column in CITIES:
        return "type/City"
    if column in CREATION_DATES:
        return "type/CreationDate"
    return "type/Category" if kind == "category" else None


def column_metadata(flat: FlatModel, catalog: Catalog) -> list[dict]:
    """The model's columns as Metabase shows them: a dimension's label and description, a
    measure column's name with the metrics that read it, and a semantic type where one fits
    (money: a column a BRL metric sums). The base types are Metabase's own, added when
    provisioning has read them."""
    readers: dict[str, list[str]] = {}
    money: set[str] = set()
    for name, expression in flat.metrics.items():
        clause = aggregation(expression)
        for column in _fields(clause) & set(flat.measure_columns):
            readers.setdefault(column, []).append(name)
        if catalog.metrics[name].unit in CURRENCY_UNITS:
            money |= _summed(clause)
    columns = []
    for column in flat.columns:
        if column in flat.dimensions:
            dimension = catalog.dimensions[column]
            display, description = dimension.label, dimension.description
            semantic_type = _dimension_type(column, dimension.type)
        elif column == WINDOW_COLUMN:
            semantic_type = None
            display = "In reporting window"
            description = "The row's date falls in the reporting window of complete months; time series keep these rows."
        else:
            display = _humanize(column)
            description = f"{display}, read by the metrics " + ", ".join(catalog.metrics[m].label for m in readers.get(column, [])) + "."
            semantic_type = "type/Currency" if column in money else None
        columns.append({"name": column, "display_name": display, "description": description, "semantic_type": semantic_type})
    return columns


NAMES = {"olist_deliveries": "Orders"}  # one row per order, every order: what a business user looks for


def model_name(flat: FlatModel) -> str:
    return NAMES.get(flat.view) or flat.view.removeprefix("olist_").replace("_", " ").capitalize()


def semantic_assets(catalog: Catalog, flats: dict[str, FlatModel]) -> dict:
    """The collection of the semantic layer's models and metrics, as the dashboards' are: its
    cards (a model per semantic model, then a metric per metric) and no dashboard."""
    cards = []
    for name in catalog.models:
        flat = flats[name]
        cards.append(
            {
                "key": f"model:{flat.view}",
                "type": "model",
                "name": model_name(flat),
                "description": catalog.models[name].description[:1].upper() + catalog.models[name].description[1:] + ".",
                "database": "warehouse",
                "display": "table",
                "sql": f"select * from {SCHEMA}.{flat.view}",
                "template_tags": {},
                "columns": column_metadata(flat, catalog),
                "visualization_settings": {},
            }
        )
    for name, metric in catalog.metrics.items():
        flat = flats[metric.model]
        try:
            clause = aggregation(flat.metrics[name])
        except Untranslatable as e:
            raise Untranslatable(f"metric {name}: {e} cannot be written in MBQL; change the metric or the translation") from None
        cards.append(
            {
                "key": f"metric:{name}",
                "type": "metric",
                "name": metric.label,
                "description": f"{metric.description} {metric.counts}".strip(),
                "database": "warehouse",
                "display": "scalar",
                "model": f"model:{flat.view}",
                "aggregation": clause,
                "visualization_settings": {},
            }
        )
    return {"collection": dict(COLLECTION), "cards": cards, "dashboard": None}

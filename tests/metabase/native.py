"""How Metabase runs a native question with template tags, for the tests: an optional clause
`[[ ... ]]` stays only when every tag in it has a value, and each `{{tag}}` becomes the bound
value (here a DuckDB `?` parameter, as Metabase's driver binds it through JDBC). A tag outside
an optional clause must have a value. Written from Metabase's documentation of SQL variables
(docs/questions/native-editor/sql-parameters.md); a stand-in for Metabase's query processor."""

from __future__ import annotations

import datetime as dt
import re

OPTIONAL = re.compile(r"\[\[(.*?)\]\]", re.S)
TAG = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


class MissingValue(ValueError):
    pass


def bind(sql: str, tags: dict[str, dict], values: dict[str, object]) -> tuple[str, list]:
    """(SQL with `?` placeholders, parameters) for `values` by tag name."""

    def keep(match: re.Match) -> str:
        names = TAG.findall(match.group(1))
        return match.group(1) if all(values.get(n) not in (None, "") for n in names) else ""

    text = OPTIONAL.sub(keep, sql)
    params: list = []

    def place(match: re.Match) -> str:
        name = match.group(1)
        if name not in tags:
            raise MissingValue(f"no template tag {name!r}")
        if values.get(name) in (None, ""):
            raise MissingValue(f"You'll need to pick a value for '{tags[name]['display-name']}' before this query can run.")
        value = values[name]
        kind = tags[name]["type"]
        params.append(dt.date.fromisoformat(value) if kind == "date" else (float(value) if kind == "number" else str(value)))
        return "?"

    return TAG.sub(place, text), params

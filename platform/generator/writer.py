"""Writes generated columns as CSV in exactly the format of the original Olist files.

The format: every header name quoted; a string value quoted when it starts with a digit or
holds a comma, quote or line break (quotes doubled); numbers, money with two decimals and
`YYYY-MM-DD HH:MM:SS` timestamps unquoted; a missing value is an empty field.

Generated chunks arrive as Arrow tables whose columns follow the source contract's kinds:
ids as two uint64 halves (`<col>__hi`, `<col>__lo`), zip prefixes as integers, money as
integer cents, timestamps as `timestamp[s]`, strings as dictionary arrays. DuckDB turns a
chunk into one text line per row; the lines' bytes go to the file straight from Arrow's
buffer, so no Python string is built per row.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from olist_bi.contract import TIMESTAMP_FORMAT, SourceFile

_QUOTE_MACRO = """
create or replace macro olist_quote(v) as case
    when v is null then ''
    when regexp_matches(v, '^[0-9]|[",\\r\\n]') then '"' || replace(v, '"', '""') || '"'
    else v
end
"""


def _field_sql(name: str, kind: str) -> str:
    if kind == "id":
        value = f"lower(lpad(to_hex({name}__hi), 16, '0') || lpad(to_hex({name}__lo), 16, '0'))"
        return f"olist_quote({value})"
    if kind == "zip":
        return f"olist_quote(lpad(cast({name} as varchar), 5, '0'))"
    if kind == "text":
        return f"olist_quote(cast({name} as varchar))"
    if kind == "int":
        return f"coalesce(cast({name} as varchar), '')"
    if kind == "money":
        return f"coalesce(cast({name} // 100 as varchar) || '.' || lpad(cast({name} % 100 as varchar), 2, '0'), '')"
    if kind == "float":
        return f"coalesce(cast({name} as varchar), '')"
    if kind == "timestamp":
        return f"coalesce(strftime({name}, '{TIMESTAMP_FORMAT}'), '')"
    raise ValueError(f"unknown column kind {kind!r}")


class CsvWriter:
    """Appends generated chunks of one source file; use as a context manager."""

    def __init__(self, path: Path, source: SourceFile, con: duckdb.DuckDBPyConnection):
        self.path = path
        self.source = source
        self.con = con
        self.rows = 0
        con.execute(_QUOTE_MACRO)
        fields = " || ',' || ".join(_field_sql(name, kind) for name, kind in source.columns)
        self._sql = f"select {fields} || chr(10) as line from chunk"
        self._file = None

    def __enter__(self) -> "CsvWriter":
        self._file = self.path.open("wb")
        header = ",".join(f'"{name}"' for name in self.source.header) + "\n"
        self._file.write(header.encode())
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()

    def write(self, chunk: pa.Table) -> None:
        if chunk.num_rows == 0:
            return
        self.con.register("chunk", chunk)
        try:
            lines = self.con.execute(self._sql).fetch_arrow_table().column("line")
        finally:
            self.con.unregister("chunk")
        for array in lines.chunks:
            _write_string_buffer(self._file, array)
        self.rows += chunk.num_rows


def _write_string_buffer(f, array: pa.Array) -> None:
    """Write the concatenated values of a string array without materialising them."""
    if array.null_count:
        raise ValueError("a generated CSV line is null")
    if pa.types.is_string_view(array.type):
        array = array.cast(pa.string())
    offset_type = np.int64 if pa.types.is_large_string(array.type) else np.int32
    _, offsets_buffer, data = array.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type)
    start, end = offsets[array.offset], offsets[array.offset + len(array)]
    f.write(memoryview(data)[start:end])


def strings(codes: np.ndarray, values: list[str], missing: np.ndarray | None = None) -> pa.DictionaryArray:
    """A dictionary-encoded string column: codes index `values`; `missing` marks nulls."""
    indices = pa.array(codes.astype(np.int32), mask=missing)
    return pa.DictionaryArray.from_arrays(indices, pa.array(values, pa.string()))


def timestamps(seconds: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    return pa.array(seconds.astype(np.int64), type=pa.timestamp("s"), mask=missing)


def integers(values: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    return pa.array(values.astype(np.int64), mask=missing)

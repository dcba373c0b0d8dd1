"""The source contract: the nine Olist files, their exact headers and column types.

`check_folder` checks a drop folder against it and raises `ContractError` naming each file
and what differs (missing file, empty file, bad encoding, missing/extra/renamed/reordered
columns). `load_raw` reads a checked folder into DuckDB with explicit column types, never
type sniffing, and restores the leading zeros of zip prefixes that spreadsheet tools drop.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import duckdb

# Column kinds and the DuckDB type each is loaded as.
DUCKDB_TYPES = {
    "id": "VARCHAR",  # 32-char lowercase hex
    "text": "VARCHAR",
    "zip": "VARCHAR",  # five characters with leading zeros: never an integer
    "int": "INTEGER",
    "money": "DECIMAL(12,2)",
    "float": "DOUBLE",
    "timestamp": "TIMESTAMP",  # YYYY-MM-DD HH:MM:SS
}
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
ZIP_LENGTH = 5


@dataclass(frozen=True)
class SourceFile:
    """One of the nine files: its name, the table it feeds and its ordered columns."""

    table: str
    filename: str
    columns: tuple[tuple[str, str], ...]

    @property
    def header(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def zip_columns(self) -> list[str]:
        return [name for name, kind in self.columns if kind == "zip"]


def _file(table: str, filename: str, *columns: str) -> SourceFile:
    return SourceFile(table, filename, tuple(tuple(c.split(":")) for c in columns))


SOURCE_FILES: tuple[SourceFile, ...] = (
    _file(
        "orders",
        "olist_orders_dataset.csv",
        "order_id:id",
        "customer_id:id",
        "order_status:text",
        "order_purchase_timestamp:timestamp",
        "order_approved_at:timestamp",
        "order_delivered_carrier_date:timestamp",
        "order_delivered_customer_date:timestamp",
        "order_estimated_delivery_date:timestamp",
    ),
    _file(
        "order_items",
        "olist_order_items_dataset.csv",
        "order_id:id",
        "order_item_id:int",
        "product_id:id",
        "seller_id:id",
        "shipping_limit_date:timestamp",
        "price:money",
        "freight_value:money",
    ),
    _file(
        "order_payments",
        "olist_order_payments_dataset.csv",
        "order_id:id",
        "payment_sequential:int",
        "payment_type:text",
        "payment_installments:int",
        "payment_value:money",
    ),
    _file(
        "order_reviews",
        "olist_order_reviews_dataset.csv",
        "review_id:id",
        "order_id:id",
        "review_score:int",
        "review_comment_title:text",
        "review_comment_message:text",
        "review_creation_date:timestamp",
        "review_answer_timestamp:timestamp",
    ),
    _file(
        "customers",
        "olist_customers_dataset.csv",
        "customer_id:id",
        "customer_unique_id:id",
        "customer_zip_code_prefix:zip",
        "customer_city:text",
        "customer_state:text",
    ),
    _file(
        "sellers",
        "olist_sellers_dataset.csv",
        "seller_id:id",
        "seller_zip_code_prefix:zip",
        "seller_city:text",
        "seller_state:text",
    ),
    _file(
        "products",
        "olist_products_dataset.csv",
        "product_id:id",
        "product_category_name:text",
        # "lenght" is misspelled in the source; the contract keeps it.
        "product_name_lenght:int",
        "product_description_lenght:int",
        "product_photos_qty:int",
        "product_weight_g:int",
        "product_length_cm:int",
        "product_height_cm:int",
        "product_width_cm:int",
    ),
    _file(
        "geolocation",
        "olist_geolocation_dataset.csv",
        "geolocation_zip_code_prefix:zip",
        "geolocation_lat:float",
        "geolocation_lng:float",
        "geolocation_city:text",
        "geolocation_state:text",
    ),
    _file(
        "category_translation",
        "product_category_name_translation.csv",
        "product_category_name:text",
        "product_category_name_english:text",
    ),
)

BY_TABLE = {f.table: f for f in SOURCE_FILES}
BY_FILENAME = {f.filename: f for f in SOURCE_FILES}
ORDER_TABLES = tuple(f.table for f in SOURCE_FILES if "order_id" in f.header)  # the raw tables an order's rows are in


class ContractError(ValueError):
    """A drop folder breaks the contract. `problems` lists one message per finding."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("the drop breaks the source contract:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass
class FileCheck:
    source: SourceFile
    path: Path
    size_bytes: int
    problems: list[str] = field(default_factory=list)


def check_folder(folder: Path | str, loaded: Callable[[Path], bool] = lambda path: False) -> list[FileCheck]:
    """Check every file of a drop folder; raise `ContractError` listing all problems found. A
    file `loaded` says was loaded before, byte for byte, is not read through again."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ContractError([f"{folder}: not a folder"])
    checks = [check_file(folder / source.filename, source, loaded) for source in SOURCE_FILES]
    problems = [p for c in checks for p in c.problems]
    if problems:
        raise ContractError(problems)
    return checks


def check_file(path: Path, source: SourceFile, loaded: Callable[[Path], bool] = lambda path: False) -> FileCheck:
    """Check one file's presence, encoding (unless `loaded` says it was loaded before) and
    header; problems go into the returned check."""
    check = FileCheck(source, path, path.stat().st_size if path.exists() else 0)
    name = source.filename
    if not path.exists():
        check.problems.append(f"{name}: missing from {path.parent}")
        return check
    if check.size_bytes == 0:
        check.problems.append(f"{name}: the file is empty (expected the header line {_fmt(source.header)})")
        return check
    bad = None if loaded(path) else _first_invalid_utf8(path)
    if bad is not None:
        line, offset = bad
        check.problems.append(f"{name}: not valid UTF-8 at line {line} (byte offset {offset}); re-export the file as UTF-8")
        return check
    header = _read_header(path)
    check.problems.extend(f"{name}: {p}" for p in header_differences(header, source.header))
    return check


def header_differences(found: list[str], expected: list[str]) -> list[str]:
    """Describe how a header differs from the expected one, in words a person can act on."""
    if found == expected:
        return []
    if not found or found == [""]:
        return [f"the header line is empty (expected {_fmt(expected)})"]
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    problems = []
    # A column missing where another, unknown one stands is most likely renamed.
    renamed = []
    for column in list(missing):
        position = expected.index(column)
        if position < len(found) and found[position] in extra:
            renamed.append((column, found[position]))
            missing.remove(column)
            extra.remove(found[position])
    for old, new in renamed:
        problems.append(f"column {old!r} is named {new!r}")
    if missing:
        problems.append(f"missing column(s) {_fmt(missing)}")
    if extra:
        problems.append(f"unexpected column(s) {_fmt(extra)}")
    if not renamed and not missing and not extra:
        duplicated = sorted({c for c in found if found.count(c) > 1})
        if duplicated:
            problems.append(f"duplicated column(s) {_fmt(duplicated)}")
        else:
            problems.append(f"columns are in the wrong order: found {_fmt(found)}, expected {_fmt(expected)}")
    return problems


def _fmt(columns: list[str]) -> str:
    return ", ".join(columns)


def _read_header(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as f:
        first = f.readline()
    first = first.lstrip("\ufeff")  # a byte-order mark left by some editors
    row = next(csv.reader(io.StringIO(first)), [])
    return [c.strip() for c in row]


def _first_invalid_utf8(path: Path, chunk_size: int = 1 << 22) -> tuple[int, int] | None:
    """Return (line, byte offset) of the first byte that is not UTF-8, or None."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    lines = 1
    with path.open("rb") as f:
        while chunk := f.read(chunk_size):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                return lines + chunk.count(b"\n", 0, e.start), offset + e.start
            lines += chunk.count(b"\n")
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return lines, offset
    return None


# --- loading -------------------------------------------------------------------------------


@dataclass
class LoadedFile:
    source: SourceFile
    rows: int
    zips_fixed: int


def read_csv_sql(path: Path, source: SourceFile, all_varchar: bool = False) -> str:
    """The DuckDB `read_csv` call for one source file: explicit columns, no sniffing.

    The path is embedded as a quoted literal because table functions cannot take bound
    parameters in every DuckDB position; it comes from the folder the operator named.
    """
    columns = ", ".join(f"'{name}': '{'VARCHAR' if all_varchar else DUCKDB_TYPES[kind]}'" for name, kind in source.columns)
    literal = str(path).replace("'", "''")
    return (
        f"read_csv('{literal}', header = true, auto_detect = false, columns = {{{columns}}}, "
        f"delim = ',', quote = '\"', escape = '\"', timestampformat = '{TIMESTAMP_FORMAT}', "
        "strict_mode = true, null_padding = false)"
    )


def load_raw(con: duckdb.DuckDBPyConnection, folder: Path | str, schema: str = "raw") -> list[LoadedFile]:
    """Check the folder, then load each file into `schema.<table>` with its declared types.

    Zip prefixes shortened by spreadsheet tools ("1037" for "01037") are padded back to five
    digits; the returned list says how many values were fixed per file.
    """
    checks = check_folder(folder)
    con.execute(f"create schema if not exists {schema}")
    loaded = []
    for check in checks:
        source = check.source
        table = f"{schema}.{source.table}"
        con.execute(f"create or replace table {table} as select * from {read_csv_sql(check.path, source)}")
        rows = con.execute(f"select count(*) from {table}").fetchone()[0]
        loaded.append(LoadedFile(source, rows, fix_zip_prefixes(con, table, source)))
    return loaded


def fix_zip_prefixes(con: duckdb.DuckDBPyConnection, table: str, source: SourceFile) -> int:
    """Left-pad all-digit zip prefixes shorter than five characters; return how many changed."""
    fixed = 0
    for column in source.zip_columns:
        condition = f"length({column}) < {ZIP_LENGTH} and regexp_full_match({column}, '[0-9]+')"
        fixed += con.execute(f"select count(*) from {table} where {condition}").fetchone()[0]
        con.execute(f"update {table} set {column} = lpad({column}, {ZIP_LENGTH}, '0') where {condition}")
    return fixed

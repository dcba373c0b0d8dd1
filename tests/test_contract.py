import csv
import io

import duckdb
import pytest

from olist_bi.contract import BY_TABLE, SOURCE_FILES, ContractError, check_folder, header_differences, load_raw


def rewrite_header(path, columns):
    lines = path.read_text(encoding="utf-8").split("\n", 1)
    path.write_text(",".join(f'"{c}"' for c in columns) + "\n" + lines[1], encoding="utf-8")


def problems_of(folder):
    with pytest.raises(ContractError) as info:
        check_folder(folder)
    return info.value.problems


def test_the_contract_names_the_nine_files_with_the_real_headers():
    assert len(SOURCE_FILES) == 9
    assert BY_TABLE["products"].header[2:4] == ["product_name_lenght", "product_description_lenght"]
    assert BY_TABLE["orders"].header[0] == "order_id"
    assert BY_TABLE["geolocation"].zip_columns == ["geolocation_zip_code_prefix"]


def test_a_generated_drop_passes(small_drop):
    checks = check_folder(small_drop)
    assert [c.source.filename for c in checks] == [s.filename for s in SOURCE_FILES]
    assert all(c.size_bytes > 0 for c in checks)


def test_missing_file_is_named(drop_copy):
    (drop_copy / "olist_sellers_dataset.csv").unlink()
    assert problems_of(drop_copy) == [f"olist_sellers_dataset.csv: missing from {drop_copy}"]


def test_empty_file_is_named(drop_copy):
    (drop_copy / "olist_products_dataset.csv").write_bytes(b"")
    [problem] = problems_of(drop_copy)
    assert problem.startswith("olist_products_dataset.csv: the file is empty")


def test_missing_column(drop_copy):
    path = drop_copy / "olist_customers_dataset.csv"
    header = BY_TABLE["customers"].header
    rewrite_header(path, [c for c in header if c != "customer_city"])
    assert problems_of(drop_copy) == ["olist_customers_dataset.csv: missing column(s) customer_city"]


def test_extra_column(drop_copy):
    path = drop_copy / "olist_sellers_dataset.csv"
    rewrite_header(path, BY_TABLE["sellers"].header + ["seller_name"])
    assert problems_of(drop_copy) == ["olist_sellers_dataset.csv: unexpected column(s) seller_name"]


def test_renamed_column(drop_copy):
    path = drop_copy / "olist_products_dataset.csv"
    header = ["product_name_length" if c == "product_name_lenght" else c for c in BY_TABLE["products"].header]
    rewrite_header(path, header)
    assert problems_of(drop_copy) == ["olist_products_dataset.csv: column 'product_name_lenght' is named 'product_name_length'"]


def test_wrong_header_order(drop_copy):
    path = drop_copy / "olist_order_payments_dataset.csv"
    header = BY_TABLE["order_payments"].header
    swapped = [header[1], header[0], *header[2:]]
    rewrite_header(path, swapped)
    [problem] = problems_of(drop_copy)
    assert problem.startswith("olist_order_payments_dataset.csv: columns are in the wrong order")
    assert "payment_sequential, order_id" in problem


def test_non_utf8_file_names_line(drop_copy):
    path = drop_copy / "olist_order_reviews_dataset.csv"
    text = path.read_text(encoding="utf-8")
    path.write_bytes(text.encode("latin-1", errors="replace"))
    [problem] = problems_of(drop_copy)
    assert problem.startswith("olist_order_reviews_dataset.csv: not valid UTF-8 at line ")
    line = int(problem.split("line ")[1].split(" ")[0])
    assert line > 1
    assert not path.read_bytes().split(b"\n")[line - 1].isascii()


def test_all_problems_reported_together(drop_copy):
    (drop_copy / "olist_sellers_dataset.csv").unlink()
    (drop_copy / "olist_products_dataset.csv").write_bytes(b"")
    problems = problems_of(drop_copy)
    assert len(problems) == 2


def test_header_differences_in_words():
    assert header_differences(["a", "b"], ["a", "b"]) == []
    assert header_differences([], ["a"]) == ["the header line is empty (expected a)"]
    assert header_differences(["a", "a"], ["a", "b"]) == ["missing column(s) b"]
    assert header_differences(["a", "b", "b"], ["a", "b"]) == ["duplicated column(s) b"]


def test_byte_order_mark_is_tolerated(drop_copy):
    path = drop_copy / "product_category_name_translation.csv"
    rows = path.read_text(encoding="utf-8").count("\n") - 1
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    checks = {c.source.table: c for c in check_folder(drop_copy)}  # the header still matches: no ContractError
    assert len(checks) == 9 and checks["category_translation"].path == path
    con = duckdb.connect()
    loaded = {f.source.table: f for f in load_raw(con, drop_copy)}
    assert loaded["category_translation"].rows == rows
    first = con.execute("select product_category_name from raw.category_translation limit 1").fetchone()[0]
    assert not first.startswith("\ufeff")  # the mark did not become part of the first value


def test_zip_prefixes_that_lost_leading_zeros_are_restored(drop_copy):
    path = drop_copy / "olist_customers_dataset.csv"
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    shortened = 0
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(rows[0])
    for row in rows[1:]:
        if row[2].startswith("0"):  # what a spreadsheet does to "01037"
            row[2] = str(int(row[2]))
            shortened += 1
        writer.writerow(row)
    path.write_text(out.getvalue(), encoding="utf-8")
    assert shortened > 0
    con = duckdb.connect()
    loaded = {f.source.table: f for f in load_raw(con, drop_copy)}
    assert loaded["customers"].zips_fixed == shortened
    assert loaded["sellers"].zips_fixed == 0
    lengths = con.execute("select distinct length(customer_zip_code_prefix) from raw.customers").fetchall()
    assert lengths == [(5,)]


def test_load_raw_types_columns_explicitly(small_drop):
    con = duckdb.connect()
    loaded = load_raw(con, small_drop)
    assert sum(f.rows for f in loaded) > 0
    types = dict(con.execute("select column_name, data_type from information_schema.columns where table_name = 'orders'").fetchall())
    assert types["order_purchase_timestamp"] == "TIMESTAMP"
    types = dict(con.execute("select column_name, data_type from information_schema.columns where table_name = 'order_items'").fetchall())
    assert types["price"] == "DECIMAL(12,2)"
    types = dict(con.execute("select column_name, data_type from information_schema.columns where table_name = 'customers'").fetchall())
    assert types["customer_zip_code_prefix"] == "VARCHAR"

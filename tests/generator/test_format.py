"""The generated files are in exactly the original format."""

import hashlib
import re

import pytest

from olist_bi.contract import BY_FILENAME, SOURCE_FILES
from olist_bi.generator import generate

ID = re.compile(r"[0-9a-f]{32}")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
MONEY = re.compile(r"\d+\.\d\d")


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_scale_and_seed_give_identical_bytes(small_drop, tmp_path):
    generate(tmp_path / "again", scale=0.01, seed=7)
    assert digest(tmp_path / "again") == digest(small_drop)


def test_another_seed_gives_other_data(small_drop, tmp_path):
    generate(tmp_path / "other", scale=0.01, seed=8)
    ours, theirs = digest(small_drop), digest(tmp_path / "other")
    assert ours.keys() == theirs.keys()
    assert ours["olist_orders_dataset.csv"] != theirs["olist_orders_dataset.csv"]


def test_headers_are_the_real_ones_quoted(small_drop):
    for source in SOURCE_FILES:
        first = (small_drop / source.filename).read_text(encoding="utf-8").split("\n", 1)[0]
        assert first == ",".join(f'"{c}"' for c in source.header)


def records(path):
    """Split a file into raw records, honouring quoted line breaks, without unquoting."""
    text = path.read_text(encoding="utf-8")
    record, inside, fields = [], False, []
    field = ""
    for ch in text:
        if ch == '"':
            inside = not inside
        if ch == "," and not inside:
            record.append(field)
            field = ""
        elif ch == "\n" and not inside:
            record.append(field)
            fields.append(record)
            record, field = [], ""
        else:
            field += ch
    assert field == "" and not record, "the file must end with a line break"
    return fields[0], fields[1:]


@pytest.mark.parametrize("source", SOURCE_FILES, ids=lambda s: s.table)
def test_every_field_is_in_the_original_format(small_drop, source):
    header, rows = records(small_drop / source.filename)
    assert rows, f"{source.filename} has no rows"
    kinds = [kind for _, kind in source.columns]
    for row in rows:
        assert len(row) == len(kinds), row
        for value, kind in zip(row, kinds):
            if value == "":
                continue
            inner = assert_quoted_as_the_original(source.filename, value, kind)
            assert_written_as_the_original(value, inner, kind)


def assert_quoted_as_the_original(filename, value, kind):
    """Check a non-empty field is quoted exactly when the original quotes it; return it unquoted."""
    quoted = value.startswith('"')
    inner = value[1:-1].replace('""', '"') if quoted else value
    if kind in ("id", "text", "zip"):
        must_quote = inner[:1].isdigit() or any(c in inner for c in ',"\r\n')
        assert quoted == must_quote, (filename, value)
    else:
        assert not quoted, (filename, value)
    return inner


def assert_written_as_the_original(value, inner, kind):
    """Check a field's unquoted value is written as the original writes its kind."""
    if kind == "id":
        assert ID.fullmatch(inner), value
    elif kind == "zip":
        assert re.fullmatch(r"\d{5}", inner), value
    elif kind == "timestamp":
        assert TIMESTAMP.fullmatch(inner), value
    elif kind == "money":
        assert MONEY.fullmatch(inner), value
    elif kind == "int":
        assert re.fullmatch(r"\d+", inner), value
    elif kind == "float":
        float(inner)


def test_estimated_delivery_and_review_creation_dates_are_at_midnight(raw):
    assert raw.execute("select count(*) from raw.orders where order_estimated_delivery_date::time <> '00:00:00'").fetchone() == (0,)
    assert raw.execute("select count(*) from raw.order_reviews where review_creation_date::time <> '00:00:00'").fetchone() == (0,)


def test_review_comments_carry_line_breaks_quotes_and_accents(raw):
    found = raw.execute(
        """select count(*) filter (where review_comment_message like '%' || chr(10) || '%'),
                  count(*) filter (where review_comment_message like '%"%'),
                  count(*) filter (where regexp_matches(review_comment_message, '[ãáâçéêíóôõú]'))
           from raw.order_reviews"""
    ).fetchone()
    assert all(n > 0 for n in found), found


def test_zip_prefixes_keep_leading_zeros(small_drop):
    text = (small_drop / "olist_geolocation_dataset.csv").read_text(encoding="utf-8")
    assert re.search(r'^"0\d{4}",', text, re.M), "São Paulo's prefixes start with 0"


def test_filenames_are_the_nine_of_the_contract(small_drop):
    assert sorted(p.name for p in small_drop.iterdir()) == sorted(BY_FILENAME)

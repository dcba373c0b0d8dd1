"""Facts of the BI tools' configuration, asserted without a server: the native filters of
Superset's dashboards point at the columns the specs name, on a dataset that has them, and no
Metabase question needs a filter value to run."""

from __future__ import annotations

from pathlib import Path

import yaml

from olist_bi.dashboards import dashboards, datasets
from olist_bi.superset import bundle

ROOT = Path(__file__).parents[2]


def built() -> bundle.Bundle:
    return bundle.build("duckdb+olist:///w.duckdb", "postgresql+psycopg2://r:XXXXXXXXXX@h/db", {name: ["x"] for name in datasets()})


def test_native_filters_target_the_columns_the_specs_name():
    files = built().files
    checked = 0
    for spec in dashboards():
        metadata = yaml.safe_load(files[f"dashboards/{spec.slug}.yaml"])["metadata"]
        filters = {f["id"]: f for f in metadata["native_filter_configuration"]}
        assert set(filters) == {f"NATIVE_FILTER-{name}" for name in spec.filters}, spec.slug
        for name in spec.filters:
            native = filters[f"NATIVE_FILTER-{name}"]
            if native["filterType"] == "filter_time":
                continue  # a time filter applies to each chart's own time column
            [target] = native["targets"]
            assert target["column"]["name"] == name, (spec.slug, name)
            dataset = next(yaml.safe_load(text) for path, text in files.items() if path.startswith("datasets/") and yaml.safe_load(text)["uuid"] == target["datasetUuid"])
            assert name in {c["column_name"] for c in dataset["columns"]}, f"{spec.slug}: filter {name} on {dataset['table_name']}, which has no such column"
            checked += 1
    assert checked == sum(1 for d in dashboards() for f in d.filters if f != "purchase_date")  # every select filter


def test_no_metabase_question_requires_a_filter_value():
    tags = 0
    for path in sorted((ROOT / "metabase" / "dashboards").glob("*.yaml")):
        for card in yaml.safe_load(path.read_text(encoding="utf-8"))["cards"]:
            for name, tag in card["template_tags"].items():
                tags += 1
                assert tag.get("required") is not True, f"{path.name}/{card['key']}: tag {name} is required"
                assert "[[" in card["sql"] and "{{" + name + "}}" in card["sql"], f"{path.name}/{card['key']}: tag {name} outside an optional clause"
    assert tags > 0

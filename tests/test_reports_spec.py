"""platform/notify/: the spec file's checks, and the alerts' SQL on real databases (the
late-delivery rate against the semantic layer's metric, the pipeline alert against runs
written into a fresh operations store)."""

import datetime as dt
from pathlib import Path

import pytest
import yaml

from olist_bi.notify import reports
from olist_bi.engines.duckdb import warehouse as served
from olist_bi.operations import store
from olist_bi.semantic.compiler import Query, compile_query
from tests.conftest import fresh_database


def write(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load(reports.SPEC.read_text())
    change(raw)
    path = tmp_path / "reports.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_repository_spec_loads():
    spec = reports.load()
    assert {r.dashboard for r in spec.reports} == {"executive-overview", "platform-health"}
    assert {a.database for a in spec.alerts} == {"warehouse", "operations"}
    assert "{{" not in "".join(a.sql for a in spec.alerts)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda raw: raw["reports"][0].update(dashboard="nope"), "dashboard 'nope' is not one of"),
        (lambda raw: raw["reports"][0].update(to="finance"), "to 'finance' is not a recipient list"),
        (lambda raw: raw["reports"][0].update(crontab="every monday"), "is not a five-field crontab"),
        (lambda raw: raw["reports"][0].update(formats=["XLSX"]), "must be some of PNG, PDF"),
        (lambda raw: raw["alerts"][0].update(name=raw["reports"][0]["name"]), "the name is used twice"),
        (lambda raw: raw["alerts"][0].update(above="high"), "`above` must be a number"),
        (lambda raw: raw["alerts"][0].update(database="mysql"), "database 'mysql' is not one of"),
        (lambda raw: raw["alerts"][0].update(params={}), "'days' is undefined"),
        (lambda raw: raw.update(timezone="Mars/Olympus"), "is not an IANA time zone"),
    ],
)
def test_a_wrong_entry_is_refused_with_its_name_and_rule(tmp_path, change, message):
    path = write(tmp_path, change)
    with pytest.raises(reports.ReportSpecError, match=message) as refused:
        reports.load(path)
    assert str(path) in str(refused.value)


def test_the_late_delivery_alert_reads_the_semantic_metric(warehouse):
    """The alert's value equals the semantic layer's late_delivery_rate over the same orders."""
    settings, _ = warehouse
    (alert,) = [a for a in reports.load().alerts if a.database == "warehouse"]
    with served.connect(settings.warehouse_path) as con:
        (value,) = con.execute(alert.sql).fetchone()
        (last_day,) = con.execute("select last_day from mart_reporting_window").fetchone()
        compiled = compile_query(Query(["late_delivery_rate"]))
        # The same metric over the orders delivered in the window, through the compiler.
        sql = compiled.sql.replace(
            "from fact_deliveries as m", "from fact_deliveries as m where cast(m.delivered_customer_at as date) between ? and ?"
        )
        (expected,) = con.execute(sql, [last_day - dt.timedelta(days=6), last_day]).fetchone()
    assert value == pytest.approx(expected) and 0 < value < 1


@pytest.fixture
def runs(ops_url):
    """A fresh operations store; returns a function that records a run finished `hours` ago."""
    with fresh_database(ops_url, "olist_test_alerts") as url:
        with store.connect(url) as conn:  # migrated

            def record(status: str, hours: float, published: str | None = "warehouse-x.duckdb"):
                conn.execute(
                    """insert into pipeline_runs (trigger, status, started_at, finished_at, published_file)
                       values ('schedule', %s, now() - make_interval(secs => %s), now() - make_interval(secs => %s), %s)""",
                    (status, hours * 3600 + 60, hours * 3600, published if status == "succeeded" else None),
                )
                (alert,) = [a for a in reports.load().alerts if a.database == "operations"]
                return next(iter(conn.execute(alert.sql).fetchone().values()))

            yield record


def test_the_pipeline_alert_answers_one_for_a_failed_run_or_a_stale_warehouse(runs):
    assert runs("succeeded", hours=2) == 0
    assert runs("failed", hours=1) == 1  # the last run that ended failed
    assert runs("skipped", hours=0.5) == 1  # a skipped run changes nothing
    assert runs("succeeded", hours=0.2) == 0  # a later success clears it
    assert runs("succeeded", hours=0.1, published=None) == 0  # nothing new to publish: still fresh from the last publish


def test_the_pipeline_alert_fires_when_the_last_publish_is_too_old(runs):
    assert runs("succeeded", hours=31) == 1  # the spec allows 30 hours
    assert runs("succeeded", hours=29) == 0

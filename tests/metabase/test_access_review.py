"""Metabase's access review, against the stand-in (tests/metabase/standin.py, which checks every
request against Metabase's API contract): changes an admin makes in Metabase become audit
events, once, in a trail that still verifies."""

from __future__ import annotations


import pytest
import requests

from olist_bi.bi.metabase.assets import ASSETS_DIR
from olist_bi import bi
from olist_bi.bi.metabase.tool import Metabase
from olist_bi.bi.metabase.provision import admin_password, provision
from olist_bi.operations import audit, store
from tests.conftest import fresh_database, make_settings

ASSETS = ASSETS_DIR


@pytest.fixture
def settings(warehouse, ops_url, standin, tmp_path):
    """An operations store of its own (the review keeps one snapshot per tool), the stand-in as
    the platform's Metabase, and no Superset answering."""
    served, _ = warehouse
    with fresh_database(ops_url, "olist_test_review") as url:
        with store.connect(url):
            pass  # migrated
        yield make_settings(
            tmp_path / "home",
            url,
            olist_warehouse_path=served.warehouse_path,
            olist_metabase_url=standin.url,
            olist_superset_url="http://127.0.0.1:9",
        )


def _events(settings, after_id: int) -> list[dict]:
    with store.connect(settings.database_url) as ops:
        return ops.execute("select * from audit_logs where id > %s and source = 'access_review' order by id", (after_id,)).fetchall()


def _last_id(settings) -> int:
    with store.connect(settings.database_url) as ops:
        return ops.execute("select coalesce(max(id), 0) as n from audit_logs").fetchone()["n"]


def _admin(standin, settings) -> dict:
    password = admin_password(settings)
    answer = requests.post(f"{standin.url}/api/session/", json={"username": settings.metabase_admin_email, "password": password}, timeout=5)
    assert answer.status_code == 200, answer.text
    return {"X-Metabase-Session": answer.json()["id"]}


def test_changes_made_in_metabase_become_audit_events_once(standin, settings):
    report = provision(settings, standin.url, ASSETS)
    first = Metabase(settings).review_access()
    assert first == ["access.snapshot.first"]
    start = _last_id(settings)
    assert Metabase(settings).review_access() == []  # nothing changed: nothing recorded

    s = standin.state
    group = {g["name"]: g["id"] for g in s.groups.values()}
    viewer = next(u for u in s.users.values() if u["email"] == "viewer@olist-bi.local")
    analyst = next(u for u in s.users.values() if u["email"] == "analyst@olist-bi.local")
    admin = _admin(standin, settings)
    # An admin, in Metabase's UI: the viewer joins the analysts, the analyst is deactivated, and
    # the viewers may now write native queries on the warehouse.
    memberships = [{"id": gid} for gid in (group["All Users"], group["Olist Viewers"], group["Olist Analysts"])]
    assert requests.put(f"{standin.url}/api/user/{viewer['id']}", json={"user_group_memberships": memberships}, headers=admin, timeout=5).ok
    assert requests.delete(f"{standin.url}/api/user/{analyst['id']}", headers=admin, timeout=5).json() == {"success": True}
    graph = requests.get(f"{standin.url}/api/permissions/graph", headers=admin, timeout=5).json()
    warehouse = str(report.ids["database:warehouse"])
    change = {
        "revision": graph["revision"],
        "groups": {str(group["Olist Viewers"]): {warehouse: {"create-queries": "query-builder-and-native"}}},
    }
    assert requests.put(f"{standin.url}/api/permissions/graph", json=change, headers=admin, timeout=5).ok

    recorded = Metabase(settings).review_access()
    assert standin.violations == []
    assert sorted(recorded) == ["access.role.granted", "access.role.permissions_changed", "access.user.deactivated"]
    events = {e["action"]: e for e in _events(settings, start)}
    granted = events["access.role.granted"]
    assert granted["target"] == "viewer@olist-bi.local" and granted["details"]["role"] == "Olist Analysts"
    assert granted["actor"] == "metabase:unknown" and granted["details"]["changed_on"]  # Metabase's update time
    assert events["access.user.deactivated"]["target"] == "analyst@olist-bi.local"
    changed = events["access.role.permissions_changed"]
    warehouse_name = s.databases[int(warehouse)]["name"]
    assert changed["target"] == "Olist Viewers"
    assert changed["details"]["added"] == [f"create-queries: query-builder-and-native on database {warehouse_name}"]
    assert changed["details"]["removed"] == []  # "no" is left out of Metabase's graph, as it leaves it out

    assert Metabase(settings).review_access() == []  # recorded once
    with store.connect(settings.database_url) as ops:
        assert audit.verify(ops).ok
        rows = {r["username"]: r for r in ops.execute("select * from users where source = 'metabase'").fetchall()}
    assert rows["analyst@olist-bi.local"]["active"] is False
    assert "Olist Analysts" in rows["viewer@olist-bi.local"]["roles"]


def test_the_scheduler_reviews_every_tool_that_answers(standin, settings):
    provision(settings, standin.url, ASSETS)
    outcomes = {o.tool: o for o in bi.review_access(settings)}
    assert outcomes["superset"].status == "skipped"
    assert outcomes["metabase"].status == "done" and "access.snapshot.first" in outcomes["metabase"].message


def test_the_cli_reviews_each_tool_and_fails_when_none_answers(standin, settings, monkeypatch):
    from click.testing import CliRunner

    from olist_bi.cli import main

    provision(settings, standin.url, ASSETS)
    for key, value in {
        "OLIST_HOME": str(settings.home),
        "OLIST_DATABASE_URL": settings.database_url,
        "OLIST_METABASE_URL": standin.url,
        "OLIST_SUPERSET_URL": "http://127.0.0.1:9",
    }.items():
        monkeypatch.setenv(key, value)
    answer = CliRunner().invoke(main, ["audit", "review"])
    assert answer.exit_code == 0, answer.output
    assert "access review of metabase: done: 1 events recorded (access.snapshot.first)" in answer.output
    assert "access review of superset: skipped" in answer.output
    monkeypatch.setenv("OLIST_METABASE_URL", "http://127.0.0.1:9")
    answer = CliRunner().invoke(main, ["audit", "review"])
    assert answer.exit_code == 1 and "access review of metabase: skipped" in answer.output

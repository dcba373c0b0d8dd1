"""`olist-bi metabase provision` against the Metabase stand-in (tests/metabase/standin.py),
which checks every request against Metabase's published API contract and answers as
Metabase's handlers do. No real Metabase runs here; docs/metabase.md says how to check the
client against one."""

from __future__ import annotations

import os
import re
import shutil

import duckdb
import psycopg
import pytest
import requests
import yaml
from click.testing import CliRunner

from olist_bi.bi.metabase.assets import ASSETS_DIR
from olist_bi.cli import main
from olist_bi.dashboards import dashboards
from olist_bi.semantic.catalog import load
from olist_bi.engines.duckdb.warehouse import reader_path
from olist_bi.engines.duckdb import publish
from olist_bi.engines.duckdb import warehouse as provider
from olist_bi.bi.metabase import lockdown
from olist_bi.bi.metabase import provision as provision_module
from olist_bi.bi.metabase.client import MetabaseApiError, MetabaseStarting
from olist_bi.bi.metabase.provision import ProvisionError, provision
from tests.conftest import make_settings
from tests.metabase.standin import MetabaseStandIn
from tests.test_postgres import free_port

ASSETS = ASSETS_DIR
SP = "olist_regional_sp"
BUSINESS = [d for d in dashboards() if d.audience == "business"]
SEMANTIC = len(load().models) + len(load().metrics)  # the semantic layer's models and metrics (bi/metabase/semantic.py)
# every dashboard's questions and the semantic layer's cards, and a copy of each business
# collection's on the SP regional managers' database
CHARTS = sum(len(d.charts) for d in dashboards()) + sum(len(d.charts) for d in BUSINESS) + 2 * SEMANTIC
DASHBOARDS = len(dashboards()) + len(BUSINESS)
COLLECTIONS = 1 + DASHBOARDS + 2  # "Olist BI", one per dashboard, the semantic layer's and its SP copy


def state_snapshot(server: MetabaseStandIn) -> dict:
    s = server.state
    return {
        "collections": sorted((c["id"], c["entity_id"], c["name"]) for c in s.collections.values()),
        "cards": sorted((c["id"], c["entity_id"], c["name"], c["archived"]) for c in s.cards.values()),
        "dashboards": sorted((d["id"], d["entity_id"], tuple(sorted(c["id"] for c in d["dashcards"]))) for d in s.dashboards.values()),
        "databases": sorted(s.databases),
        "groups": sorted(s.groups),
        "users": sorted(s.users),
    }


@pytest.mark.starting
def test_first_run_sets_metabase_up_and_provisions_everything(standin, settings):
    messages = []
    report = provision(settings, standin.url, ASSETS, say=messages.append)
    assert standin.violations == []
    assert report.setup
    assert report.created["database"] == 3 and report.created["collection"] == COLLECTIONS
    assert report.created["card"] == CHARTS and report.created["dashboard"] == DASHBOARDS and report.created["group"] == 3
    assert any("waiting for Metabase to sync" in m for m in messages)
    assert 503 in {status for _, path, status in standin.requests if path == "/api/health"}, "the stand-in was not starting"

    s = standin.state
    warehouse = next(d for d in s.databases.values() if d["engine"] == "duckdb")
    details = warehouse["details"]
    assert details["read_only"] is True and re.fullmatch(r".*/warehouse\.reader\.metabase-[0-9a-f]{12}\.duckdb", details["database_file"])
    assert lockdown.attached_generation(details["init_sql"]) == str(
        publish.current(reader_path(settings.warehouse_path))
    )  # an empty catalog opened, the reader copy's generation file attached
    assert next(d for d in s.databases.values() if d["engine"] == "postgres")["details"]["user"] == "olist_ops_reader"
    for spec in dashboards():
        dashboard = next(d for d in s.dashboards.values() if d["name"] == spec.title)
        assert len(dashboard["dashcards"]) == len(spec.charts)
        assert {c["card_id"] for c in dashboard["dashcards"]} <= set(s.cards)
        mapped = {m["parameter_id"] for c in dashboard["dashcards"] for m in c["parameter_mappings"]}
        assert mapped == {p["id"] for p in dashboard["parameters"]}
        assert s.collections[dashboard["collection_id"]]["location"].count("/") == 2  # inside "Olist BI"


def _session(standin: MetabaseStandIn, email: str, password: str) -> dict:
    answer = requests.post(f"{standin.url}/api/session/", json={"username": email, "password": password}, timeout=5)
    assert answer.status_code == 200, answer.text
    return {"X-Metabase-Session": answer.json()["id"]}


def _ad_hoc(standin: MetabaseStandIn, headers: dict, database: int, sql: str) -> dict:
    body = {"type": "native", "database": database, "native": {"query": sql}}
    answer = requests.post(f"{standin.url}/api/dataset/", json=body, headers=headers, timeout=30)
    assert answer.status_code == 202, answer.text
    return answer.json()


def test_permissions_are_the_open_source_editions_and_hold_when_users_run_questions(standin, settings):
    report = provision(settings, standin.url, ASSETS)
    assert standin.violations == []  # nothing that needs a paid feature (402) was sent
    s = standin.state
    group = {g["name"]: str(g["id"]) for g in s.groups.values()}
    wh, ops = report.ids["database:warehouse"], report.ids["database:operations"]
    data = s.data_graph["groups"]
    assert data[group["Olist Viewers"]][str(wh)] == {"view-data": "unrestricted", "create-queries": "no"}
    assert data[group["Olist Analysts"]][str(wh)]["create-queries"] == "query-builder-and-native"
    assert data[group["Olist Analysts"]][str(ops)]["create-queries"] == "no"
    assert {p["create-queries"] for p in data[group["All Users"]].values()} == {"no"}  # Metabase's default (native) is taken back
    collections = s.collection_graph["groups"]
    health = str(report.ids["collection:platform-health"])
    sales = str(report.ids["collection:executive-overview"])
    assert collections[group["Olist Viewers"]][sales] == "read" and collections[group["Olist Viewers"]].get(health, "none") == "none"
    assert collections[group["All Users"]][sales] == "none"  # it had inherited "write" from the root collection
    assert collections[group["All Users"]][health] == "none" and collections[group["Administrators"]][health] == "write"

    viewer = _session(standin, "viewer@olist-bi.local", report.users["viewer@olist-bi.local"])
    analyst = _session(standin, "analyst@olist-bi.local", report.users["analyst@olist-bi.local"])
    revenue = report.ids["card:executive-overview/revenue_by_state"]  # the top 10 states
    for who in (viewer, analyst):  # the business questions run for both
        answer = requests.post(f"{standin.url}/api/card/{revenue}/query", headers=who, timeout=30).json()
        assert answer["status"] == "completed" and answer["row_count"] == 10, answer
        runs = report.ids["card:platform-health/runs"]  # Platform health is the admins'
        assert requests.post(f"{standin.url}/api/card/{runs}/query", headers=who, timeout=30).status_code == 403
        assert _ad_hoc(standin, who, ops, "select 1")["error"] == "You do not have permissions to run this query."
    assert _ad_hoc(standin, viewer, wh, "select 1")["error"] == "You do not have permissions to run this query."
    counted = _ad_hoc(standin, analyst, wh, "select count(*) from fact_deliveries")
    assert counted["status"] == "completed" and counted["data"]["rows"][0][0] > 0, counted


def test_the_regional_manager_reads_sp_only_in_metabase(standin, settings):
    """Metabase's open-source edition has no row-level security: the regional manager's group
    reads a database that holds SP's rows only (the scoped copy), through copies of the business
    dashboards, and nothing else of ours."""
    report = provision(settings, standin.url, ASSETS)
    assert standin.violations == []
    s = standin.state
    group = {g["name"]: str(g["id"]) for g in s.groups.values()}["Olist Regional (SP)"]
    wh, ops, sp = (report.ids[f"database:{k}"] for k in ("warehouse", "operations", SP))
    sp_generation = publish.current(reader_path(settings.warehouse_path, SP))
    assert lockdown.attached_generation(s.databases[sp]["details"]["init_sql"]) == str(sp_generation)
    locking = lockdown.lock_statements(str(sp_generation.parent))  # locked down as the reader copy, its own folder left open
    assert s.databases[sp]["details"]["init_sql"].endswith(";\n".join(locking) + ";")
    data = s.data_graph["groups"]
    assert data[group][str(sp)]["create-queries"] == "query-builder-and-native"
    assert data[group][str(wh)]["create-queries"] == data[group][str(ops)]["create-queries"] == "no"
    for other in ("Olist Viewers", "Olist Analysts", "All Users"):
        gid = {g["name"]: str(g["id"]) for g in s.groups.values()}[other]
        assert data[gid][str(sp)]["create-queries"] == "no"
    readable = {c for c, level in s.collection_graph["groups"][group].items() if level != "none"}
    assert readable == {str(report.ids[f"collection:{key}--{SP}"]) for key in [d.slug for d in BUSINESS] + ["semantic-layer"]}

    regional = _session(standin, "regional_sp@olist-bi.local", report.users["regional_sp@olist-bi.local"])
    by_state = report.ids[f"card:executive-overview--{SP}/revenue_by_state"]
    answer = requests.post(f"{standin.url}/api/card/{by_state}/query", headers=regional, timeout=30).json()
    assert answer["status"] == "completed" and [row[0] for row in answer["data"]["rows"]] == ["SP"], answer
    for card in (report.ids["card:executive-overview/revenue_by_state"], report.ids["card:platform-health/runs"]):
        assert requests.post(f"{standin.url}/api/card/{card}/query", headers=regional, timeout=30).status_code == 403
    for database in (wh, ops):
        assert _ad_hoc(standin, regional, database, "select 1")["error"] == "You do not have permissions to run this query."
    # its own SQL on its database: SP's rows and nothing else, however it asks
    states = _ad_hoc(standin, regional, sp, "select distinct customer_state from fact_deliveries")
    assert states["data"]["rows"] == [["SP"]], states
    with provider.connect(settings.warehouse_path) as con:  # the platform's own reader: one configuration per file and process
        expected = con.execute("select count(*) from fact_deliveries where customer_state = 'SP'").fetchone()[0]
    counted = _ad_hoc(standin, regional, sp, "select count(*) from fact_deliveries")["data"]["rows"]
    assert counted == [[expected]] and expected > 0
    everything = publish.current(reader_path(settings.warehouse_path))
    for path in (everything, f"{sp_generation.parent}/../{everything.parent.name}/{everything.name}"):
        escape = _ad_hoc(standin, regional, sp, f"attach '{path}' as everything")
        assert "disabled by configuration" in escape["error"], escape
    # the folder it may attach from is one it cannot write: Metabase's mount is read-only
    written = _ad_hoc(standin, regional, sp, f"copy (select 1) to '{sp_generation.parent}/x.csv'")
    assert "Read-only file system" in written["error"] and not (sp_generation.parent / "x.csv").exists(), written


def test_a_second_run_creates_nothing_and_keeps_every_id(standin, settings):
    provision(settings, standin.url, ASSETS)
    before, mark = state_snapshot(standin), len(standin.requests)
    report = provision(settings, standin.url, ASSETS)
    assert standin.violations == []
    assert not report.setup and sum(report.created.values()) == 0, report.created
    assert report.updated["card"] == CHARTS and sum(report.archived.values()) == 0
    assert state_snapshot(standin) == before
    with psycopg.connect(settings.database_url) as conn:
        events = conn.execute("select target, details from audit_logs where action = 'metabase.provisioned' order by id").fetchall()
    assert events[-2][1]["setup"] and events[-2][1]["created"]["card"] == CHARTS
    assert events[-1] == (standin.url, {**events[-1][1], "setup": False, "created": {}})
    posts = [
        p
        for m, p, status in standin.requests[mark:]
        if m == "POST" and p not in ("/api/session/", "/api/dataset/") and not p.endswith("/sync_schema")  # a query creates nothing
    ]
    assert posts == [], posts


def test_a_question_no_spec_makes_is_archived(standin, settings, tmp_path):
    provision(settings, standin.url, ASSETS)
    assets = tmp_path / "assets"
    shutil.copytree(ASSETS, assets)
    path = assets / "dashboards" / "sellers.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["cards"] = [c for c in spec["cards"] if c["key"] != "gmv"]
    spec["dashboard"]["dashcards"] = [d for d in spec["dashboard"]["dashcards"] if d["card"] != "gmv"]
    path.write_text(yaml.safe_dump(spec))
    report = provision(settings, standin.url, assets)
    assert report.archived["card"] == 2  # on Sellers and on its SP copy
    gmv = next(
        c
        for c in standin.state.cards.values()
        if c["name"] == "GMV, latest month" and c["collection_id"] == report.ids["collection:sellers"]
    )
    assert gmv["archived"]
    sellers = standin.state.dashboards[report.ids["dashboard:sellers"]]
    assert gmv["id"] not in {d["card_id"] for d in sellers["dashcards"]}


def test_a_stale_permission_revision_is_read_again_and_retried(standin, settings):
    standin.stale_next = {"data": 1, "collection": 1}
    messages = []
    provision(settings, standin.url, ASSETS, say=messages.append)
    conflicts = [(m, p) for m, p, status in standin.requests if status == 409]
    assert conflicts == [("PUT", "/api/permissions/graph"), ("PUT", "/api/collection/graph")]
    assert sum("stale revision" in m for m in messages) == 2
    viewers = next(str(g["id"]) for g in standin.state.groups.values() if g["name"] == "Olist Viewers")
    assert standin.state.data_graph["groups"][viewers]  # written on the retry


def test_permissions_that_keep_changing_stop_with_a_clear_error(standin, settings):
    standin.stale_next = {"data": 10}
    with pytest.raises(ProvisionError, match="kept changing under us"):
        provision(settings, standin.url, ASSETS)


def test_a_metabase_that_is_still_starting_is_named(settings):
    server = MetabaseStandIn(initializing=10_000)
    server.start()
    try:
        with pytest.raises(MetabaseStarting, match=r"answered 503: initializing.*not ready after 1 s"):
            provision(settings, server.url, ASSETS, wait=1)
    finally:
        server.stop()


def test_a_failed_connection_test_names_the_database_and_the_setting(standin, settings, tmp_path):
    broken = make_settings(
        settings.home,
        settings.database_url,
        olist_warehouse_path=settings.warehouse_path,
        olist_metabase_warehouse_path=tmp_path / "nowhere.duckdb",
    )
    refused = r"could not connect to Olist warehouse \(duckdb: .*/warehouse\.reader\.metabase-\w+\.duckdb\): IO Error"
    refused += ".*OLIST_METABASE_WAREHOUSE_PATH"
    with pytest.raises(ProvisionError, match=refused):
        provision(broken, standin.url, ASSETS)
    assert standin.state.cards == {}  # nothing after the failed connection
    wrong_host = make_settings(
        settings.home, settings.database_url, olist_metabase_postgres_host="127.0.0.2", olist_warehouse_path=settings.warehouse_path
    )
    with pytest.raises(ProvisionError, match="(?s)Olist operations.*127.0.0.2.*OLIST_METABASE_POSTGRES_HOST"):
        provision(wrong_host, standin.url, ASSETS)


def test_a_wrong_admin_password_is_a_clear_401(standin, settings):
    provision(settings, standin.url, ASSETS)
    wrong = make_settings(
        settings.home, settings.database_url, olist_metabase_admin_password="not-the-password", olist_warehouse_path=settings.warehouse_path
    )
    with pytest.raises(MetabaseApiError, match=r"answered 401: password: did not match stored password \(check OLIST_METABASE_ADMIN_EMAIL"):
        provision(wrong, standin.url, ASSETS)


def test_demo_users_log_in_and_sit_in_their_groups(standin, settings):
    report = provision(settings, standin.url, ASSETS)
    assert set(report.users) == {"viewer@olist-bi.local", "analyst@olist-bi.local", "manager@olist-bi.local", "regional_sp@olist-bi.local"}
    s = standin.state
    by_email = {u["email"]: u["id"] for u in s.users.values()}
    names = {g["id"]: g["name"] for g in s.groups.values()}
    groups = {email: {names[m["group_id"]] for m in s.memberships if m["user_id"] == uid} for email, uid in by_email.items()}
    assert groups["viewer@olist-bi.local"] == {"All Users", "Olist Viewers"}
    assert groups["manager@olist-bi.local"] == {"All Users", "Administrators"}
    assert groups["regional_sp@olist-bi.local"] == {"All Users", "Olist Regional (SP)"}
    answer = requests.post(
        f"{standin.url}/api/session/",
        json={"username": "viewer@olist-bi.local", "password": report.users["viewer@olist-bi.local"]},
        timeout=5,
    )
    assert answer.status_code == 200


def test_production_refuses_a_generated_admin_password(standin, settings):
    production = make_settings(
        settings.home,
        settings.database_url,
        olist_env="production",
        olist_warehouse_path=settings.warehouse_path,
        olist_ops_reader_password="x" * 20,
    )
    with pytest.raises(Exception, match="OLIST_METABASE_ADMIN_PASSWORD is required when OLIST_ENV=production"):
        provision(production, standin.url, ASSETS)


def test_the_stand_in_refuses_what_the_contract_refuses(standin):
    standin.initializing = 0
    bad = requests.post(f"{standin.url}/api/card/", json={"name": "x", "display": "table"}, timeout=5)
    assert bad.status_code == 400 and "dataset_query" in bad.text
    assert requests.get(f"{standin.url}/api/cards", timeout=5).status_code == 400
    assert requests.put(f"{standin.url}/api/collection/graph?skip_graph=true", json={"groups": {}}, timeout=5).status_code == 400
    wrong_parameter = {"groups": {}, "revision": "one"}
    assert requests.put(f"{standin.url}/api/permissions/graph", json=wrong_parameter, timeout=5).status_code == 400
    assert standin.violations == [
        "body: (root): 'dataset_query' is a required property",
        "body: (root): 'visualization_settings' is a required property",
        "GET /api/cards: no such path in Metabase's API",
        "PUT /api/collection/graph: unknown query parameter 'skip_graph'",
        "body: revision: 'one' is not valid under any of the given schemas",
    ]


def test_the_cli_provisions_twice_with_no_duplicates(standin, settings, monkeypatch):
    for key, value in {
        "OLIST_HOME": settings.home,
        "OLIST_DATABASE_URL": settings.database_url,
        "OLIST_WAREHOUSE_PATH": settings.warehouse_path,
    }.items():
        monkeypatch.setenv(key, str(value))
    first = CliRunner().invoke(main, ["metabase", "provision", "--url", standin.url])
    assert first.exit_code == 0, first.output
    assert f"card: {CHARTS} created" in first.output and "demo logins" in first.output
    second = CliRunner().invoke(main, ["metabase", "provision", "--url", standin.url])
    assert second.exit_code == 0, second.output
    assert "0 created" in second.output and f"card: 0 created, {CHARTS} updated" in second.output
    assert "subscription: 2 created" in first.output and "subscription: 0 created, 0 updated" in second.output
    assert standin.violations == []
    assert len(standin.state.cards) == CHARTS and len(standin.state.dashboards) == DASHBOARDS


def test_the_cli_says_what_is_wrong_when_no_metabase_answers(settings, monkeypatch):
    monkeypatch.setenv("OLIST_HOME", str(settings.home))
    monkeypatch.setenv("OLIST_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(main, ["metabase", "provision", "--url", "http://127.0.0.1:9", "--wait", "0"])
    assert result.exit_code == 1
    assert "no Metabase answers at http://127.0.0.1:9" in result.output
    assert provision_module.SITE_NAME == "Olist BI"


def test_a_metabase_that_can_write_the_warehouse_is_refused(settings):
    """The locked DuckDB in Metabase may open its copy's generations folder (to attach the next
    publish), and DuckDB lets a query write there: provisioning tries a write as Metabase's admin
    and stops, naming the folder and the read-only mount, when it works."""
    writable = MetabaseStandIn(initializing=0, sync_polls=0, read_only_mount=False)
    writable.start()
    try:
        with pytest.raises(ProvisionError, match=r"Metabase can write .*warehouse\.reader\.duckdb\.generations: .*warehouse:/warehouse:ro"):
            provision(settings, writable.url, ASSETS)
    finally:
        writable.stop()
    folder = publish.generations_dir(reader_path(settings.warehouse_path))
    assert [p.name for p in folder.iterdir() if "probe" in p.name] == []  # the probe it wrote is gone


def test_an_api_key_is_used_instead_of_the_password(standin, settings):
    provision(settings, standin.url, ASSETS)
    admin = next(u for u in standin.state.users.values() if u["is_superuser"])
    standin.state.api_keys["mb_standin_key"] = admin["id"]
    keyed = make_settings(
        settings.home,
        settings.database_url,
        olist_metabase_api_key="mb_standin_key",
        olist_metabase_admin_password="unused-and-wrong",
        olist_warehouse_path=settings.warehouse_path,
    )
    mark = len(standin.requests)
    report = provision(keyed, standin.url, ASSETS)
    assert sum(report.created.values()) == 0 and standin.violations == []
    assert ("POST", "/api/session/", 200) not in standin.requests[mark:]
    standin.state.api_keys.clear()
    with pytest.raises(MetabaseApiError, match="answered 401: Unauthenticated"):
        provision(keyed, standin.url, ASSETS)


def test_after_a_publish_metabase_is_pointed_at_the_new_generation_and_reopens_its_pool(standin, settings, tmp_path):
    from olist_bi import bi
    from olist_bi.engines.duckdb import warehouse
    from olist_bi.engines.duckdb import publish

    served = tmp_path / "served" / "warehouse.duckdb"
    served.parent.mkdir()
    shutil.copyfile(publish.current(settings.warehouse_path), served)
    reader = warehouse.reader_path(served, warehouse.READER)  # what Metabase opens: the reader copy
    first = _copy_reader(settings, served, warehouse.READER)
    _copy_reader(settings, served, SP)  # and the regional managers' database: the SP copy
    seen = tmp_path / "mounted"  # the warehouse volume, mounted elsewhere in Metabase's container
    seen.symlink_to(served.parent)
    mine = make_settings(
        settings.home,
        settings.database_url,
        olist_warehouse_path=served,
        olist_metabase_url=standin.url,
        olist_metabase_warehouse_path=seen / "warehouse.duckdb",
        olist_superset_port=free_port(),
    )  # no Superset there
    report = provision(mine, standin.url, ASSETS)
    database = standin.state.databases[report.ids["database:warehouse"]]
    catalog = database["details"]["database_file"]  # as Metabase sees it
    assert catalog.startswith(f"{seen}/warehouse.reader.metabase-")
    assert lockdown.attached_generation(database["details"]["init_sql"]) == f"{seen}/warehouse.reader.duckdb.generations/{first.name}"
    closed = dict(standin.state.pools_closed)
    provision(mine, standin.url, ASSETS)
    assert standin.state.pools_closed == closed  # nothing changed: Metabase keeps its pool

    admin = _session(standin, mine.metabase_admin_email, provision_module.admin_password(mine))
    marker = "select n from publish_marker"
    assert "does not exist" in _ad_hoc(standin, admin, database["id"], marker)["error"]  # the pool is open, on the first file

    built = publish.building_path(reader, 2)
    shutil.copyfile(first, built)
    with duckdb.connect(str(built)) as con:
        con.execute("create table publish_marker as select 2 as n")
    second = publish.publish(built, reader)
    assert "does not exist" in _ad_hoc(standin, admin, database["id"], marker)["error"]  # published, but Metabase still reads the old file
    outcomes = {o.tool: o for o in bi.after_publish(mine, say=lambda m: None)}
    assert outcomes["metabase"].status == "done", outcomes
    assert lockdown.attached_generation(database["details"]["init_sql"]) == f"{seen}/warehouse.reader.duckdb.generations/{second.name}"
    assert database["details"]["database_file"] == catalog  # the same instance reads it
    assert f"DETACH DATABASE IF EXISTS {lockdown.alias(first.name)};" in database["details"]["init_sql"]
    assert standin.state.pools_closed[database["id"]] == closed[database["id"]] + 1
    assert _ad_hoc(standin, admin, database["id"], marker)["data"]["rows"] == [[2]]  # the step made Metabase read the new file
    assert outcomes["superset"].status == "skipped"  # none runs at OLIST_SUPERSET_URL here
    assert standin.violations == []
    assert warehouse.current(reader) == second.resolve()


def _copy_reader(settings, served, name: str):
    """Publish, beside `served`, the first generation of the test warehouse's reader copy `name`."""
    target = reader_path(served, name)
    built = publish.building_path(target, 1)
    shutil.copyfile(publish.current(reader_path(settings.warehouse_path, name)), built)
    return publish.publish(built, target)


def _served_with_a_reader(settings, tmp_path, standin):
    """A served warehouse of its own, its reader copy's first generation, and settings whose
    Metabase (the stand-in) sees it: (settings, the reader path)."""
    from olist_bi.engines.duckdb import warehouse

    served = tmp_path / "served" / "warehouse.duckdb"
    served.parent.mkdir()
    shutil.copyfile(publish.current(settings.warehouse_path), served)
    reader = warehouse.reader_path(served, warehouse.READER)
    _copy_reader(settings, served, warehouse.READER)
    _copy_reader(settings, served, SP)
    mine = make_settings(
        settings.home,
        settings.database_url,
        olist_warehouse_path=served,
        olist_metabase_url=standin.url,
        olist_superset_port=free_port(),
    )
    return mine, reader


def _publish_again(reader, number: int):
    built = publish.building_path(reader, number)
    shutil.copyfile(publish.current(reader), built)
    return publish.publish(built, reader)


def test_a_sync_leaves_the_drivers_clones_open_on_one_instance_that_detaches_old_generations(standin, settings, tmp_path):
    """The model of the DuckDB driver leaks as 1.5.5.0 does: a sync's clones are never closed, so
    the instance they were cloned from stays alive after its pool is closed. It is the catalog's,
    the same at every publish, and the generation a publish replaces is detached from it."""
    from olist_bi import bi

    mine, reader = _served_with_a_reader(settings, tmp_path, standin)
    report = provision(mine, standin.url, ASSETS)  # it asks for a sync of each database
    database = standin.state.databases[report.ids["database:warehouse"]]
    catalog, first = database["details"]["database_file"], publish.current(reader)
    sp = standin.state.databases[report.ids["database:olist_regional_sp"]]["details"]["database_file"]
    assert standin.duckdb.instances() == sorted([catalog, sp])
    assert standin.duckdb.attached()[catalog] == [str(first)]
    second = _publish_again(reader, 2)
    bi.after_publish(mine, say=lambda m: None)  # new details: Metabase closes the pool, the clones keep the instance
    admin = _session(standin, mine.metabase_admin_email, provision_module.admin_password(mine))
    assert _ad_hoc(standin, admin, database["id"], "select count(*) from dim_customer")["status"] == "completed"
    assert standin.duckdb.instances() == sorted([catalog, sp])
    assert standin.duckdb.attached()[catalog] == [str(second)]  # the first generation released


def test_an_analysts_temporary_objects_never_change_another_users_figures(standin, settings, tmp_path):
    """Metabase hands its pooled connections to every user, and DuckDB resolves a temporary
    macro, table or view before the warehouse's: a connection holding one answers no query (its
    checkout's `init_sql` refuses), until a publish reopens the pool."""
    from olist_bi import bi

    mine, reader = _served_with_a_reader(settings, tmp_path, standin)
    report = provision(mine, standin.url, ASSETS)
    warehouse_id = report.ids["database:warehouse"]
    analyst = _session(standin, "analyst@olist-bi.local", report.users["analyst@olist-bi.local"])
    admin = _session(standin, mine.metabase_admin_email, provision_module.admin_password(mine))
    figure = "select nullif(10, 0) as n, count(*) as orders from fact_deliveries"
    truth = _ad_hoc(standin, admin, warehouse_id, figure)["data"]["rows"]
    for sql in ("create temp macro nullif(a, b) as 7", "create temp view fact_deliveries as select 1 as order_id"):
        for _ in range(2):  # on each of the pool's two connections
            _ad_hoc(standin, analyst, warehouse_id, sql)
    for _ in range(4):
        answer = _ad_hoc(standin, admin, warehouse_id, figure)
        assert answer["status"] == "failed" and "holds temporary objects" in answer["error"], answer
    _publish_again(reader, 2)
    bi.after_publish(mine, say=lambda m: None)  # new details: Metabase reopens its pool
    assert _ad_hoc(standin, admin, warehouse_id, figure)["data"]["rows"] == truth


def test_an_analyst_who_detaches_the_served_generation_costs_nobody_the_next_query(standin, settings):
    """Any connection may DETACH a database in DuckDB; the next checkout's `init_sql` attaches the
    served generation again."""
    report = provision(settings, standin.url, ASSETS)
    warehouse_id = report.ids["database:warehouse"]
    analyst = _session(standin, "analyst@olist-bi.local", report.users["analyst@olist-bi.local"])
    admin = _session(standin, settings.metabase_admin_email, provision_module.admin_password(settings))
    served = lockdown.alias(lockdown.attached_generation(standin.state.databases[warehouse_id]["details"]["init_sql"]))
    names = "select database_name from duckdb_databases() where not internal and database_name <> current_database()"
    (catalog,) = _ad_hoc(standin, analyst, warehouse_id, names)["data"]["rows"][0]  # the file Metabase opens
    detached = _ad_hoc(standin, analyst, warehouse_id, f'use "{catalog}"; detach database {served}')
    assert detached["status"] == "completed", detached
    for _ in range(3):  # each of the pool's connections, and one again
        answer = _ad_hoc(standin, admin, warehouse_id, "select count(*) from fact_deliveries")
        assert answer["status"] == "completed" and answer["data"]["rows"][0][0] > 0, answer


def test_twenty_publishes_leave_at_most_two_duckdb_instances_in_metabase(standin, settings, tmp_path):
    from olist_bi import bi

    mine, reader = _served_with_a_reader(settings, tmp_path, standin)
    report = provision(mine, standin.url, ASSETS)
    database_id = report.ids["database:warehouse"]
    admin = _session(standin, mine.metabase_admin_email, provision_module.admin_password(mine))
    for number in range(2, 22):
        served = _publish_again(reader, number)
        bi.after_publish(mine, say=lambda m: None)
        assert _ad_hoc(standin, admin, database_id, "select count(*) from dim_customer")["status"] == "completed"
        standin.sync(database_id)  # Metabase's own hourly sync, between two daily publishes
    assert len(standin.duckdb.instances()) <= 2, standin.duckdb.instances()  # the reader copy's and the SP copy's
    catalog = standin.state.databases[database_id]["details"]["database_file"]
    assert standin.duckdb.attached()[catalog] == [str(served)]


def test_nothing_provisioning_sends_needs_a_paid_feature(standin, settings, tmp_path):
    """The open-source edition answers 402 to `view-data: blocked`: provisioning must not send it."""
    provision(settings, standin.url, ASSETS)
    assert standin.violations == []
    assets = tmp_path / "assets"
    shutil.copytree(ASSETS, assets)
    access = yaml.safe_load((assets / "access.yaml").read_text())
    access["groups"]["Olist Viewers"]["databases"]["operations"]["view-data"] = "blocked"  # what this client used to send
    (assets / "access.yaml").write_text(yaml.safe_dump(access))
    with pytest.raises(
        MetabaseApiError, match=r"answered 402: The blocked permissions functionality .* \(this needs a paid Metabase feature\)"
    ):
        provision(settings, standin.url, assets)
    assert standin.violations and "402" in standin.violations[0]


def test_the_database_description_is_set_though_a_new_database_drops_it(standin, settings):
    report = provision(settings, standin.url, ASSETS)
    descriptions = {d["name"]: d["description"] for d in standin.state.databases.values()}
    assert descriptions == {
        "Olist warehouse": "The DuckDB star schema and marts, read-only.",
        "Olist operations": "Pipeline runs and data quality; admins only.",
        "Olist warehouse (SP)": (
            "The warehouse's rows where customer_state is SP only (the scoped copy of role olist_regional_sp), read-only."
        ),
    }
    assert report.created["database"] == 3


def test_a_second_run_leaves_the_permission_graphs_alone(standin, settings):
    provision(settings, standin.url, ASSETS)
    mark = len(standin.requests)
    provision(settings, standin.url, ASSETS)
    writes = [(m, p) for m, p, _ in standin.requests[mark:] if m == "PUT" and p.endswith("/graph")]
    assert writes == []  # the graphs leave out "no queries", and that is read as what it means


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("no-digit-at-all", "Metabase would refuse OLIST_METABASE_ADMIN_PASSWORD: it has no digit"),
        ("a1", "it has 2 characters, Metabase needs 6 or more"),
        ("password1", r"Metabase refused OLIST_METABASE_ADMIN_PASSWORD \(password: password is too common\.\)"),
    ],
)
def test_an_admin_password_metabase_would_refuse_is_named(standin, settings, password, message):
    chosen = make_settings(
        settings.home, settings.database_url, olist_metabase_admin_password=password, olist_warehouse_path=settings.warehouse_path
    )
    with pytest.raises(ProvisionError, match=message):
        provision(chosen, standin.url, ASSETS)
    assert standin.state.users == {}  # Metabase is still waiting for its first admin


def test_the_stand_in_refuses_a_demo_password_without_a_digit(standin):
    standin.initializing = 0
    body = {"token": standin.state.setup_token, "user": {"email": "a@b.local", "password": "NoDigitsHere"}, "prefs": {"site_name": "x"}}
    refused = requests.post(f"{standin.url}/api/setup/", json=body, timeout=5)
    assert refused.status_code == 400 and refused.json()["errors"] == {"password": "password is too common."}
    accepted = requests.post(f"{standin.url}/api/setup/", json={**body, "user": {**body["user"], "password": "N0DigitsHere"}}, timeout=5)
    assert accepted.status_code == 200


def test_changed_options_apply_at_once_through_a_catalog_of_their_own(standin, settings, monkeypatch):
    """DuckDB opens a file with one configuration per process: the catalog Metabase opens is named
    by its options, so changed options open a new instance (the old catalog file is deleted)
    instead of meeting the one Metabase holds."""
    report = provision(settings, standin.url, ASSETS)
    database = standin.state.databases[report.ids["database:warehouse"]]
    before = database["details"]["database_file"]
    admin = _session(standin, settings.metabase_admin_email, provision_module.admin_password(settings))
    assert _ad_hoc(standin, admin, database["id"], "select current_setting('memory_limit')")["status"] == "completed"  # the pool is open
    original = provision_module.lockdown._options
    monkeypatch.setattr(provision_module.lockdown, "_options", lambda: {**original(), "memory_limit": "512MB"})
    provision(settings, standin.url, ASSETS)
    assert database["details"]["database_file"] != before and not os.path.exists(before)
    limit = _ad_hoc(standin, admin, database["id"], "select current_setting('memory_limit')")["data"]["rows"][0][0]
    assert limit.startswith("488"), limit  # 512 MB as DuckDB shows it (MiB)

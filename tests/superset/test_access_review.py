"""The access review records role changes made in Superset and SQL Lab history."""

from olist_bi.bi.superset.tool import Superset
from olist_bi.operations import audit
from olist_bi.operations import store
from olist_bi.bi.superset import bundle


def user(client, username):
    return next(u for u in client.list_all("/api/v1/security/users/", order="id") if u["username"] == username)


def role_id(client, name):
    return client.get("/api/v1/security/roles/", q=f"(filters:!((col:name,opr:eq,value:{name})))")["result"][0]["id"]


def new_events(settings, after_id):
    with store.connect(settings.database_url) as ops:
        return ops.execute("select * from audit_logs where id > %s order by id", (after_id,)).fetchall()


def last_id(settings):
    with store.connect(settings.database_url) as ops:
        return ops.execute("select coalesce(max(id), 0) as n from audit_logs").fetchone()["n"]


def test_a_role_granted_in_superset_becomes_an_audit_event(superset):
    settings, admin, _ = superset
    Superset(settings).review_access()  # the baseline snapshot
    start = last_id(settings)
    viewer = user(admin, "viewer")
    viewer_roles = [r["id"] for r in viewer["roles"]]
    admin.put(f"/api/v1/security/users/{viewer['id']}", {"roles": viewer_roles + [role_id(admin, "olist_analyst")]})
    try:
        recorded = Superset(settings).review_access()
    finally:
        admin.put(f"/api/v1/security/users/{viewer['id']}", {"roles": viewer_roles})
    assert "access.role.granted" in recorded
    granted = [e for e in new_events(settings, start) if e["action"] == "access.role.granted"]
    assert len(granted) == 1
    assert granted[0]["target"] == "viewer" and granted[0]["details"]["role"] == "olist_analyst"
    assert granted[0]["actor"] == "superset:admin" and granted[0]["details"]["changed_on"]
    Superset(settings).review_access()
    revoked = [e for e in new_events(settings, start) if e["action"] == "access.role.revoked"]
    assert len(revoked) == 1 and revoked[0]["target"] == "viewer"
    with store.connect(settings.database_url) as ops:
        assert audit.verify(ops).ok


def test_sql_lab_history_is_copied_with_its_user(superset, login):
    settings, admin, _ = superset
    Superset(settings).review_access()
    start = last_id(settings)
    analyst = login("analyst")
    database = next(
        d["id"] for d in admin.get("/api/v1/database/", q="(page_size:100)")["result"] if d["database_name"] == bundle.WAREHOUSE
    )
    analyst.post(
        "/api/v1/sqllab/execute/", {"database_id": database, "sql": "select count(*) from dim_seller -- audit me", "runAsync": False}
    )
    Superset(settings).review_access()
    queries = [e for e in new_events(settings, start) if e["action"] == "sqllab.query"]
    assert len(queries) == 1
    event = queries[0]
    assert event["actor"] == "superset:analyst" and event["source"] == "sqllab"
    assert "audit me" in event["details"]["sql"] and event["details"]["status"] == "success"
    assert event["details"]["database"] == bundle.WAREHOUSE
    Superset(settings).review_access()  # nothing new: nothing copied twice
    assert [e for e in new_events(settings, start) if e["action"] == "sqllab.query"] == queries


def test_provisioning_is_audited(superset):
    settings, _, _ = superset
    with store.connect(settings.database_url) as ops:
        rows = ops.execute("select * from audit_logs where action = 'superset.provisioned' order by id").fetchall()
        declared = {r["name"] for r in ops.execute("select name from roles where source = 'platform'").fetchall()}
    assert rows and rows[-1]["details"]["counts"]["dashboards"] == 6
    assert declared == {"olist_viewer", "olist_analyst", "olist_admin", "olist_regional_sp"}

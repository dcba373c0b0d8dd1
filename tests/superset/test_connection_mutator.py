"""Superset's DB_CONNECTION_MUTATOR (scope.connection), each of its conditions on its own, in
Superset's own environment (.venv-superset: its Flask, SQLAlchemy 1.4 URL and exceptions):
a scoped user's warehouse URL is sent to its scope's copy; everyone else's, another driver's,
and a connection with no user are left alone; a user with roles of two scopes is refused.
(The end-to-end proof, with the regional manager's RLS rules deleted, is in test_scope.py.)"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv-superset" / "bin" / "python"

SCRIPT = r"""
import json
from types import SimpleNamespace as NS
from flask import Flask, g
from flask_babel import Babel
from sqlalchemy.engine.url import make_url
from olist_bi.access import spec as access
from olist_bi.bi.superset.scope import connection

base = access.model()
model = {**base, "scopes": {**base["scopes"], "olist_regional_rj": {"customer_state": "RJ"}}}
access.model = lambda: model
role = lambda name: NS(name=name)
users = {
    "sp": NS(username="sp", roles=[role("olist_regional_sp")]),
    "sp_analyst": NS(username="sp_analyst", roles=[role("olist_analyst"), role("olist_regional_sp")]),
    "viewer": NS(username="viewer", roles=[role("olist_viewer")]),
    "two": NS(username="two", roles=[role("olist_regional_sp"), role("olist_regional_rj")]),
}
looked_up = []
def find_user(username):
    looked_up.append(username)
    return users.get(username)
manager = NS(find_user=find_user)
reader = make_url("duckdb+olist:////data/olist/warehouse.reader.duckdb")
clickhouse = make_url("clickhousedb://reader:x@ch:8123/olist")
out = {}
app = Flask("t")
Babel(app)  # Superset's errors translate their messages, as in Superset's own app
with app.app_context():
    for name in ("sp", "sp_analyst", "viewer"):
        out[name] = connection(reader, {}, name, manager)[0].database
    looked_up.clear()
    out["None"] = connection(reader, {}, None, manager)[0].database
    out["looked up for None"] = list(looked_up)  # no user: nothing to look up
    out["clickhouse sp"] = str(connection(clickhouse, {}, "sp", manager)[0])
    try:
        connection(reader, {}, "two", manager)
        out["two"] = "answered"
    except Exception as e:
        out["two"] = type(e).__name__ + ": " + str(e)
    looked_up.clear()
    g.user = users["sp"]  # the request's own user: no second lookup
    out["g.user sp"] = connection(reader, {}, "sp", manager)[0].database
    out["looked up"] = list(looked_up)
print(json.dumps(out))
"""


def test_the_connection_mutator_sends_scoped_users_to_their_copy_and_only_them():
    done = subprocess.run([str(PYTHON), "-c", SCRIPT], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["sp"] == "/data/olist/warehouse.olist_regional_sp.duckdb"
    assert out["sp_analyst"] == "/data/olist/warehouse.olist_regional_sp.duckdb"  # SQL Lab does not lift the scope
    assert out["viewer"] == out["None"] == "/data/olist/warehouse.reader.duckdb" and out["looked up for None"] == []
    assert out["clickhouse sp"] == "clickhousedb://reader:x@ch:8123/olist"
    assert out["two"].startswith("SupersetSecurityException") and "two row scopes (olist_regional_rj, olist_regional_sp)" in out["two"]
    assert out["g.user sp"] == "/data/olist/warehouse.olist_regional_sp.duckdb" and out["looked up"] == []

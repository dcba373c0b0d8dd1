"""The fixtures of the provisioning tests (test_provision.py, test_subscriptions.py): a
Metabase stand-in and the settings of a platform whose warehouse it reads."""

from __future__ import annotations

import pytest

from tests.conftest import make_settings
from tests.metabase.standin import MetabaseStandIn


@pytest.fixture
def standin(request):
    """A stand-in that is up at once; a test marked `starting` gets one that answers 503 for
    its first requests and reads "sync incomplete" at first, as a Metabase that is starting
    (each costs the client a poll interval, so only that test waits)."""
    starting = request.node.get_closest_marker("starting") is not None
    server = MetabaseStandIn(initializing=2 if starting else 0, sync_polls=2 if starting else 0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(warehouse, ops_url, tmp_path):
    served, _ = warehouse
    return make_settings(tmp_path / "home", ops_url, olist_warehouse_path=served.warehouse_path)

"""With OLIST_REDIS_URL set, Superset caches chart data in Redis (the machine's, on 6379): a
second Superset, on the provisioned metadata of the session's, answers from Redis, and the
after-publish step invalidates and re-warms what Redis holds. Its Celery broker is Redis too."""

import os
import shutil

import pytest
import redis

from olist_bi.bi.superset import provision, reports, server
from olist_bi.bi.superset.client import SupersetClient
from olist_bi.bi.superset.tool import Superset
from olist_bi.engines.duckdb import warehouse
from tests.conftest import make_settings
from tests.superset.conftest import free_port

REDIS = os.environ.get("OLIST_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")


@pytest.fixture(scope="module")
def redis_superset(superset, tmp_path_factory):
    settings, _, _ = superset
    try:
        store = redis.Redis.from_url(REDIS)
        store.ping()
    except redis.RedisError as e:
        pytest.fail(f"no Redis at {REDIS} ({e}): the machine runs one on 6379; set OLIST_TEST_REDIS_URL for another")
    store.flushdb()
    home = tmp_path_factory.mktemp("superset-redis-home")
    shutil.copytree(settings.secrets_dir, home / "secrets")  # the same admin password and key as the session's Superset
    mine = make_settings(
        home,
        settings.database_url,
        olist_superset_port=free_port(),
        olist_superset_database_url=settings.superset_database_url,
        olist_redis_url=REDIS,
        olist_warehouse_path=settings.warehouse_path,
        olist_smtp_port=settings.smtp_port,
    )
    try:
        server.serve(mine, say=lambda m: None)
        yield mine, SupersetClient(mine.superset_base_url, server.ADMIN_USER, server.admin_password(mine)), store
    finally:
        server.stop(mine)
        store.flushdb()


def test_chart_data_is_cached_in_redis_and_refreshed_after_a_publish(redis_superset):
    settings, client, store = redis_superset
    assert not server.environment(settings).get("OLIST_SUPERSET_CACHE_DIR")  # Redis, not files
    orders = provision.chart_ids(client)["executive-overview/orders"]
    path = f"/api/v1/chart/{orders}/data/"
    # As if the datasets were last marked by an earlier publish (another test may have run the
    # step for the current generation already): the step below then marks a new one.
    Superset(settings).after_publish("warehouse-earlier-generation.duckdb", say=lambda m: None)
    first = client.get(path, format="json", type="full")["result"][0]
    keys = store.keys("olist_data_*")
    assert keys, "no chart data in Redis"
    second = client.get(path, format="json", type="full")["result"][0]
    assert second["is_cached"] and second["cache_key"] == first["cache_key"]
    assert any(first["cache_key"] in k.decode() for k in keys)

    message = Superset(settings).after_publish(warehouse.current(settings.warehouse_path).name, say=lambda m: None)
    assert "filter value lists warmed" in message and "failed" not in message
    warmed = client.get(path, format="json", type="full")["result"][0]
    assert warmed["is_cached"] and warmed["cache_key"] != first["cache_key"]  # a new key: the old answer is never served
    assert any(warmed["cache_key"] in k.decode() for k in store.keys("olist_data_*"))


def test_reports_run_through_the_redis_broker(redis_superset):
    """With OLIST_REDIS_URL, Celery's broker and results are Redis: a report queued there is run
    by this Superset's worker (the session's Superset has its broker in PostgreSQL)."""
    settings, client, store = redis_superset
    log = (settings.superset_dir / "celery-worker.log").read_text()
    assert f"transport:   {REDIS}" in log and " ready." in log
    entry = reports.run(settings, client, "Pipeline failed or warehouse stale", timeout=240)
    assert entry["state"] in reports.FINAL and entry["state"] != "Error", entry
    assert entry["value"] in (0.0, 1.0)

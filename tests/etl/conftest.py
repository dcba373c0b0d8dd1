import pytest

from olist_bi.etl import pipeline
from tests.conftest import make_settings


@pytest.fixture(scope="session")
def warehouse(drop, ops_url, tmp_path_factory):
    """The scale-0.2 drop loaded once: (settings, run result). Read it, do not change it."""
    settings = make_settings(tmp_path_factory.mktemp("warehouse-home"), ops_url)
    result = pipeline.run(settings, drop)
    return settings, result


@pytest.fixture
def settings(tmp_path, ops_url):
    """Settings with a private OLIST_HOME on the shared test database."""
    return make_settings(tmp_path / "home", ops_url)

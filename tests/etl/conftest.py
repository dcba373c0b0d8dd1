import pytest

from tests.conftest import make_settings


@pytest.fixture
def settings(tmp_path, ops_url):
    """Settings with a private OLIST_HOME on the shared test database."""
    return make_settings(tmp_path / "home", ops_url)

"""The analysts' marimo notebook (platform/notebook/explore.py): run headless, its figures are the
Python API's; served by `olist-bi notebook`, it takes a token and draws its charts in Chromium."""

import importlib.util
import time
from pathlib import Path

import pandas as pd
import pytest
import requests

from olist_bi import api
from olist_bi.notebook import server
from olist_bi.settings import SettingsError
from tests.conftest import make_settings
from tests.test_postgres import free_port
from tests.reference import reporting_window

NOTEBOOK = server.NOTEBOOK


@pytest.fixture(scope="module")
def app(warehouse):
    settings, _ = warehouse
    spec = importlib.util.spec_from_file_location("explore", NOTEBOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OLIST_WAREHOUSE_PATH", str(settings.warehouse_path))
        yield module.app


def chart_data(figure) -> list[pd.DataFrame]:
    """What each panel draws (altair moves data the panels share up to the figure)."""
    return [figure.data if isinstance(figure.data, pd.DataFrame) else panel.data for panel in figure.vconcat]


def test_the_default_question_answers_as_the_api(app):
    _, defs = app.run()
    question = defs["question"]
    assert question == {"metrics": ["revenue", "orders"], "by": ["purchase_date:month"], "where": {}, "complete_periods": True}
    want = api.query(**question)
    pd.testing.assert_frame_equal(defs["answer"], want)
    assert len(defs["figure"].vconcat) == 2  # a panel per metric
    for data in chart_data(defs["figure"]):
        pd.testing.assert_frame_equal(data, want)


def test_a_picked_question_answers_as_the_api(app):
    question = {
        "metrics": ["aov", "late_delivery_rate"],
        "by": ["customer_state"],
        "where": {"order_status": ["Delivered"]},
        "complete_periods": False,
    }
    _, defs = app.run(defs={"question": question})
    pd.testing.assert_frame_equal(defs["answer"], api.query(**question))
    assert defs["answer"]["customer_state"].nunique() == len(defs["answer"]) > 20


def test_a_long_category_list_is_charted_by_its_25_largest(app):
    question = {"metrics": ["gmv"], "by": ["product_category"], "where": {}, "complete_periods": False}
    _, defs = app.run(defs={"question": question})
    want = api.query(**question)
    assert len(defs["answer"]) == len(want) > 25  # the table holds every row
    (charted,) = chart_data(defs["figure"])
    assert list(charted["product_category"]) == list(want.nlargest(25, "gmv")["product_category"])


def test_a_question_the_layer_cannot_answer_says_why(app):
    question = {"metrics": ["aov"], "by": ["product_category"], "where": {}, "complete_periods": False}
    outputs, defs = app.run(defs={"question": question})
    assert defs["answer"] is None and "figure" not in defs  # no chart drawn from nothing
    assert "product_category" in defs["problem"] and "aov" in defs["problem"]
    shown = " ".join(str(getattr(o, "text", "")) for o in outputs if o is not None)
    assert "This question cannot be answered:" in shown


def test_a_question_past_the_readers_limits_says_which_limit(app, monkeypatch):
    monkeypatch.setenv("OLIST_QUERY_MAX_RESULT_MB", "0.005")  # 5 kB: the pickers' lists fit, orders by day (about 11 kB) do not
    outputs, defs = app.run(defs={"question": {"metrics": ["orders"], "by": ["purchase_date:day"], "where": {}, "complete_periods": False}})
    assert defs["answer"] is None and "OLIST_QUERY_MAX_RESULT_MB" in defs["problem"]
    shown = " ".join(str(getattr(o, "text", "")) for o in outputs if o is not None)
    assert "This question cannot be answered:" in shown


def test_the_cohort_explorer_answers_as_the_api(app, reference):
    question = {
        "metrics": ["cohort_return_rate"],
        "by": ["cohort_month:month", "months_since_first"],
        "where": {"customer_state": "SP"},
        "complete_periods": True,
    }
    _, defs = app.run(defs={"cohort_question": question})
    cohorts = defs["cohorts"]
    pd.testing.assert_frame_equal(cohorts, api.query(**question).dropna(subset=["cohort_return_rate"]))
    assert cohorts["months_since_first"].min() == 1  # month 0, 100% by definition, is left out
    _, last = reporting_window(reference)
    counted = [(m.to_period("M") + int(n)).to_timestamp().date() for m, n in zip(cohorts["cohort_month"], cohorts["months_since_first"])]
    assert max(counted) == last.replace(day=1)  # up to the window's last month, none after (not drawn as 0%)
    assert cohorts["cohort_return_rate"].between(0, 1).all() and defs["heatmap"].data is cohorts


def test_production_refuses_to_serve_without_a_password(tmp_path, ops_url):
    settings = make_settings(tmp_path, ops_url, olist_env="production")
    with pytest.raises(SettingsError, match="OLIST_NOTEBOOK_PASSWORD"):
        server.serve(settings)


@pytest.mark.browser
def test_the_served_notebook_takes_a_token_and_draws_its_charts(warehouse, tmp_path, ops_url):
    from playwright.sync_api import sync_playwright

    from olist_bi.bi.superset.browser import CHROMIUM, CHROMIUM_ARGS

    settings = make_settings(tmp_path, ops_url, olist_warehouse_path=warehouse[0].warehouse_path, olist_notebook_port=free_port())
    login = server.serve(settings)
    pid = int(server.pid_file(settings).read_text())
    try:
        token = server.password(settings)
        assert login.endswith(f"access_token={token}")
        assert token not in Path(f"/proc/{pid}/cmdline").read_text()  # on marimo's stdin, not its command line
        assert server.log_file(settings).stat().st_mode & 0o077 == 0  # marimo logs the address with the token
        anonymous = requests.get(server.url(settings) + "/", allow_redirects=False, timeout=10)
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/auth/login")
        assert requests.get(server.url(settings) + "/api/status", timeout=10).status_code == 401
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(login)
            try:  # the explorer's chart, then (scrolled to, as marimo draws what is seen) the cohort heatmap
                drawn = page.locator("marimo-vega canvas.marks, marimo-vega svg.marks")  # Playwright's CSS reaches into shadow roots
                drawn.first.wait_for(timeout=90_000)
                page.get_by_role("heading", name="Cohorts: who came back").scroll_into_view_if_needed()
                drawn.nth(1).wait_for(timeout=60_000)
            finally:
                page.screenshot(path=str(tmp_path / "notebook.png"))
            time.sleep(1)
            sizes = drawn.evaluate_all("els => els.map(e => e.getBoundingClientRect().height)")
            text = page.inner_text("body")
            browser.close()
        assert len(sizes) >= 2 and min(sizes) > 100, sizes  # the chart and the cohort heatmap, drawn
        assert "Error" not in text and "cannot be answered" not in text
        assert "Olist warehouse explorer" in text and "Cohorts: who came back" in text
    finally:
        assert server.stop(settings)
    assert not Path(f"/proc/{pid}").exists()  # stopped
    assert not server.healthy(settings)

"""Open Superset dashboards in headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright) as a person would: log in, open each dashboard, wait until every chart has
rendered, count the charts that show an error, take a screenshot."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

CHROMIUM = "/usr/bin/chromium"
# Chromium as root, headless, with nothing reaching out to the network (closed here).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HEADER = "[data-test='dashboard-header-container']"
CHART = "[data-test='dashboard-component-chart-holder']"
LOADING = "[data-test='loading-indicator'], .loading"
ERROR = f"{CHART} .ant-alert-error, {CHART} [role='alert']"


SCREENSHOT_ATTEMPTS = 3
PAINTED_MS = 300  # after a view counts as drawn, the frame that paints its last chart (no chart animates: app.py)
BLANK_LEVELS = 50  # gray levels in a screenshot's dashboard area at most, for a blank one (it has 2)


def drawn_levels(screenshot: Path) -> int:
    """Gray levels in a dashboard screenshot's dashboard area (right of the filter bar, below
    the header): a drawn dashboard has hundreds, a blank one two."""
    from PIL import Image

    image = Image.open(screenshot).convert("L")
    width, height = image.size
    return len(image.crop((width // 5, 200, width, height)).getcolors(maxcolors=256) or [])


@dataclass
class Rendered:
    slug: str
    seconds: float
    charts: int
    errors: int
    error_texts: list[str]
    screenshot: Path | None
    cached_share: float | None = None  # of the chart-data answers, the share Superset served from its cache
    cache_keys: dict[int, list[str]] | None = None  # chart id -> the cache keys of its answers
    api_calls: dict[str, int] | None = None  # recorded: Superset API endpoint (ids as <id>) -> requests the page made


class Browser:
    """A logged-in Chromium page on one Superset; use as a context manager."""

    def __init__(self, url: str, username: str, password: str, width: int = 1600, height: int = 1200, read_charts: bool = False):
        """With `read_charts`, every page records the texts its charts draw (legibility.py)."""
        self.url = url.rstrip("/")
        self.username, self.password = username, password
        self.viewport = {"width": width, "height": height}
        self.read_charts = read_charts

    def __enter__(self) -> "Browser":
        from playwright.sync_api import sync_playwright

        if not Path(CHROMIUM).exists():
            raise RuntimeError(f"{CHROMIUM} is missing: install Debian's chromium (`make chromium`)")
        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            self.page = self._browser.new_page(viewport=self.viewport)
            if self.read_charts:
                from olist_bi.bi.superset.legibility import RECORDER

                self.page.add_init_script(RECORDER)
            self._log_in()
        except BaseException:
            self._playwright.stop()  # else the next Browser meets a running event loop
            raise
        return self

    def _log_in(self, attempts: int = 3) -> None:
        # The login page is drawn by JavaScript: on a busy machine a field filled before the
        # form is ready can be drawn over, and Enter then posts nothing. Wait, and try again.
        for attempt in range(attempts):
            self.page.goto(f"{self.url}/login/")
            self.page.wait_for_load_state("networkidle")
            if "/login" not in self.page.url:
                return  # the previous attempt's login went through after all
            self.page.fill("#username", self.username)
            self.page.fill("#password", self.password)
            self.page.keyboard.press("Enter")
            try:
                # Home, or the dashboard list for users who may not create dashboards
                self.page.wait_for_url(lambda url: "/login" not in url, timeout=20_000)
                return
            except Exception:  # noqa: BLE001 - the last attempt's error is raised below
                if attempt == attempts - 1:
                    raise

    def __exit__(self, *exc) -> None:
        self._browser.close()
        self._playwright.stop()

    def render(
        self,
        slug: str,
        expected_charts: int,
        screenshot: Path | None = None,
        timeout: float = 60,
        record: bool = False,
        url: str | None = None,
    ) -> Rendered:
        """Open a dashboard (at `url` if given: a permalink) and wait until its header and
        `expected_charts` charts are on the page and none is loading; the time is from
        navigation to that moment. With `record`, also note each chart-data answer: whether it
        came from Superset's cache, its cache key."""
        answers: list[bool] = []
        keys: dict[int, list[str]] = {}
        calls: dict[str, int] = {}
        on_request, on_response = self._listeners(answers, keys, calls)
        count_cached = record
        if count_cached:
            self.page.on("response", on_response)
            self.page.on("request", on_request)
        began = time.perf_counter()
        self.page.goto(url or f"{self.url}/superset/dashboard/{slug}/")
        if "/login" in self.page.url:
            # Signed out after all: a late anonymous `Set-Cookie` of the login page's own
            # requests can overwrite the signed-in session (the race of apache/superset#44005,
            # screenshots.py). Sign in again and open the dashboard once more.
            self._log_in()
            began = time.perf_counter()
            self.page.goto(url or f"{self.url}/superset/dashboard/{slug}/")
        charts = self._wait_until_drawn(slug, expected_charts, began + timeout, timeout, with_header="standalone=" not in (url or ""))
        seconds = time.perf_counter() - began
        if count_cached:
            self.page.remove_listener("response", on_response)
            self.page.remove_listener("request", on_request)
        errors = self.page.locator(ERROR)
        texts = [errors.nth(i).inner_text()[:200] for i in range(errors.count())]
        if screenshot is not None:
            self._screenshot(screenshot)
        cached_share = sum(answers) / len(answers) if answers else None
        return Rendered(
            slug, seconds, charts, len(texts), texts, screenshot, cached_share, keys if record else None, calls if record else None
        )

    def _listeners(self, answers: list[bool], keys: dict[int, list[str]], calls: dict[str, int]) -> tuple[Callable, Callable]:
        """The page's request and response listeners, counting API calls into `calls` and chart-data answers into `answers` and `keys`."""

        def on_request(request) -> None:
            path = request.url.removeprefix(self.url).split("?", 1)[0]
            if path.startswith("/api/"):
                endpoint = "/".join("<id>" if part.isdigit() else part for part in path.split("/"))
                calls[endpoint] = calls.get(endpoint, 0) + 1

        def on_response(response) -> None:
            if "/api/v1/chart/data" in response.url and response.request.method == "POST":
                try:
                    chart = json.loads(response.request.post_data or "{}").get("form_data", {}).get("slice_id")
                    for r in response.json().get("result", []):
                        answers.append(bool(r.get("is_cached")))
                        keys.setdefault(chart, []).append(r.get("cache_key"))
                except Exception:  # noqa: BLE001 - a non-JSON answer counts as not cached
                    answers.append(False)

        return on_request, on_response

    def _wait_until_drawn(self, slug: str, expected_charts: int, deadline: float, timeout: float, with_header: bool = True) -> int:
        """Poll until the header (unless the view is a standalone one, which has none) and
        `expected_charts` charts are on the page and none is loading; return the charts counted."""
        while True:
            header = self.page.locator(HEADER).count() if with_header else 1
            charts = self.page.locator(CHART).count()
            loading = self.page.locator(LOADING).count()
            if header and charts >= expected_charts and loading == 0:
                return charts
            if time.perf_counter() > deadline:
                raise TimeoutError(
                    f"dashboard {slug}: {charts} of {expected_charts} charts, {loading} still loading, header {header},"
                    f" after {timeout} s at {self.page.url}: {self.page.inner_text('body')[:300]!r}"
                )
            self.page.wait_for_timeout(50)

    def _screenshot(self, screenshot: Path) -> None:
        """Save a full-page screenshot, taken again while the dashboard's area comes out blank."""
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(SCREENSHOT_ATTEMPTS):
            self.page.wait_for_timeout(PAINTED_MS)
            self.page.screenshot(path=str(screenshot), full_page=True)
            # On a busy machine a full-page capture now and then paints the dashboard's area
            # blank, its charts in the page all the same: take it again
            if drawn_levels(screenshot) > BLANK_LEVELS:
                break

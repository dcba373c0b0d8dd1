"""Profile the browser's side of a dashboard view: Chromium's main thread, sampled by its own
JavaScript profiler (the DevTools protocol), from navigation until every chart is drawn.

Run it against a running, provisioned Superset (`olist-bi up`), after one warm-up view:

    .venv/bin/python -m bench.profile_browser --dashboard executive-overview [--user admin --password PW] [--top 25] [--timeline]

Prints the view's time, how much of it the main thread was busy or idle, and where the busy
time went, by script file and by function. With --timeline, a second view, without the
profiler, prints each request Superset answered (not the static files): when it was sent and
how long it took, from navigation. The password defaults to the admin's from
OLIST_HOME. The script files are Superset's built frontend: hashed names, minified functions.
"""

from __future__ import annotations

import argparse
import collections
import time

from olist_bi.dashboards import dashboards
from olist_bi.settings import Settings
from olist_bi.bi.superset import server
from olist_bi.bi.superset.browser import CHART, HEADER, LOADING, Browser

SAMPLING_MICROSECONDS = 500


def profile(browser: Browser, url: str, charts: int) -> tuple[float, dict]:
    """One navigation to `url` under the sampling profiler: (seconds to drawn, the profile)."""
    page = browser.page
    cdp = page.context.new_cdp_session(page)
    cdp.send("Profiler.enable")
    cdp.send("Profiler.setSamplingInterval", {"interval": SAMPLING_MICROSECONDS})
    cdp.send("Profiler.start")
    began = time.perf_counter()
    page.goto(url)
    while not (page.locator(HEADER).count() and page.locator(CHART).count() >= charts and page.locator(LOADING).count() == 0):
        page.wait_for_timeout(50)
    seconds = time.perf_counter() - began
    return seconds, cdp.send("Profiler.stop")["profile"]


def timeline(browser: Browser, url: str, charts: int) -> tuple[float, list[tuple[float, float, str]]]:
    """One navigation to `url`: (seconds to drawn, [(sent at, took, method and path)] of the
    requests to Superset other than its static files, in milliseconds from navigation)."""
    page, base, rows = browser.page, url.split("/superset/")[0], []

    def finished(request) -> None:
        path = request.url.removeprefix(base)
        if not path.startswith("/static/"):
            timing = request.timing  # startTime: epoch ms; responseEnd: ms after it
            rows.append((timing["startTime"] - began_epoch * 1000, timing["responseEnd"], f"{request.method} {path[:100]}"))

    page.on("requestfinished", finished)
    began_epoch, began = time.time(), time.perf_counter()
    page.goto(url)
    while not (page.locator(HEADER).count() and page.locator(CHART).count() >= charts and page.locator(LOADING).count() == 0):
        page.wait_for_timeout(50)
    seconds = time.perf_counter() - began
    page.wait_for_timeout(1000)  # the requests that end after the charts are drawn
    page.remove_listener("requestfinished", finished)
    return seconds, sorted(rows)


def self_times(prof: dict) -> tuple[collections.Counter, collections.Counter]:
    """Milliseconds of self time by script file and by function (name and file)."""
    nodes = {node["id"]: node["callFrame"] for node in prof["nodes"]}
    by_file, by_function = collections.Counter(), collections.Counter()
    for sample, delta in zip(prof["samples"], prof["timeDeltas"]):
        frame = nodes[sample]
        script = frame["url"].rsplit("/", 1)[-1] or frame["functionName"]
        by_file[script] += delta / 1000
        by_function[f"{frame['functionName'] or '(anonymous)'} {frame['url'].rsplit('/', 1)[-1]}".strip()] += delta / 1000
    return by_file, by_function


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dashboard", default="executive-overview", help="a dashboard's slug")
    parser.add_argument("--user", default=server.ADMIN_USER)
    parser.add_argument("--password", default=None, help="default: the admin's, from OLIST_HOME")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--timeline", action="store_true", help="also print the requests of a view without the profiler")
    args = parser.parse_args()

    settings = Settings.from_env()
    [dashboard] = [d for d in dashboards() if d.slug == args.dashboard]
    password = args.password or server.admin_password(settings)
    with Browser(settings.superset_base_url, args.user, password) as browser:
        browser.render(dashboard.slug, len(dashboard.charts))  # warm: the browser's cache and Superset's
        url = f"{settings.superset_base_url}/superset/dashboard/{dashboard.slug}/"
        seconds, prof = profile(browser, url, len(dashboard.charts))
        requests = timeline(browser, url, len(dashboard.charts)) if args.timeline else None
    by_file, by_function = self_times(prof)
    idle = by_file.get("(idle)", 0.0)
    print(
        f"{dashboard.slug} as {args.user}: drawn in {seconds:.2f} s; main thread sampled {sum(by_file.values()):.0f} ms, idle {idle:.0f} ms"
    )
    print("\nby script file (ms of self time):")
    for name, ms in by_file.most_common(args.top):
        print(f"{ms:8.0f}  {name}")
    print("\nby function:")
    for name, ms in by_function.most_common(args.top):
        print(f"{ms:8.0f}  {name}")
    if requests:
        drawn, rows = requests
        print(f"\nrequests of a view without the profiler (drawn in {drawn:.2f} s): sent at, took (ms)")
        for sent, took, what in rows:
            print(f"{sent:8.0f} {took:7.0f}  {what}")


if __name__ == "__main__":
    main()

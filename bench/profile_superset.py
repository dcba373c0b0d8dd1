"""Profile Superset's chart-data request in Superset's own process, with pyinstrument.

Run it with the platform's Python; it starts itself again in Superset's environment with the
environment `olist-bi superset serve` gives Superset (same OLIST_* settings), against the
metadata database of the platform provisioned there (`olist-bi up`, or any provisioned one):

    .venv/bin/python -m bench.profile_superset --chart 20 [--repeat 20] [--cached] [--flat] [--html out.html]

Prints per-request times and pyinstrument's report of all requests together (the call tree,
or with --flat where the time goes). Needs pyinstrument in Superset's environment (`make bench`
installs it). Chart ids: `olist-bi superset provision` prints none; list them with
GET /api/v1/chart/ or read them off the dashboard URLs.
"""

from __future__ import annotations

import argparse
import statistics
import time


def _in_superset() -> None:
    """Re-run this script with Superset's Python and Superset's environment."""
    import os
    import subprocess
    import sys

    from olist_bi.settings import Settings
    from olist_bi.bi.superset import server

    settings = Settings.from_env()
    python = server.venv(settings) / "bin" / "python"
    env = {**server.environment(settings), "OLIST_PROFILE_CHILD": "1"}
    sys.exit(subprocess.run([str(python), os.path.abspath(__file__), *sys.argv[1:]], env=env).returncode)


def main() -> None:
    import os

    if not os.environ.get("OLIST_PROFILE_CHILD"):
        _in_superset()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chart", type=int, required=True, help="chart id")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--cached", action="store_true", help="profile answers from the cache (default: force=true, uncached)")
    parser.add_argument("--flat", action="store_true", help="a flat list of where time is spent, instead of the call tree")
    parser.add_argument("--html", default=None, help="also write pyinstrument's HTML report here")
    args = parser.parse_args()

    from pyinstrument import Profiler
    from superset.app import create_app

    app = create_app()
    client = app.test_client()
    from superset.extensions import security_manager

    with app.app_context():
        admin = security_manager.find_user(username="admin")
    # Log in the way the REST API does, with a JWT for the admin.
    with app.app_context():
        from flask_jwt_extended import create_access_token

        token = create_access_token(identity=str(admin.id), fresh=True)
    headers = {"Authorization": f"Bearer {token}"}
    path = f"/api/v1/chart/{args.chart}/data/?format=json&type=full" + ("" if args.cached else "&force=true")
    response = client.get(path, headers=headers)  # warm: imports, first connection, cache fill
    assert response.status_code == 200, response.data[:500]
    times = []
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(args.repeat):
        began = time.perf_counter()
        response = client.get(path, headers=headers)
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200
    profiler.stop()
    print(
        f"chart {args.chart} {'cached' if args.cached else 'uncached'}: p50 {statistics.median(times):.1f} ms, "
        f"min {min(times):.1f} ms, max {max(times):.1f} ms over {args.repeat}"
    )
    print(
        profiler.output_text(unicode=False, color=False, show_all=True, flat=args.flat)
        if args.flat
        else profiler.output_text(unicode=False, color=False, show_all=True)
    )
    if args.html:
        with open(args.html, "w") as f:
            f.write(profiler.output_html())


if __name__ == "__main__":
    main()

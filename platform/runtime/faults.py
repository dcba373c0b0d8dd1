"""Named points where the project's own tests stop a run for real, to prove it crash-consistent.

With `OLIST_FAULT=<point>` in its environment, a process kills itself (SIGKILL: no cleanup,
no `finally`) on reaching that point of an ETL run. Unset, as it always is outside the tests,
nothing happens; with OLIST_ENV=production it is ignored. The points, in run order:

- `after_extract`: the drop's files read into the build's staging area;
- `during_transform`: the models built, the build file not yet finished;
- `before_rename`: the build file complete, not yet published;
- `after_rename`: the new generation served, nothing recorded yet;
- `before_bookkeeping`: the loads recorded, the run not yet marked succeeded nor audited.

With OLIST_WAREHOUSE_ENGINE=clickhouse one more, between `before_rename` and `after_rename`
(`CLICKHOUSE_POINTS`): `clickhouse_exchanged`, ClickHouse's tables exchanged (published), the
generation they replaced not yet kept as previous_1.
"""

from __future__ import annotations

import os
import signal

POINTS = ("after_extract", "during_transform", "before_rename", "after_rename", "before_bookkeeping")
CLICKHOUSE_POINTS = ("clickhouse_exchanged",)


def point(name: str) -> None:
    if os.environ.get("OLIST_FAULT") == name and os.environ.get("OLIST_ENV", "demo") != "production":
        os.kill(os.getpid(), signal.SIGKILL)

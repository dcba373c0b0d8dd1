"""The BI tools behind one interface: build assets, provision, after a publish, review access.

Superset (`olist_bi.superset.tool`) and Metabase (`olist_bi.metabase.tool`) each implement
`BITool`; `TOOLS` below is the one place that names them, and the CLI, `up` and the
scheduler read it. A third tool is one more class and one more line here; it touches
neither of the others.

After every publish (an ETL run that published, a rollback), `after_publish()` runs each
reachable tool's step: Superset drops its cached chart data for the warehouse datasets and
warms the six dashboards' charts; Metabase is pointed at the new generation so its
connection pool reopens. A tool that is down or fails is reported and audited; the publish
itself stands (the data are right, only a cache or a pool lags).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from olist_bi.settings import Settings

# name -> "module:class"; imported only when used (Superset's and Metabase's code need neither the other).
TOOLS = {
    "superset": "olist_bi.superset.tool:Superset",
    "metabase": "olist_bi.metabase.tool:Metabase",
}


@dataclass
class Provisioned:
    summary: str  # one line: what there is, what changed
    users: dict[str, str]  # demo logins (local demo only): user -> password
    counts: dict[str, int]  # objects of each kind the tool holds or provisioned


@dataclass
class Outcome:
    tool: str
    status: str  # done, skipped, failed
    message: str


class BITool(ABC):
    """One BI tool, as the platform drives it."""

    name: str
    label: str

    def __init__(self, settings: Settings):
        self.settings = settings

    @property
    @abstractmethod
    def url(self) -> str:
        """Where the tool answers."""

    @abstractmethod
    def reachable(self) -> bool:
        """Whether the tool answers now (after_publish skips a tool that does not)."""

    @abstractmethod
    def build_assets(self, out: Path) -> list[Path]:
        """Write the tool's assets, generated from the dashboard specs and the semantic layer."""

    @abstractmethod
    def provision(self, say=print) -> Provisioned:
        """Provision the tool over its REST API, idempotently."""

    @abstractmethod
    def after_publish(self, generation: Path, say=print) -> str:
        """Make the tool serve the newly published warehouse generation; return a summary."""

    @abstractmethod
    def review_access(self) -> list[str]:
        """Record the tool's access changes in the audit trail (olist_bi.access_review); return the actions recorded."""


def tool(name: str, settings: Settings) -> BITool:
    if name not in TOOLS:
        raise KeyError(f"no BI tool {name!r}; known: {', '.join(TOOLS)}")
    module, _, cls = TOOLS[name].partition(":")
    return getattr(importlib.import_module(module), cls)(settings)


def tools(settings: Settings) -> list[BITool]:
    return [tool(name, settings) for name in TOOLS]


def after_publish(settings: Settings, say=print) -> list[Outcome]:
    """Run every reachable tool's after-publish step for the generation served now; audit it."""
    from olist_bi import warehouse
    from olist_bi.operations import audit, store
    from olist_bi.operations.postgres import database_url

    generation = warehouse.current(settings.warehouse_path)
    outcomes = _on_each_reachable(settings, lambda each: each.after_publish(generation, say))
    with store.connect(database_url(settings)) as ops:
        details = {"generation": generation.name, **{o.tool: {"status": o.status, "message": o.message} for o in outcomes}}
        audit.append(ops, "bi.after_publish", str(settings.warehouse_path), details, source="bi")
    return outcomes


def review_access(settings: Settings) -> list[Outcome]:
    """Every reachable tool's access review."""

    def review(each: BITool) -> str:
        recorded = each.review_access()
        return f"{len(recorded)} events recorded" + (f" ({', '.join(sorted(set(recorded)))})" if recorded else "")

    return _on_each_reachable(settings, review)


def _on_each_reachable(settings: Settings, step: Callable[[BITool], str]) -> list[Outcome]:
    """`step` on every tool that answers; a tool that is down is skipped and one that fails is
    reported, and the others still run (a publish stands; the next review catches up)."""
    outcomes = []
    for each in tools(settings):
        if not each.reachable():
            outcomes.append(Outcome(each.name, "skipped", f"{each.label} does not answer at {each.url}"))
            continue
        try:
            outcomes.append(Outcome(each.name, "done", step(each)))
        except Exception as e:  # noqa: BLE001 - reported (and audited after a publish)
            outcomes.append(Outcome(each.name, "failed", f"{type(e).__name__}: {e}"))
    return outcomes

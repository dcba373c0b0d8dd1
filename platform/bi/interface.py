"""The BI tools behind one interface: build assets, provision, after a publish, review access.

Superset (`olist_bi.bi.superset.tool`) and Metabase (`olist_bi.bi.metabase.tool`) each implement
`BITool`; `TOOLS` below is the one place that names them, and the CLI (which adds each
tool's own command group, `bi/<tool>/commands.py`), `up` and the scheduler read it. A third
tool is one more class, one command group and one more line here; it touches neither of the
others.

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

# name -> (the tool's class, its command group), as "module:attribute", imported only when used
# (Superset's and Metabase's code need neither the other; the command groups import little).
TOOLS = {
    "superset": ("olist_bi.bi.superset.tool:Superset", "olist_bi.bi.superset.commands:superset"),
    "metabase": ("olist_bi.bi.metabase.tool:Metabase", "olist_bi.bi.metabase.commands:metabase"),
}


@dataclass
class Provisioned:
    summary: str  # one line: what there is, what changed
    users: dict[str, str]  # logins of the local demo (none in production): user -> password
    counts: dict[str, int]  # objects of each kind the tool holds or provisioned


@dataclass
class Service:
    """One line of what runs where (`olist-bi up`'s closing table)."""

    service: str
    url: str
    note: str


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

    def start(self, say=print) -> None:
        """Start the tool where the platform runs it (`up`); a tool that runs elsewhere is left alone."""
        return None

    def services(self, provisioned: Provisioned | None) -> list[Service]:
        """What `up` says of the tool: where it answers and what it holds, or how to add it."""
        if provisioned is None:
            note = f"not answering: start one (docs/{self.name}.md), then `olist-bi {self.name} provision`"
            return [Service(self.label, self.url, note)]
        return [Service(self.label, self.url, provisioned.summary)]

    @abstractmethod
    def build_assets(self, out: Path) -> list[Path]:
        """Write the tool's assets, generated from the dashboard specs and the semantic layer."""

    @abstractmethod
    def provision(self, say=print) -> Provisioned:
        """Provision the tool over its REST API, idempotently."""

    @abstractmethod
    def after_publish(self, generation: str, say=print) -> str:
        """Make the tool serve the newly published warehouse generation (its name); return a summary."""

    @abstractmethod
    def review_access(self) -> list[str]:
        """Record the tool's access changes in the audit trail (olist_bi.access.review); return the actions recorded."""


def _load(where: str):
    module, _, attribute = where.partition(":")
    return getattr(importlib.import_module(module), attribute)


def tool(name: str, settings: Settings) -> BITool:
    if name not in TOOLS:
        raise KeyError(f"no BI tool {name!r}; known: {', '.join(TOOLS)}")
    return _load(TOOLS[name][0])(settings)


def command_groups() -> list:
    """Each tool's `olist-bi <tool>` command group (click), which the CLI adds as it finds them here."""
    return [_load(commands) for _, commands in TOOLS.values()]


def tools(settings: Settings) -> list[BITool]:
    return [tool(name, settings) for name in TOOLS]


def after_publish(settings: Settings, say=print) -> list[Outcome]:
    """Run every reachable tool's after-publish step for the generation served now; audit it."""
    from olist_bi.engines.base import engine
    from olist_bi.operations import audit, store
    from olist_bi.operations.postgres import database_url

    serving = engine(settings)
    served = serving.ledger()
    if served is None:
        raise RuntimeError(f"no warehouse is served at {serving.location}: load a drop first (`olist-bi etl run --source DIR`)")
    generation = Path(served.generation).name
    outcomes = _on_each_reachable(settings, lambda each: each.after_publish(generation, say))
    with store.connect(database_url(settings)) as ops:
        details = {"generation": generation, **{o.tool: {"status": o.status, "message": o.message} for o in outcomes}}
        audit.append(ops, "bi.after_publish", serving.location, details, source="bi")
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

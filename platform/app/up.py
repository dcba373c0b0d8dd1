"""`olist-bi up` (and `make up`): the platform brought up on the embedded default, in order.

PostgreSQL (embedded unless OLIST_DATABASE_URL names one), a drop loaded into the warehouse
(the one given, else a sample generated once into $OLIST_HOME/drops/), every BI tool the
platform runs started (Superset) and every tool that answers provisioned (Superset; Metabase
when one answers at OLIST_METABASE_URL), the analysts' notebook, the demo's mail sink when no
mail server is set, and, as every ETL run does, a signed checkpoint of the audit trail. A
second `up` finds everything in place and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from olist_bi import bi, contract
from olist_bi.bi import Service
from olist_bi.etl import pipeline
from olist_bi.generator import generate
from olist_bi.notebook import server as notebook
from olist_bi.notify import outbox
from olist_bi.operations import checkpoint, store
from olist_bi.operations.postgres import database_url
from olist_bi.settings import Settings, mask_url

SAMPLE_SEED = 42


@dataclass
class Running:
    run_id: int
    services: list[Service] = field(default_factory=list)
    logins: dict[str, dict[str, str]] = field(default_factory=dict)  # tool label -> demo user -> password


def up(settings: Settings, source: Path | None, say: Callable[[str], None], progress=None) -> Running:
    """Bring the platform up; `say` hears each step. Raises `EtlError` when the drop fails."""
    settings.home.mkdir(parents=True, exist_ok=True)
    say(f"OLIST_HOME: {settings.home}")
    url = database_url(settings)
    where = "embedded" if settings.uses_embedded_postgres else "external"
    say(f"PostgreSQL ({where}): {mask_url(url)}")
    source = source or sample_drop(settings, say, progress)
    say(f"loading {source} into the warehouse")
    result = pipeline.run(settings, source, progress=lambda m: say(f"  {m}"))
    say(f"warehouse: {settings.warehouse_path} (run {result.run_id} {result.status})")
    running = Running(result.run_id)
    running.services += [
        Service("PostgreSQL", mask_url(url), f"{where}; BI metadata, run history, quality results, audit trail"),
        Service("warehouse", str(settings.warehouse_path), f"DuckDB, run {result.run_id}"),
    ]
    tools = bi.tools(settings)
    for tool in tools:
        tool.start(say)
    running.services.append(Service("notebook", notebook.serve(settings, say=say), "marimo, for analysts (olist_bi.api)"))
    if settings.is_demo and not settings.smtp_host:
        kept = f"the demo's mail, kept in {settings.outbox_dir} (`olist-bi outbox` lists it)"
        running.services.append(Service("mail sink", outbox.serve(settings, say=say), kept))
    served = []  # what each BI tool serves, after the warehouse in the closing table
    for tool in tools:
        provisioned = tool.provision(say=say) if tool.reachable() else None
        served += tool.services(provisioned)
        if provisioned and provisioned.users:
            running.logins[tool.label] = provisioned.users
    running.services[2:2] = served
    with store.connect(url) as ops:
        signed, _ = checkpoint.write(settings, ops)
    say(f"audit checkpoint: {signed.rows} rows up to id {signed.last_id}, signed")
    return running


def sample_drop(settings: Settings, say: Callable[[str], None], progress=None) -> Path:
    """The sample drop `up` loads when given none: generated once into OLIST_HOME's drops."""
    source = settings.drops_dir / f"sample-scale{settings.sample_scale:g}-seed{SAMPLE_SEED}"
    if not (source / contract.SOURCE_FILES[0].filename).exists():
        say(f"generating a sample drop at scale {settings.sample_scale:g} into {source}")
        generate(source, settings.sample_scale, SAMPLE_SEED, progress=progress)
    return source

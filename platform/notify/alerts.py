"""Mail to admins when an ETL run fails (a file that breaks the contract, a quality rule over
its quarantine limit, a model that breaks its grain): the run id, what failed, the rules that
rejected rows, and the commands to look closer. The scheduler sends it (platform/notify/mail.yaml's
`admins` list); a mail that cannot be sent is logged, never raised into the scheduler."""

from __future__ import annotations

import logging
from pathlib import Path

from olist_bi.notify import mail
from olist_bi.operations import store
from olist_bi.operations.postgres import database_url
from olist_bi.settings import Settings

log = logging.getLogger(__name__)
FAILING_RULES = (Path(__file__).with_name("failing_rules.sql")).read_text(encoding="utf-8")


def failing_rules(settings: Settings, run_id: int) -> list[dict]:
    with store.connect(database_url(settings)) as ops:  # rows as dicts
        return ops.execute(FAILING_RULES, [run_id]).fetchall()


def run_failed(settings: Settings, run_id: int, drop: Path | str, error: str) -> bool:
    """Mail the admins about a failed run; return whether the mail went."""
    rules = failing_rules(settings, run_id)
    lines = [
        f"ETL run {run_id} failed and published nothing: the dashboards still show the previous warehouse.",
        "",
        f"Drop:  {drop}",
        f"Error: {error}",
        "",
    ]
    if rules:
        lines.append("Rules that rejected rows:")
        lines += [
            f"  - {r['rule']} ({r['source_table']}, {r['severity']}): "
            f"{r['rows_failing']:,} of {r['rows_checked']:,} rows; {r['description']}"
            for r in rules
        ]
        lines.append("")
    lines += [
        "To look closer:",
        "  olist-bi etl status                 the recent runs, with their quality summary",
        f"  olist-bi check {drop}     the drop against the source contract, file by file",
        f"  select * from quarantine.rejected_rows where run_id = {run_id}   "
        "(the rejected rows, in the run's warehouse file, if it got that far)",
        "",
        "Fix the drop and put it in the inbox again (remove its FAILED file), or run `olist-bi etl run --source DIR`.",
    ]
    first = rules[0]["rule"] if rules else error.splitlines()[0][:80]
    subject = f"[Olist BI] ETL run {run_id} failed: {first}"
    try:
        mail.send(settings, mail.recipients(settings, "admins"), subject, "\n".join(lines))
    except mail.MailError as e:
        log.error("could not mail the admins about run %s: %s", run_id, e)
        return False
    log.info("mailed the admins about run %s", run_id)
    return True

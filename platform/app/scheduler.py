"""`olist-bi scheduler`: APScheduler runs the ETL on a cron schedule and on new drops.

Jobs, kept in PostgreSQL (the operations store) so schedules survive restarts:
- `etl_schedule`: at OLIST_ETL_SCHEDULE (default nightly, 02:00), loads every ready drop of
  the inbox, or records a skipped run when there is none;
- `inbox_watch`: every OLIST_INBOX_POLL_SECONDS, loads the ready drops of the inbox, if any;
- `access_review`: every OLIST_ACCESS_REVIEW_MINUTES, each BI tool's access review (users,
  roles or groups and permissions into the audit trail; Superset's SQL Lab history too;
  access/review.py);
- `audit_checkpoint`: every OLIST_AUDIT_CHECKPOINT_MINUTES, a signed checkpoint of the audit
  trail (operations/checkpoint.py).

After a run that published, each reachable BI tool's after-publish step runs (olist_bi.bi);
after a run that failed, the admins get a mail naming the run and its failing rules
(notify/alerts.py).

A drop is a sub-folder of the inbox holding the nine files and a file named `READY` (written
last, so a half-copied drop is never read). After its run the scheduler writes `LOADED`
(or `FAILED`, with the error) into the folder; a drop with either is not picked up again
until that file is removed. Runs never overlap, across processes too: the ETL takes a
PostgreSQL advisory lock (a run that finds it taken is recorded as skipped). Late runs are
coalesced into one. SIGTERM or SIGINT stops the scheduler cleanly, after the running job.

One scheduler leads per operations database: it holds a PostgreSQL advisory lock on a
connection of its own for as long as it runs. Another one started on the same database waits
as a standby, runs and records nothing, and takes over within OLIST_INBOX_POLL_SECONDS when
the leader stops or dies (its session ends, and the lock with it).

Other parts of the platform register their periodic jobs in `PERIODIC_JOBS`.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from olist_bi.runtime import cron
from olist_bi.contract import SOURCE_FILES
from olist_bi.operations.postgres import database_url
from olist_bi.settings import Settings, mask_url

log = logging.getLogger("olist_bi.scheduler")

READY, LOADED, FAILED = "READY", "LOADED", "FAILED"
JOB_TABLE = "apscheduler_jobs"
LEADER_LOCK = 7_106_714  # PostgreSQL advisory lock: one scheduler at a time per operations database


class LeadershipLost(RuntimeError):
    """The scheduler's leader lock went with its database session."""


@dataclass(frozen=True)
class PeriodicJob:
    """A job another part of the platform runs on a schedule: `func` must be importable
    (module-level) because jobs are stored in PostgreSQL by reference."""

    id: str
    func: Callable[[], None]
    trigger: Callable[[Settings], object]
    name: str = ""


PERIODIC_JOBS: list[PeriodicJob] = []


def ready_drops(inbox: Path) -> list[Path]:
    """Drops waiting in the inbox, oldest first: all nine files and READY, no LOADED/FAILED."""
    if not inbox.is_dir():
        return []
    drops = [
        d
        for d in inbox.iterdir()
        if d.is_dir()
        and (d / READY).exists()
        and not (d / LOADED).exists()
        and not (d / FAILED).exists()
        and all((d / s.filename).exists() for s in SOURCE_FILES)
    ]
    return sorted(drops, key=lambda d: ((d / READY).stat().st_mtime, d.name))


def load_inbox(trigger: str) -> list[str]:
    """Run the ETL over each ready drop of the inbox; mark each LOADED or FAILED."""
    from olist_bi.etl import pipeline

    settings = Settings.from_env()
    outcomes = []
    drops = ready_drops(settings.inbox)
    if not drops and trigger == "schedule":
        # A scheduled run with nothing to do is still recorded, so a quiet night shows.
        from olist_bi.operations import store

        with store.connect(database_url(settings)) as ops:
            run = store.RunLog(ops, "schedule", str(settings.inbox), False)
            run.finish("skipped", error=f"no ready drop in {settings.inbox}")
        return [f"run {run.run_id} skipped: no ready drop"]
    for drop in drops:
        try:
            result = pipeline.run(settings, drop, trigger=trigger)
        except pipeline.EtlError as e:
            (drop / FAILED).write_text(f"run {e.run_id} failed:\n{e}\n", encoding="utf-8")
            outcomes.append(f"{drop.name}: run {e.run_id} failed")
            log.error("drop %s: run %s failed: %s", drop, e.run_id, e)
            if e.run_id is not None:
                from olist_bi.notify import alerts

                alerts.run_failed(settings, e.run_id, drop, str(e))
            continue
        if result.status == "skipped" and result.message == pipeline.BUSY:
            outcomes.append(f"{drop.name}: waiting, {result.message}")
            continue  # left ready: the next poll tries again
        (drop / LOADED).write_text(f"run {result.run_id} {result.status}: {result.message}\n", encoding="utf-8")
        outcomes.append(f"{drop.name}: run {result.run_id} {result.status}")
        log.info("drop %s: run %s %s", drop, result.run_id, result.status)
        if result.status == "succeeded":
            _after_publish(settings)
    return outcomes


def _after_publish(settings: Settings) -> None:
    from olist_bi import bi

    for outcome in bi.after_publish(settings, say=log.info):
        (log.info if outcome.status == "done" else log.warning)("after publish: %s %s: %s", outcome.tool, outcome.status, outcome.message)


def access_review() -> None:
    """Each BI tool's access review."""
    from olist_bi import bi

    for outcome in bi.review_access(Settings.from_env()):
        (log.info if outcome.status == "done" else log.warning)("access review: %s %s: %s", outcome.tool, outcome.status, outcome.message)


def audit_checkpoint() -> None:
    """Sign the audit trail's head into a checkpoint file."""
    from olist_bi.operations import checkpoint, store

    settings = Settings.from_env()
    with store.connect(database_url(settings)) as ops:
        written, path = checkpoint.write(settings, ops)
    log.info("audit checkpoint: %d rows up to id %d in %s", written.rows, written.last_id, path)


def scheduled_etl() -> None:
    load_inbox("schedule")


def inbox_watch() -> None:
    load_inbox("new_drop")


def sqlalchemy_url(url: str) -> str:
    """The operations store URL in the form SQLAlchemy wants for psycopg 3."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {mask_url(url)}")


@dataclass
class Scheduler:
    settings: Settings
    scheduler: BackgroundScheduler = field(init=False)

    def __post_init__(self) -> None:
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=sqlalchemy_url(database_url(self.settings)), tablename=JOB_TABLE)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
            timezone="UTC",
        )

    def register(self) -> None:
        """(Re)register every job; replacing keeps one row per job and applies new settings."""
        s = self.settings
        jobs = [
            PeriodicJob("etl_schedule", scheduled_etl, lambda s: cron.trigger(s.etl_schedule, timezone="UTC"), "ETL on schedule"),
            PeriodicJob("inbox_watch", inbox_watch, lambda s: IntervalTrigger(seconds=s.inbox_poll_seconds), "ETL on new drops"),
            PeriodicJob(
                "access_review", access_review, lambda s: IntervalTrigger(minutes=s.access_review_minutes), "Access review of the BI tools"
            ),
            PeriodicJob(
                "audit_checkpoint",
                audit_checkpoint,
                lambda s: IntervalTrigger(minutes=s.audit_checkpoint_minutes),
                "Signed checkpoint of the audit trail",
            ),
            *PERIODIC_JOBS,
        ]
        for job in jobs:
            self.scheduler.add_job(job.func, job.trigger(s), id=job.id, name=job.name or job.id, replace_existing=True)

    def run_until_stopped(self, stop: threading.Event | None = None) -> None:
        """Lead (or wait as a standby until this one may), until SIGTERM/SIGINT (or `stop`);
        then shut down cleanly, after the running job."""
        import psycopg

        stop = stop or threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        self.settings.inbox.mkdir(parents=True, exist_ok=True)
        poll = self.settings.inbox_poll_seconds
        with psycopg.connect(database_url(self.settings), autocommit=True) as leader:
            waiting = False
            while not stop.is_set():
                if leader.execute("select pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone()[0]:
                    break
                if not waiting:
                    log.info("standby: another scheduler leads on this operations database; taking over when it stops")
                    waiting = True
                stop.wait(poll)
            else:
                return
            log.info("leading: this scheduler runs the jobs")
            self.scheduler.start(paused=True)
            self.register()
            self.scheduler.resume()
            for job in self.scheduler.get_jobs():
                log.info("job %s next at %s", job.id, job.next_run_time)
            try:
                while not stop.wait(poll):
                    leader.execute("select 1")  # the lock lives as long as this session
            except psycopg.Error as e:
                log.warning("lost the connection that holds the leader lock (%s): stopping, so that one scheduler leads", str(e).strip())
                self.scheduler.shutdown(wait=True)
                raise LeadershipLost("the scheduler lost its operations database connection and stopped; start it again") from None
            log.info("stopping: waiting for the running job to finish")
            self.scheduler.shutdown(wait=True)

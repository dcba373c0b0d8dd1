"""Run Superset: prepare its metadata database, then serve it with gunicorn, detached.

Superset runs from its own virtual environment (.venv-superset, installed from the pins in
requirements/ beside this module) with superset_config.py, also beside it (both package data);
the platform talks to it over HTTP only, as it would to a Superset in a container or on
another host.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from importlib.resources import files
from pathlib import Path
from urllib.parse import urlsplit

from olist_bi import demo
from olist_bi.notify import mail
from olist_bi.runtime import process
from olist_bi.operations.postgres import database_url, ensure_database, superset_metadata_url, with_database
from olist_bi.settings import Settings

HERE = files("olist_bi.bi.superset")
CONFIG = HERE / "superset_config.py"
CONSTRAINTS = HERE / "requirements" / "superset-constraints.txt"
PROJECT = Path(__file__).resolve().parents[3]  # a checkout's root, where `make` puts .venv-superset
ADMIN_USER = "admin"
START_TIMEOUT = 180
CHROMIUM = Path("/usr/lib/chromium/chromium")  # Debian's, the binary its /usr/bin/chromium wrapper runs


class SupersetError(RuntimeError):
    """Superset could not be installed, prepared, started or stopped; the message says why."""


def venv(settings: Settings) -> Path:
    path = settings.superset_venv or PROJECT / ".venv-superset"
    if not (path / "bin" / "superset").exists():
        raise SupersetError(f"Superset is not installed in {path}: run `make up` (it installs it from platform/bi/superset/requirements/)")
    return path


def metadata_url(settings: Settings) -> str:
    """Superset's metadata database: as configured; on the embedded server, database `superset`
    as its own role; else database `superset` beside the operations store."""
    if settings.superset_database_url:
        return settings.superset_database_url
    if embedded := superset_metadata_url(settings):
        return embedded
    url = with_database(database_url(settings), "superset")
    ensure_database(with_database(url, "postgres"), "superset")
    return url


def environment(settings: Settings) -> dict[str, str]:
    """The environment Superset's processes run with (superset_config.py reads it)."""
    env = {
        **settings.environment("superset"),  # the settings declared for Superset's processes, no other part's secrets
        "SUPERSET_CONFIG_PATH": str(CONFIG),
        "OLIST_SUPERSET_SECRET_KEY": demo.secret(settings, "OLIST_SUPERSET_SECRET_KEY", settings.superset_secret_key, 48),
        "OLIST_SUPERSET_DATABASE_URL": metadata_url(settings),
        "PYTHONUNBUFFERED": "1",
    }
    if not settings.redis_url:
        env["OLIST_SUPERSET_CACHE_DIR"] = str(settings.superset_dir / "cache")
        env["OLIST_SUPERSET_BROKER_URL"] = broker_url(settings)
    env["OLIST_SUPERSET_WEBDRIVER_URL"] = f"http://127.0.0.1:{settings.superset_port}/"
    env["OLIST_SUPERSET_PUBLIC_URL"] = settings.superset_base_url + "/"
    if (folder := browsers(settings)) is not None:
        env["PLAYWRIGHT_BROWSERS_PATH"] = str(folder)
    env.update(smtp_environment(settings))
    return env


def broker_url(settings: Settings) -> str:
    """Celery's broker and results without Redis: a database beside Superset's metadata, named
    after it (`superset_celery` for `superset`), so that two Superset installations on one
    server never share a queue. kombu's SQLAlchemy transport makes its tables there."""
    metadata = metadata_url(settings)
    name = urlsplit(metadata).path.lstrip("/") + "_celery"
    ensure_database(with_database(metadata, "postgres"), name)
    return with_database(metadata, name)


def smtp_environment(settings: Settings) -> dict[str, str]:
    """The mail server Superset's reports go through: the platform's (platform/notify/mail.py), the
    demo's mail sink when none is set; none at all in production without OLIST_SMTP_HOST (the
    reports' log then says that sending failed)."""
    allowed = {"OLIST_MAIL_ALLOWED_DOMAINS": ",".join(settings.mail_allowed_domains)}
    try:
        host, port = mail.server(settings)
    except mail.MailError:
        return {"OLIST_SMTP_HOST": "", **allowed}
    return {
        "OLIST_SMTP_HOST": host,
        "OLIST_SMTP_PORT": str(port),
        "OLIST_SMTP_SECURITY": settings.smtp_security,
        "OLIST_SMTP_USER": settings.smtp_user or "",
        "OLIST_SMTP_PASSWORD": settings.smtp_password or "",
        "OLIST_MAIL_FROM": settings.mail_from,
        **allowed,
    }


CHROMIUM_MISSING = (
    f"Debian's Chromium is not installed ({CHROMIUM}): Superset serves its dashboards, but its reports, "
    "alerts and thumbnails wait for it: run `make chromium` (apt-get install chromium, as root)"
)


def browsers(settings: Settings) -> Path | None:
    """A Playwright browsers folder whose Chromium headless shell is Debian's Chromium; None
    without Chromium (Superset then serves everything but its screenshots).

    Superset launches Playwright's Chromium with no executable path, so Playwright looks for
    the build its release pins, under PLAYWRIGHT_BROWSERS_PATH; nothing may download one here.
    The folder holds that build's path as a link to /usr/lib/chromium/chromium."""
    if not CHROMIUM.exists():
        return None
    pinned = next((venv(settings) / "lib").glob("python3*/site-packages/playwright/driver/package/browsers.json"), None)
    if pinned is None:
        raise SupersetError(f"Playwright is not installed in {venv(settings)}: run `make .venv-superset/.installed`")
    revision = next(b["revision"] for b in json.loads(pinned.read_text())["browsers"] if b["name"] == "chromium-headless-shell")
    folder = settings.superset_dir / "playwright"
    link = folder / f"chromium_headless_shell-{revision}" / "chrome-headless-shell-linux64" / "chrome-headless-shell"
    if not link.is_symlink():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(CHROMIUM)
    return folder


def admin_password(settings: Settings) -> str:
    return demo.password(settings, "OLIST_SUPERSET_ADMIN_PASSWORD", settings.superset_admin_password)


def _superset(settings: Settings, env: dict, *args: str) -> str:
    result = subprocess.run([str(venv(settings) / "bin" / "superset"), *args], env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
        raise SupersetError(f"`superset {' '.join(args[:2])}` failed:\n{tail}")
    return result.stdout + result.stderr


def prepare(settings: Settings, say=print) -> None:
    """Migrate the metadata database, create or update the admin, and sync roles and
    permissions; skipped when nothing changed since the last time (a stamp under OLIST_HOME)."""
    env = environment(settings)
    password = admin_password(settings)
    fingerprint = hashlib.sha256(
        b"\n".join(
            [
                CONSTRAINTS.read_bytes(),
                CONFIG.read_bytes(),
                env["OLIST_SUPERSET_DATABASE_URL"].encode(),
                hashlib.sha256(password.encode()).digest(),
            ]
        )
    ).hexdigest()
    stamp = settings.superset_dir / "prepared"
    if stamp.exists() and stamp.read_text() == fingerprint:
        return
    settings.superset_dir.mkdir(parents=True, exist_ok=True)
    say("superset: migrating its metadata database ...")
    _superset(settings, env, "db", "upgrade")
    say("superset: creating the admin user ...")
    out = _superset(
        settings,
        env,
        "fab",
        "create-admin",
        "--username",
        ADMIN_USER,
        "--firstname",
        "Olist",
        "--lastname",
        "Admin",
        "--email",
        "admin@olist-bi.local",
        "--password",
        password,
    )
    if "already exists" in out:
        _superset(settings, env, "fab", "reset-password", "--username", ADMIN_USER, "--password", password)
    say("superset: syncing roles and permissions ...")
    _superset(settings, env, "init")
    stamp.write_text(fingerprint)


def pid_file(settings: Settings) -> Path:
    return settings.superset_dir / "gunicorn.pid"


def log_file(settings: Settings) -> Path:
    return settings.superset_dir / "superset.log"


def healthy(url: str) -> bool:
    return process.answers(f"{url}/health")


def serve(settings: Settings, say=print) -> str:
    """Prepare and start Superset detached on 127.0.0.1:OLIST_SUPERSET_PORT; return its URL.
    A Superset already answering there is left as it is."""
    url = f"http://127.0.0.1:{settings.superset_port}"
    if healthy(url):
        start_celery(settings, say)
        return url
    prepare(settings, say)
    env = environment(settings)
    settings.superset_dir.mkdir(parents=True, exist_ok=True)
    log = process.private_log(log_file(settings))  # it holds the text of failed queries
    say(f"superset: starting on {url} (log: {log_file(settings)}) ...")
    subprocess.Popen(
        [
            str(venv(settings) / "bin" / "gunicorn"),
            "--workers",
            str(settings.superset_workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(settings.superset_threads),
            "--timeout",
            "120",
            "--bind",
            f"127.0.0.1:{settings.superset_port}",
            "--pid",
            str(pid_file(settings)),
            "--access-logfile",
            "-",
            "--config",
            "python:olist_bi.bi.superset.gunicorn",
            "superset.app:create_app()",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + START_TIMEOUT
    while not healthy(url):
        if time.time() > deadline:
            raise SupersetError(f"Superset did not answer on {url} within {START_TIMEOUT} s; see {log_file(settings)}")
        time.sleep(0.5)
    start_celery(settings, say)
    return url


# Alerts & Reports: a worker runs the reports (one at a time: each drives a browser), a beat
# queues them on their crontabs. Each logs "ready" lines that say it is up.
CELERY = {
    "worker": (["worker", "--pool=prefork", "--concurrency=1", "-O", "fair", "--loglevel=INFO"], b" ready."),
    "beat": (["beat", "--schedule=celerybeat-schedule", "--pidfile=celerybeat.pid", "--loglevel=INFO"], b"beat: Starting..."),
}


def celery_pid_file(settings: Settings, name: str) -> Path:
    return settings.superset_dir / f"celery-{name}.pid"


def start_celery(settings: Settings, say=print) -> None:
    """Start Superset's Celery worker and beat, detached, unless they run already."""
    env = environment(settings)
    for name, (args, ready) in CELERY.items():
        pid_file = celery_pid_file(settings, name)
        if process.running(pid_file):
            continue
        log = settings.superset_dir / f"celery-{name}.log"
        offset = log.stat().st_size if log.exists() else 0

        def started(log=log, offset=offset, ready=ready) -> bool:
            with log.open("rb") as f:
                f.seek(offset)
                return ready in f.read()

        say(f"superset: starting its Celery {name} for alerts and reports (log: {log}) ...")
        command = [str(venv(settings) / "bin" / "celery"), "--app=superset.tasks.celery_app:app", *args]
        try:
            process.start(f"Superset's Celery {name}", command, env, pid_file, log, started, cwd=settings.superset_dir, timeout=120)
        except process.ServiceError as e:
            raise SupersetError(str(e)) from None


def stop(settings: Settings) -> bool:
    """Stop the Superset `serve` started, and its Celery worker and beat, all three at once
    (each takes seconds to shut down cleanly); return whether Superset was running."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(CELERY) + 1) as pool:
        celery = [pool.submit(process.stop, celery_pid_file(settings, name), grace=30) for name in CELERY]
        web = pool.submit(process.stop, pid_file(settings), grace=30)  # gunicorn leads a session of its own
        for stopped in celery:
            stopped.result()  # an error stopping one is raised, after the others were stopped
        return web.result()

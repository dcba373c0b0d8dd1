"""Run Superset: prepare its metadata database, then serve it with gunicorn, detached.

Superset runs from its own virtual environment (.venv-superset, see requirements/) with the
project's superset_config.py; the platform talks to it over HTTP only, as it would to a
Superset in a container or on another host.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

from olist_bi import demo, process
from olist_bi.operations.postgres import database_url, ensure_database, with_database
from olist_bi.settings import Settings

PROJECT = Path(__file__).resolve().parents[2]
CONFIG = PROJECT / "superset_config.py"
ADMIN_USER = "admin"
START_TIMEOUT = 180


class SupersetError(RuntimeError):
    """Superset could not be installed, prepared, started or stopped; the message says why."""


def venv(settings: Settings) -> Path:
    path = settings.superset_venv or PROJECT / ".venv-superset"
    if not (path / "bin" / "superset").exists():
        raise SupersetError(f"Superset is not installed in {path}: run `make up` (it installs it from requirements/)")
    return path


def metadata_url(settings: Settings) -> str:
    """Superset's metadata database: as configured, or database `superset` beside the operations store."""
    if settings.superset_database_url:
        return settings.superset_database_url
    url = with_database(database_url(settings), "superset")
    ensure_database(with_database(url, "postgres"), "superset")
    return url


def environment(settings: Settings) -> dict[str, str]:
    """The environment Superset's processes run with (superset_config.py reads it)."""
    env = {
        **os.environ,
        "SUPERSET_CONFIG_PATH": str(CONFIG),
        "OLIST_SUPERSET_SECRET_KEY": demo.secret(settings, "OLIST_SUPERSET_SECRET_KEY", settings.superset_secret_key, 48),
        "OLIST_SUPERSET_DATABASE_URL": metadata_url(settings),
        "PYTHONUNBUFFERED": "1",
    }
    if settings.redis_url:
        env["OLIST_REDIS_URL"] = settings.redis_url
    else:
        env["OLIST_SUPERSET_CACHE_DIR"] = str(settings.superset_dir / "cache")
    return env


def admin_password(settings: Settings) -> str:
    return demo.password(settings, "OLIST_SUPERSET_ADMIN_PASSWORD", settings.superset_admin_password)


def _superset(settings: Settings, env: dict, *args: str) -> str:
    result = subprocess.run(
        [str(venv(settings) / "bin" / "superset"), *args], env=env, capture_output=True, text=True, timeout=600
    )
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
                (PROJECT / "requirements" / "superset-constraints.txt").read_bytes(),
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
        settings, env, "fab", "create-admin", "--username", ADMIN_USER, "--firstname", "Olist", "--lastname", "Admin",
        "--email", "admin@olist-bi.local", "--password", password,
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
        return url
    prepare(settings, say)
    env = environment(settings)
    settings.superset_dir.mkdir(parents=True, exist_ok=True)
    log = log_file(settings).open("ab")
    say(f"superset: starting on {url} (log: {log_file(settings)}) ...")
    subprocess.Popen(
        [
            str(venv(settings) / "bin" / "gunicorn"),
            "--workers", str(settings.superset_workers), "--worker-class", "gthread",
            "--threads", str(settings.superset_threads), "--timeout", "120",
            "--bind", f"127.0.0.1:{settings.superset_port}", "--pid", str(pid_file(settings)),
            "--access-logfile", "-", "superset.app:create_app()",
        ],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.time() + START_TIMEOUT
    while not healthy(url):
        if time.time() > deadline:
            raise SupersetError(f"Superset did not answer on {url} within {START_TIMEOUT} s; see {log_file(settings)}")
        time.sleep(0.5)
    return url


def stop(settings: Settings) -> bool:
    """Stop the Superset `serve` started; return whether one was running."""
    path = pid_file(settings)
    if not path.exists():
        return False
    pid = int(path.read_text().strip())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        return False
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    path.unlink(missing_ok=True)
    return True

"""The analysts' notebook: olist_bi/notebook/explore.py (package data) served by `marimo run` as a read-only app.

`serve` starts it detached on 127.0.0.1:OLIST_NOTEBOOK_PORT (as `olist-bi up` does) or in
the foreground (as docker-compose's notebook service does); `stop` stops the detached one.
marimo's app mode runs the notebook's cells on the server and sends no code to the browser;
the notebook reads the warehouse only through olist_bi.api, read-only.

Access takes a token (marimo's token password): OLIST_NOTEBOOK_PASSWORD, generated for the
local demo, required in production. It reaches marimo on its standard input, never on its
command line, where other users of the machine could read it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

from olist_bi import demo
from olist_bi.engines.base import engine
from olist_bi.runtime import process
from olist_bi.settings import Settings

NOTEBOOK = files("olist_bi.notebook") / "explore.py"
START_TIMEOUT = 60


class NotebookError(RuntimeError):
    """The notebook server did not start; the message says where to look."""


def password(settings: Settings) -> str:
    return demo.password(settings, "OLIST_NOTEBOOK_PASSWORD", settings.notebook_password)


def url(settings: Settings, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{settings.notebook_port}"


def login_url(settings: Settings) -> str:
    """The address that opens the notebook, token included (marimo's access_token parameter)."""
    return f"{url(settings)}/?access_token={password(settings)}"


def pid_file(settings: Settings) -> Path:
    return settings.home / "notebook" / "marimo.pid"


def log_file(settings: Settings) -> Path:
    return settings.home / "notebook" / "marimo.log"


def command(settings: Settings, host: str) -> list[str]:
    marimo = Path(sys.executable).parent / "marimo"
    return [
        str(marimo),
        "run",
        str(NOTEBOOK),
        "--host",
        host,
        "--port",
        str(settings.notebook_port),
        "--headless",
        "--no-sandbox",
        "--token-password-file",
        "-",
    ]


def environment(settings: Settings) -> dict[str, str]:
    """The notebook's process: the settings declared for it, the reader copy as its warehouse,
    and ClickHouse as the read-only user (no other part's secrets, no ETL credentials)."""
    return {**settings.environment("notebook"), **engine(settings).reader_environment(), "PYTHONUNBUFFERED": "1"}


def healthy(settings: Settings) -> bool:
    return process.answers(f"{url(settings)}/health")


def serve(settings: Settings, say=print) -> str:
    """Start the notebook detached; return its address with the token. One already
    answering on the port is left as it is."""
    token = password(settings)
    if healthy(settings):
        return login_url(settings)
    if not NOTEBOOK.exists():
        raise NotebookError(f"{NOTEBOOK} is missing: the notebook is served from a checkout of the project")
    say(f"notebook: starting marimo on {url(settings)} (log: {log_file(settings)}) ...")
    try:
        process.start(
            "the notebook (marimo)",
            command(settings, "127.0.0.1"),
            environment(settings),
            pid_file(settings),
            log_file(settings),
            lambda: healthy(settings),
            stdin=token,
            cwd=settings.home,
            timeout=START_TIMEOUT,
        )
    except process.ServiceError as e:
        raise NotebookError(str(e)) from None
    return login_url(settings)


def run_foreground(settings: Settings, host: str) -> int:
    """Serve the notebook in this process's place until it is stopped (docker-compose)."""
    token = password(settings)
    child = subprocess.Popen(command(settings, host), env=environment(settings), stdin=subprocess.PIPE, cwd=settings.home)
    child.stdin.write(token.encode())
    child.stdin.close()
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGINT)
        return child.wait()


def stop(settings: Settings) -> bool:
    """Stop the notebook `serve` started (marimo and the kernel it runs the cells in); return
    whether one was running."""
    return process.stop(pid_file(settings))

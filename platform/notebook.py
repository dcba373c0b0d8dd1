"""The analysts' notebook: notebooks/explore.py served by `marimo run` as a read-only app.

`serve` starts it detached on 127.0.0.1:OLIST_NOTEBOOK_PORT (as `olist-bi up` does) or in
the foreground (as docker-compose's notebook service does); `stop` stops the detached one.
marimo's app mode runs the notebook's cells on the server and sends no code to the browser;
the notebook reads the warehouse only through olist_bi.api, read-only.

Access takes a token (marimo's token password): OLIST_NOTEBOOK_PASSWORD, generated for the
local demo, required in production. It reaches marimo on its standard input, never on its
command line, where other users of the machine could read it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from olist_bi import demo
from olist_bi.settings import Settings

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "explore.py"
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
        str(marimo), "run", str(NOTEBOOK), "--host", host, "--port", str(settings.notebook_port),
        "--headless", "--no-sandbox", "--token-password-file", "-",
    ]


def environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"OLIST_HOME": str(settings.home), "OLIST_WAREHOUSE_PATH": str(settings.warehouse_path), "PYTHONUNBUFFERED": "1"})
    return env


def healthy(settings: Settings) -> bool:
    try:
        with urllib.request.urlopen(f"{url(settings)}/health", timeout=3) as response:
            return response.status == 200
    except OSError:
        return False


def serve(settings: Settings, say=print) -> str:
    """Start the notebook detached; return its address with the token. One already
    answering on the port is left as it is."""
    token = password(settings)
    if healthy(settings):
        return login_url(settings)
    if not NOTEBOOK.exists():
        raise NotebookError(f"{NOTEBOOK} is missing: the notebook is served from a checkout of the project")
    pid_file(settings).parent.mkdir(parents=True, exist_ok=True)
    say(f"notebook: starting marimo on {url(settings)} (log: {log_file(settings)}) ...")
    # marimo writes the address with its token into the log: private, as the secrets are.
    with os.fdopen(os.open(log_file(settings), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
        process = subprocess.Popen(
            command(settings, "127.0.0.1"), env=environment(settings), stdin=subprocess.PIPE, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, cwd=settings.home,
        )
    process.stdin.write(token.encode())
    process.stdin.close()
    pid_file(settings).write_text(str(process.pid))
    deadline = time.time() + START_TIMEOUT
    while not healthy(settings):
        if process.poll() is not None:
            raise NotebookError(f"marimo exited with status {process.returncode}; see {log_file(settings)}")
        if time.time() > deadline:
            raise NotebookError(f"the notebook did not answer on {url(settings)} within {START_TIMEOUT} s; see {log_file(settings)}")
        time.sleep(0.3)
    return login_url(settings)


def run_foreground(settings: Settings, host: str) -> int:
    """Serve the notebook in this process's place until it is stopped (docker-compose)."""
    token = password(settings)
    process = subprocess.Popen(command(settings, host), env=environment(settings), stdin=subprocess.PIPE, cwd=settings.home)
    process.stdin.write(token.encode())
    process.stdin.close()
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)
        return process.wait()


def stop(settings: Settings) -> bool:
    """Stop the notebook `serve` started; return whether one was running."""
    path = pid_file(settings)
    if not path.exists():
        return False
    pid = int(path.read_text().strip())
    path.unlink(missing_ok=True)
    try:
        os.killpg(pid, signal.SIGTERM)  # marimo and the kernel it runs the cells in
    except ProcessLookupError:
        return False
    deadline = time.time() + 15
    while time.time() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.2)
    os.killpg(pid, signal.SIGKILL)
    return True


def _gone(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # this process started it (`up`, a test): reaped
            return True
    except ChildProcessError:
        pass  # another process's child
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False

"""Helpers the platform's own background services share (the notebook, the demo's mail
sink): start one detached with a pid file and a private log, wait until it answers, stop it
with its process group."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Callable


class ServiceError(RuntimeError):
    """A background service did not start; the message says where to look."""


def start(
    name: str,
    command: list[str],
    env: dict[str, str],
    pid_file: Path,
    log_file: Path,
    healthy: Callable[[], bool],
    stdin: str | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
) -> None:
    """Start `command` in a session of its own, logging to `log_file` (mode 0600: a log may
    hold an address with a token), `stdin` written to it and closed; wait until `healthy()`."""
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with private_log(log_file) as log:
        process = subprocess.Popen(
            command, env=env, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd
        )
    if stdin is not None:
        process.stdin.write(stdin.encode())
    process.stdin.close()
    pid_file.write_text(str(process.pid))
    deadline = time.time() + timeout
    while not healthy():
        if process.poll() is not None:
            pid_file.unlink(missing_ok=True)
            raise ServiceError(f"{name} exited with status {process.returncode}; see {log_file}")
        if time.time() > deadline:
            raise ServiceError(f"{name} did not answer within {timeout:g} s; see {log_file}")
        time.sleep(0.3)


def private_log(path: Path):
    """`path` opened for appending, readable by its owner only (mode 0600, a log made before
    with another mode included): logs hold tokens, failed queries' text, addresses."""
    log = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
    os.chmod(path, 0o600)
    return log


def answers(url: str) -> bool:
    """Whether an HTTP service answers 200 at `url` (its health endpoint) within 3 s."""
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status == 200
    except OSError:
        return False


def running(pid_file: Path) -> bool:
    """Whether the service recorded in `pid_file` is still alive."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    return not gone(pid)


def stop(pid_file: Path, grace: float = 15) -> bool:
    """Stop the service `start` recorded in `pid_file`, and its process group; return whether
    one was running."""
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().strip())
    pid_file.unlink(missing_ok=True)
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.time() + grace
    while time.time() < deadline:
        if gone(pid):
            return True
        time.sleep(0.2)
    os.killpg(pid, signal.SIGKILL)
    return True


def gone(pid: int) -> bool:
    """Whether process `pid` has exited (reaped, if this process started it: a zombie counts as gone)."""
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

"""The local demo's mail sink: an SMTP server on 127.0.0.1:OLIST_SMTP_PORT that delivers
nothing and keeps each message it receives as an .eml file under $OLIST_HOME/outbox/, so the
demo's alerts and reports can be read without a mail server (`olist-bi outbox` lists them).

It is aiosmtpd's SMTP server with a handler of ours; `olist-bi up` starts it detached,
`olist-bi outbox serve --foreground` runs it in the foreground.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import os
import smtplib
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from olist_bi.runtime import process
from olist_bi.settings import Settings


class Keep:
    """aiosmtpd handler: each message into the outbox folder, named by its arrival time."""

    def __init__(self, folder: Path, say=print):
        self.folder, self.say = folder, say
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's hook name)
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
            path = self.folder / f"{stamp}.eml"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(envelope.original_content or envelope.content)
        self.say(f"outbox: a message to {', '.join(envelope.rcpt_tos)} kept in {path}")
        return "250 kept in the outbox"


def controller(settings: Settings, say=print):
    from aiosmtpd.controller import Controller

    return Controller(Keep(settings.outbox_dir, say), hostname="127.0.0.1", port=settings.smtp_port)


def healthy(settings: Settings) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", settings.smtp_port, timeout=3) as client:
            return client.noop()[0] == 250
    except (OSError, smtplib.SMTPException):
        return False


def pid_file(settings: Settings) -> Path:
    return settings.home / "outbox.pid"


def log_file(settings: Settings) -> Path:
    return settings.home / "outbox.log"


def serve(settings: Settings, say=print) -> str:
    """Start the sink detached (one already answering on the port is left as it is); return
    where it listens."""
    where = f"smtp://127.0.0.1:{settings.smtp_port}"
    if not healthy(settings):
        say(f"outbox: starting the demo's mail sink on {where} (messages in {settings.outbox_dir}) ...")
        command = [sys.executable, "-m", "olist_bi.cli", "outbox", "serve", "--foreground"]
        env = {**settings.environment("outbox"), "PYTHONUNBUFFERED": "1"}
        process.start("the mail sink", command, env, pid_file(settings), log_file(settings), lambda: healthy(settings), timeout=30)
    return where


def stop(settings: Settings) -> bool:
    return process.stop(pid_file(settings))


@dataclass(frozen=True)
class Kept:
    path: Path
    received: dt.datetime
    sender: str
    to: str
    subject: str
    attachments: list[tuple[str, str, int]]  # (file name, MIME type, bytes)


def messages(settings: Settings) -> list[Kept]:
    """The outbox's messages, oldest first."""
    kept = []
    for path in sorted(settings.outbox_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        attachments = [
            (part.get_filename(), part.get_content_type(), len(part.get_payload(decode=True) or b"")) for part in message.iter_attachments()
        ]
        received = dt.datetime.strptime(path.stem, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=dt.UTC)
        kept.append(Kept(path, received, str(message["From"]), str(message["To"]), str(message["Subject"]), attachments))
    return kept

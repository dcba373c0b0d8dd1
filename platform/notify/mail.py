"""Mail from the platform: alerts to admins (a failed ETL run) and, later, reports.

Sent through OLIST_SMTP_HOST (port, security, login and sender from the other OLIST_SMTP_*
variables and OLIST_MAIL_FROM). In the local demo, with no host set, mail goes to the demo's
mail sink on 127.0.0.1:OLIST_SMTP_PORT, which keeps each message as a file under
$OLIST_HOME/outbox/ (`olist-bi outbox`). Who receives what is in platform/notify/mail.yaml.

Mail goes only to recipients that OLIST_MAIL_ALLOWED_DOMAINS allows (`refused`): the
platform's own mail, and Superset's reports and alerts, whoever created them (the check runs
inside Superset too: platform/bi/superset/app.py).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import parseaddr
from functools import cache
from pathlib import Path

import yaml

from olist_bi import access
from olist_bi.settings import Settings

RECIPIENTS = Path(__file__).with_name("mail.yaml")
LOCAL = {"localhost", "127.0.0.1", "::1"}


class MailError(RuntimeError):
    """Mail could not be sent; the message says why and which setting to look at."""


@cache
def _lists() -> dict[str, list[str]]:
    return yaml.safe_load(RECIPIENTS.read_text(encoding="utf-8"))["recipients"]


def recipient_lists() -> list[str]:
    return list(_lists())


def recipients(settings: Settings, name: str) -> list[str]:
    """The addresses of a recipient list of mail.yaml: addresses as written; a demo user's
    name (the demo only) as that user's address."""
    lists = _lists()
    if name not in lists:
        raise MailError(f"no recipient list {name!r} in {RECIPIENTS}; lists: {', '.join(lists)}")
    addresses = []
    for entry in lists[name]:
        if "@" in entry:
            addresses.append(entry)
        elif settings.is_demo and entry in access.demo_users():
            addresses.append(access.demo_email(entry))
        else:
            raise MailError(
                f"{RECIPIENTS}: {entry!r} in list {name} is not an address"
                + ("" if settings.is_demo else " (demo user names are for the local demo only)")
            )
    check_recipients(settings, addresses)
    return addresses


def refused(addresses, allowed: tuple[str, ...]) -> list[str]:
    """The addresses that the allow-list (domains, or whole addresses) does not cover."""
    out = []
    for address in addresses:
        plain = parseaddr(address)[1].strip().lower()
        domain = plain.rpartition("@")[2]
        if not plain or "@" not in plain or (plain not in allowed and domain not in allowed):
            out.append(address.strip())
    return out


def check_recipients(settings: Settings, to: list[str]) -> None:
    if outside := refused(to, settings.mail_allowed_domains):
        raise MailError(
            f"refused to mail {', '.join(outside)}: not in OLIST_MAIL_ALLOWED_DOMAINS ({', '.join(settings.mail_allowed_domains)})"
        )


def server(settings: Settings) -> tuple[str, int]:
    if settings.smtp_host:
        if settings.smtp_security == "none" and settings.smtp_host not in LOCAL and not settings.is_demo:
            raise MailError(f"OLIST_SMTP_SECURITY=none would send mail to {settings.smtp_host} in the clear: set starttls or tls")
        return settings.smtp_host, settings.smtp_port
    if settings.is_demo:
        return "127.0.0.1", settings.smtp_port  # the demo's mail sink (olist-bi outbox)
    raise MailError("OLIST_SMTP_HOST is not set: the platform has no mail server to send through")


def send(settings: Settings, to: list[str], subject: str, body: str, attachments: list[tuple[str, bytes, str]] = ()) -> None:
    """Send one message; `attachments` are (file name, content, MIME type). Raise MailError,
    before anything is sent, when a recipient is outside OLIST_MAIL_ALLOWED_DOMAINS."""
    check_recipients(settings, to)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = settings.mail_from, ", ".join(to), subject
    message.set_content(body)
    for filename, content, mime in attachments:
        main, sub = mime.split("/", 1)
        message.add_attachment(content, maintype=main, subtype=sub, filename=filename)
    host, port = server(settings)
    try:
        if settings.smtp_security == "tls":
            client = smtplib.SMTP_SSL(host, port, timeout=30, context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(host, port, timeout=30)
        with client:
            if settings.smtp_security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                client.login(settings.smtp_user, settings.smtp_password or "")
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as e:
        where = f"{host}:{port}" + (" (the demo's mail sink: is `olist-bi outbox serve` running?)" if not settings.smtp_host else "")
        raise MailError(f"could not send {subject!r} through {where}: {e}") from e

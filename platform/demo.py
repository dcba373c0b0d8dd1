"""The local demo's secrets: generated once, kept under $OLIST_HOME/secrets (mode 0600).

Outside the demo (OLIST_ENV=production) nothing is generated: a missing secret is an error
that names its variable.
"""

from __future__ import annotations

import os
import secrets
import string
from typing import Callable

from olist_bi.settings import Settings, SettingsError


def login_password(value: str) -> bool:
    """Whether a generated login password holds a lower-case and an upper-case letter and a
    digit: every BI tool's rules then take it (Metabase refuses a password without a digit,
    and 12 to 16 random characters of the URL-safe alphabet have none about 7% of the time)."""
    return all(any(c in kind for c in value) for kind in (string.ascii_lowercase, string.ascii_uppercase, string.digits))


def secret(settings: Settings, variable: str, given: str | None, length: int = 32, rule: Callable[[str], bool] | None = None) -> str:
    """The value of a secret variable: as given, or (demo only) generated and kept.

    A generated value meets `rule`; one kept from before the rule existed that breaks it is
    generated anew (the next provisioning sets it in the BI tools)."""
    if given:
        return given
    if not settings.is_demo:
        raise SettingsError(
            f"{variable} is required when OLIST_ENV=production: the platform generates secrets only for the local demo"
        )
    rule = rule or (lambda value: True)
    path = settings.secrets_dir / variable.lower()
    if path.exists():
        kept = path.read_text(encoding="utf-8").strip()
        if rule(kept):
            return kept
        path.unlink()
    settings.secrets_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.secrets_dir, 0o700)
    value = secrets.token_urlsafe(length)
    while not rule(value):
        value = secrets.token_urlsafe(length)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value)
    return value


def password(settings: Settings, variable: str, given: str | None, length: int = 32) -> str:
    """A login password: as given, or (demo only) generated under `login_password`'s rule."""
    return secret(settings, variable, given, length, login_password)

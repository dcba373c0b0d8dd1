"""The local demo's secrets: generated once, kept under $OLIST_HOME/secrets (mode 0600).

Outside the demo (OLIST_ENV=production) nothing is generated: a missing secret is an error
that names its variable.
"""

from __future__ import annotations

import os
import secrets
import string
import tempfile
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
        raise SettingsError(f"{variable} is required when OLIST_ENV=production: the platform generates secrets only for the local demo")
    rule = rule or (lambda value: True)
    folder = settings.secrets_dir
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)  # a folder left open by hand is closed again
    path = folder / variable.lower()
    if path.exists():
        os.chmod(path, 0o600)
        kept = path.read_text(encoding="utf-8").strip()
        if kept and rule(kept):
            return kept
        path.unlink(missing_ok=True)
    value = secrets.token_urlsafe(length)
    while not rule(value):
        value = secrets.token_urlsafe(length)
    # Written whole under a private name, then linked into place: a process racing this one
    # sees no file or the whole value, never an empty one; the loser reads the winner's.
    fd, scratch = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(value)
        os.link(scratch, path)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    finally:
        os.unlink(scratch)
    return value


def password(settings: Settings, variable: str, given: str | None, length: int = 32) -> str:
    """A login password: as given, or (demo only) generated under `login_password`'s rule."""
    return secret(settings, variable, given, length, login_password)

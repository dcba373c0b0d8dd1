"""The local demo's secrets: generated once, kept under $OLIST_HOME/secrets (mode 0600).

Outside the demo (OLIST_ENV=production) nothing is generated: a missing secret is an error
that names its variable.
"""

from __future__ import annotations

import os
import secrets

from olist_bi.settings import Settings, SettingsError


def secret(settings: Settings, variable: str, given: str | None, length: int = 32) -> str:
    """The value of a secret variable: as given, or (demo only) generated and kept."""
    if given:
        return given
    if not settings.is_demo:
        raise SettingsError(
            f"{variable} is required when OLIST_ENV=production: the platform generates secrets only for the local demo"
        )
    path = settings.secrets_dir / variable.lower()
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    settings.secrets_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.secrets_dir, 0o700)
    value = secrets.token_urlsafe(length)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value)
    return value

"""The access model of access.yaml: the platform's roles and the users of the local demo,
read by both BI tools' provisioning and the audit store."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

from olist_bi import demo
from olist_bi.settings import Settings

PATH = Path(__file__).parent / "access.yaml"


@cache
def model() -> dict:
    return yaml.load(PATH.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)


def roles() -> dict[str, str]:
    """Role name -> what it may do."""
    return dict(model()["roles"])


def scopes() -> dict[str, tuple[str, str]]:
    """Role -> (column, value) of the rows its users may read."""
    out = {}
    for role, bound in (model().get("scopes") or {}).items():
        ((column, value),) = bound.items()
        out[role] = (column, str(value))
    return out


def demo_users() -> dict[str, tuple[str, ...]]:
    """Demo username -> its roles."""
    return {user: tuple(r) for user, r in model()["demo_users"].items()}


def demo_email(username: str) -> str:
    return f"{username}@olist-bi.local"


def demo_password(settings: Settings, username: str) -> str:
    """A demo user's password, the same in both BI tools: generated once into $OLIST_HOME/secrets."""
    return demo.password(settings, f"OLIST_DEMO_{username.upper()}_PASSWORD", None, 12)

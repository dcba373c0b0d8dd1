"""The platform's configuration: every setting comes from one environment variable.

`VARIABLES` is the single list of what can be set; `docs/configuration.md` documents each
one and a test fails when a variable is missing there. `Settings.from_env()` resolves them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping


@dataclass(frozen=True)
class Variable:
    name: str
    default: str | None
    help: str
    secret: bool = False


VARIABLES: tuple[Variable, ...] = (
    Variable(
        "OLIST_HOME",
        "./.olist",
        "Data folder: generated drops, the served warehouse, the embedded PostgreSQL, logs.",
    ),
    Variable(
        "OLIST_DATABASE_URL",
        None,
        "PostgreSQL URL for operations and audit (postgresql://user:pass@host:5432/db). "
        "Unset: an embedded PostgreSQL is started under $OLIST_HOME/postgres.",
        secret=True,
    ),
    Variable(
        "OLIST_WAREHOUSE_PATH",
        None,
        "The served DuckDB warehouse file. Default: $OLIST_HOME/warehouse.duckdb.",
    ),
    Variable(
        "OLIST_EMBEDDED_PG_PORT",
        "5433",
        "TCP port on 127.0.0.1 for the embedded PostgreSQL (only when OLIST_DATABASE_URL is unset).",
    ),
    Variable(
        "OLIST_SAMPLE_SCALE",
        "1",
        "Scale factor of the sample drop that `olist-bi up` generates when no drop is given.",
    ),
)

_BY_NAME = {v.name: v for v in VARIABLES}


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None
    warehouse_path: Path
    embedded_pg_port: int
    sample_scale: float

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Resolve every variable; raise `SettingsError` naming the variable that is wrong."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name)
            if value is None or value.strip() == "":
                return _BY_NAME[name].default
            return value.strip()

        home = Path(get("OLIST_HOME")).expanduser().resolve()
        warehouse = get("OLIST_WAREHOUSE_PATH")
        return cls(
            home=home,
            database_url=get("OLIST_DATABASE_URL"),
            warehouse_path=Path(warehouse).expanduser().resolve()
            if warehouse
            else home / "warehouse.duckdb",
            embedded_pg_port=_parse_port(get("OLIST_EMBEDDED_PG_PORT")),
            sample_scale=_parse_scale(get("OLIST_SAMPLE_SCALE")),
        )

    @property
    def uses_embedded_postgres(self) -> bool:
        return self.database_url is None

    @property
    def embedded_pg_dir(self) -> Path:
        return self.home / "postgres"

    @property
    def drops_dir(self) -> Path:
        return self.home / "drops"

    def describe(self) -> dict[str, str]:
        """The resolved configuration for display, secrets masked."""
        return {
            "OLIST_HOME": str(self.home),
            "OLIST_DATABASE_URL": mask_url(self.database_url)
            if self.database_url
            else f"(unset: embedded PostgreSQL in {self.embedded_pg_dir})",
            "OLIST_WAREHOUSE_PATH": str(self.warehouse_path),
            "OLIST_EMBEDDED_PG_PORT": str(self.embedded_pg_port),
            "OLIST_SAMPLE_SCALE": f"{self.sample_scale:g}",
        }


class SettingsError(ValueError):
    """A setting has a value the platform cannot use; the message names the variable."""


def mask_url(url: str) -> str:
    """Hide the password of a URL such as postgresql://user:secret@host/db."""
    return re.sub(r"(//[^:/@]+:)[^@]*@", r"\1****@", url)


def _parse_port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise SettingsError(f"OLIST_EMBEDDED_PG_PORT must be a port number, got {value!r}") from None
    if not 1024 <= port <= 65535:
        raise SettingsError(f"OLIST_EMBEDDED_PG_PORT must be between 1024 and 65535, got {port}")
    return port


def _parse_scale(value: str) -> float:
    try:
        scale = float(value)
    except ValueError:
        raise SettingsError(f"OLIST_SAMPLE_SCALE must be a number, got {value!r}") from None
    if not 0 < scale <= 100:
        raise SettingsError(f"OLIST_SAMPLE_SCALE must be above 0 and at most 100, got {scale:g}")
    return scale

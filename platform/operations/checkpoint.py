"""Signed checkpoints of the audit trail, kept outside PostgreSQL.

A checkpoint is the head of the chain at one moment: how many rows there were, the last id
and its hash, signed with HMAC-SHA256 under `OLIST_AUDIT_KEY`, a key the database never
holds (generated under $OLIST_HOME/secrets in the demo; required in production). Whoever
controls the database can rewrite rows and recompute every hash, or delete the newest rows,
or all of them; what they cannot do is make a new signature. So `olist-bi audit verify`
holds the chain against the newest checkpoint, and a rewritten, cut or emptied trail fails.

Checkpoints are JSON files in $OLIST_HOME/audit/checkpoints, one per `olist-bi audit
checkpoint`, per ETL run (at its end, whatever its outcome) and per `olist-bi up` (the
scheduler writes one every OLIST_AUDIT_CHECKPOINT_MINUTES, and `audit export` writes one and
carries it). Rows appended after the newest checkpoint are covered from the
next one on: checkpoint often, and copy the files off the server with the exports.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg

from olist_bi import demo
from olist_bi.settings import Settings


class CheckpointInvalid(RuntimeError):
    """A checkpoint file whose signature does not hold: altered, or signed with another key."""


@dataclass(frozen=True)
class Checkpoint:
    at: str  # UTC, ISO 8601
    rows: int
    last_id: int
    last_hash: str
    signature: str = ""

    def payload(self) -> bytes:
        fields = {k: v for k, v in asdict(self).items() if k != "signature"}
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    def signed(self, key: bytes) -> "Checkpoint":
        return Checkpoint(self.at, self.rows, self.last_id, self.last_hash, hmac.new(key, self.payload(), hashlib.sha256).hexdigest())

    def holds(self, key: bytes) -> bool:
        return hmac.compare_digest(self.signed(key).signature, self.signature)

    def as_dict(self) -> dict:
        return asdict(self)


def key(settings: Settings) -> bytes:
    return demo.secret(settings, "OLIST_AUDIT_KEY", settings.audit_key, 32).encode()


def directory(settings: Settings) -> Path:
    return settings.home / "audit" / "checkpoints"


def head(conn: psycopg.Connection) -> Checkpoint:
    """The chain's head now, unsigned."""
    row = conn.execute(
        "select count(*) as rows, (select id from audit_logs order by id desc limit 1) as last_id,"
        " (select hash from audit_logs order by id desc limit 1) as last_hash from audit_logs"
    ).fetchone()
    rows, last_id, last_hash = (row["rows"], row["last_id"], row["last_hash"]) if isinstance(row, dict) else row
    return Checkpoint(dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"), rows, last_id or 0, last_hash or "")


def write(settings: Settings, conn: psycopg.Connection) -> tuple[Checkpoint, Path]:
    """Sign the chain's head and keep it in a new file (mode 0600); return both."""
    from olist_bi.operations import audit

    audit.append(conn, "audit.checkpoint", str(directory(settings)), source="platform")  # the checkpoint covers its own event
    checkpoint = head(conn).signed(key(settings))
    folder = directory(settings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{checkpoint.at.replace(':', '').replace('-', '')[:22]}-{checkpoint.last_id}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(checkpoint.as_dict(), f, indent=1)
    return checkpoint, path


def read(path: Path, secret: bytes) -> Checkpoint:
    try:
        checkpoint = Checkpoint(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as e:
        raise CheckpointInvalid(f"{path} is not a checkpoint: {e}") from None
    if not checkpoint.holds(secret):
        raise CheckpointInvalid(
            f"the signature of {path} does not hold: the file was altered, or OLIST_AUDIT_KEY is not the key it was signed with"
        )
    return checkpoint


def latest(settings: Settings) -> tuple[Checkpoint, Path] | None:
    """The newest checkpoint (the highest last id, then the latest time), its signature checked."""
    folder = directory(settings)
    if not folder.is_dir():
        return None
    secret = key(settings)
    found = [(read(p, secret), p) for p in folder.glob("*.json")]
    return max(found, key=lambda c: (c[0].last_id, c[0].at)) if found else None

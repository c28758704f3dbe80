"""Append-only, hash-chained audit log, in the control file and in every workspace file.

Each row's hash covers its own fields and the previous row's hash; ``audit_head`` records the
last sequence number and hash, so editing a row, deleting a row in the middle and deleting the
tail are all detected by ``verify``. Triggers refuse UPDATE and DELETE on the table itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import apsw
import msgspec

from workbench.clock import Clock, SystemClock, isoformat
from workbench.db.connection import one, rows

GENESIS = "0" * 64
_encoder = msgspec.json.Encoder(order="sorted")


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    occurred_at: str
    workspace_id: str | None
    actor: str | None
    action: str
    target: str | None
    correlation_id: str | None
    details: str
    prev_hash: str
    hash: str


class ChainBroken(Exception):
    """The audit chain does not verify; the message names the first bad row."""

    def __init__(self, message: str, seq: int | None) -> None:
        super().__init__(message)
        self.seq = seq


def _digest(prev_hash: str, fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + _encoder.encode(fields)).hexdigest()


def append(
    conn: apsw.Connection,
    *,
    action: str,
    actor: str | None = None,
    target: str | None = None,
    workspace_id: str | None = None,
    correlation_id: str | None = None,
    details: Mapping[str, Any] | None = None,
    clock: Clock | None = None,
) -> AuditEntry:
    """Append an entry. Call inside the write transaction of the change it records."""
    head = one(conn, "SELECT seq, hash FROM audit_head WHERE id = 1")
    seq = (head["seq"] + 1) if head else 1
    prev_hash = head["hash"] if head else GENESIS
    fields: dict[str, Any] = {
        "seq": seq,
        "occurred_at": isoformat((clock or SystemClock()).now()),
        "workspace_id": workspace_id,
        "actor": actor,
        "action": action,
        "target": target,
        "correlation_id": correlation_id,
        "details": _encoder.encode(dict(details or {})).decode(),
    }
    digest = _digest(prev_hash, fields)
    conn.execute(
        "INSERT INTO audit_log (seq, occurred_at, workspace_id, actor, action, target,"
        " correlation_id, details, prev_hash, hash) VALUES (:seq, :occurred_at,"
        " :workspace_id, :actor, :action, :target, :correlation_id, :details, :prev, :hash)",
        {**fields, "prev": prev_hash, "hash": digest},
    )
    conn.execute(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        (seq, digest),
    )
    return AuditEntry(**fields, prev_hash=prev_hash, hash=digest)


def verify(conn: apsw.Connection) -> int:
    """Walk the chain from the first row; return the number of rows checked.

    Raises ``ChainBroken`` naming the first row whose content, link or position is wrong.
    """
    expected_seq, prev_hash, count = 1, GENESIS, 0
    for row in rows(conn, "SELECT * FROM audit_log ORDER BY seq"):
        seq = row["seq"]
        if seq != expected_seq:
            raise ChainBroken(
                f"row {expected_seq} is missing (next row present is {seq})", expected_seq
            )
        if row["prev_hash"] != prev_hash:
            raise ChainBroken(f"row {seq}: link to the previous row is broken", seq)
        fields = {
            k: row[k]
            for k in (
                "seq",
                "occurred_at",
                "workspace_id",
                "actor",
                "action",
                "target",
                "correlation_id",
                "details",
            )
        }
        if _digest(prev_hash, fields) != row["hash"]:
            raise ChainBroken(f"row {seq}: content does not match its hash (altered)", seq)
        prev_hash, expected_seq, count = row["hash"], seq + 1, count + 1
    head = one(conn, "SELECT seq, hash FROM audit_head WHERE id = 1")
    if head is None and count:
        raise ChainBroken("the chain head record is missing", None)
    if head is not None and (head["seq"] != count or head["hash"] != prev_hash):
        raise ChainBroken(
            f"row {count + 1} is missing: the head records {head['seq']} rows, found {count}",
            count + 1,
        )
    return count

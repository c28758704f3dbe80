"""Append-only, hash-chained audit log."""

from workbench.audit.log import AuditEntry, ChainBroken, append, verify

__all__ = ["AuditEntry", "ChainBroken", "append", "verify"]

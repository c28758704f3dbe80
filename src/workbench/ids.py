"""Identifiers: time-ordered UUIDs (RFC 9562 version 7) and validated workspace ids."""

from __future__ import annotations

import os
import re
import threading
import time
import uuid

from workbench.errors import InvalidWorkspaceId

_lock = threading.Lock()
_last_ms = 0
_counter = 0

WORKSPACE_ID_PATTERN = re.compile(r"ws_[0-9a-f]{32}")


def uuid7() -> uuid.UUID:
    """A version 7 UUID: 48 bits of Unix milliseconds, then a 12-bit counter and random bits.

    The counter makes ids created in the same millisecond by this process strictly increasing.
    """
    global _last_ms, _counter
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms <= _last_ms:
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _counter = 0
            now_ms = _last_ms
        else:
            _last_ms = now_ms
            _counter = 0
        counter = _counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (now_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand
    return uuid.UUID(int=value)


def new_id(prefix: str) -> str:
    """A prefixed, time-ordered id such as ``evt_0190...``."""
    return f"{prefix}_{uuid7().hex}"


def new_workspace_id() -> str:
    return new_id("ws")


def validate_workspace_id(value: object) -> str:
    """Return ``value`` if it is a well-formed workspace id; raise otherwise.

    This runs before a workspace id is ever joined to a path, so ``../``, encoded dots,
    NUL bytes and anything else outside the pattern never reach the file system.
    """
    if not isinstance(value, str) or not WORKSPACE_ID_PATTERN.fullmatch(value):
        raise InvalidWorkspaceId(f"not a workspace id: {value!r:.80}")
    return value

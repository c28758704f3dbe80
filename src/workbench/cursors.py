"""Opaque page cursors for keyset pagination: a JSON value in base64url without padding.

Clients pass them back unchanged; a cursor that does not decode to the expected shape is a
400, never a 500.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgspec

from workbench.errors import BadRequest


def encode(value: Any) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(value)).decode().rstrip("=")


def decode(cursor: str, kind: Any) -> Any:
    """The value of ``cursor``, checked against ``kind`` (any type msgspec can decode to)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return msgspec.json.decode(raw, type=kind)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise BadRequest("invalid cursor") from None

"""Secrets at rest: AES-256-GCM with a key id in every ciphertext, so keys can rotate.

The key comes from the data directory's ``secret.key`` (made by ``workbench init``, mode
0600). A ciphertext reads ``v1.<key id>.<nonce>.<ciphertext+tag>`` (base64url parts); the
key id is the first 8 bytes of the key's SHA-256, so a value sealed under an older key can be
told apart and re-sealed after a rotation.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class SecretError(Exception):
    """A sealed value cannot be opened: wrong key, tampered, or not a sealed value."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


def seal(key: bytes, plaintext: str, *, context: str = "") -> str:
    """Encrypt ``plaintext``; ``context`` (e.g. a workspace id and purpose) is authenticated,
    so a value copied to another place does not open there."""
    if len(key) != 32:
        raise SecretError("the secret key must be 32 bytes")
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), context.encode())
    return f"v1.{key_id(key)}.{_b64(nonce)}.{_b64(sealed)}"


def open_sealed(keys: list[bytes], value: str, *, context: str = "") -> str:
    """Decrypt with whichever of ``keys`` sealed the value (current key first)."""
    try:
        version, kid, nonce, sealed = value.split(".")
    except ValueError:
        raise SecretError("not a sealed value") from None
    if version != "v1":
        raise SecretError(f"unknown sealed value version {version!r}")
    for key in keys:
        if key_id(key) == kid:
            try:
                return AESGCM(key).decrypt(_unb64(nonce), _unb64(sealed), context.encode()).decode()
            except InvalidTag:
                raise SecretError("the sealed value was altered or belongs elsewhere") from None
    raise SecretError(f"no key with id {kid} is available")

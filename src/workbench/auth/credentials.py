"""Secrets handed to clients (API tokens, session and invitation tokens) and their hashes.

Only the SHA-256 hash of a secret is stored. The secrets carry 256 bits of randomness, so a
plain fast hash is right here: there is nothing to brute-force, unlike a password.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

API_TOKEN_PREFIX = "wb_"
INVITATION_PREFIX = "wbi_"
_BODY = r"[A-Za-z0-9_-]{43}"
API_TOKEN_PATTERN = re.compile(re.escape(API_TOKEN_PREFIX) + _BODY)
INVITATION_PATTERN = re.compile(re.escape(INVITATION_PREFIX) + _BODY)
SESSION_PATTERN = re.compile(_BODY)
USER_ID_PATTERN = re.compile(r"usr_[0-9a-f]{32}")
TOKEN_ID_PATTERN = re.compile(r"tok_[0-9a-f]{32}")
INVITATION_ID_PATTERN = re.compile(r"inv_[0-9a-f]{32}")


def new_secret(prefix: str = "") -> str:
    """``prefix`` + 43 URL-safe characters (32 random bytes)."""
    return prefix + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same_secret(first: str, second: str) -> bool:
    """Constant-time comparison, so response timing says nothing about a secret."""
    return hmac.compare_digest(first.encode(), second.encode())


def display_prefix(token: str) -> str:
    """Enough of a token to recognise it in a list, far too little to use it."""
    return token[: len(API_TOKEN_PREFIX) + 6]

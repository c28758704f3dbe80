"""Password hashing with Argon2id (memory-hard), and a constant-effort check for unknown users.

The parameters are argon2-cffi's defaults (RFC 9106 "low memory" profile: 64 MiB, 3 passes,
4 lanes). Hashes made with older parameters are upgraded at the next successful login.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()
_dummy_hash: str | None = None


def hasher() -> PasswordHasher:
    return _hasher


def use_hasher(new: PasswordHasher) -> PasswordHasher:
    """Swap the hasher (tests use cheaper parameters); returns the previous one."""
    global _hasher, _dummy_hash
    previous, _hasher, _dummy_hash = _hasher, new, None
    return previous


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def burn_equivalent_time(password: str) -> None:
    """Do the work of a real verification when the email is unknown, so the response time
    does not reveal whether an account exists."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("not a real password, only here to spend time")
    verify_password(_dummy_hash, password)

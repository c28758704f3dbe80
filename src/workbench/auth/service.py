"""Identity rules: accounts, login, sessions and API tokens. No HTTP here.

Login failures all read the same (``GENERIC_LOGIN_FAILURE``) and cost the same (an unknown
email still runs a password verification), so neither the text nor the timing says whether
an account exists.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import apsw

from workbench.auth import credentials, passwords
from workbench.auth import store as auth_store
from workbench.auth.audit_trail import record
from workbench.auth.models import NewSession, Principal, User, UserRecord
from workbench.auth.ratelimit import (
    LOGIN_FAILURES_PER_ACCOUNT,
    LOGIN_PER_ADDRESS,
    SIGNUP_PER_ADDRESS,
    RateLimiter,
)
from workbench.clock import isoformat
from workbench.errors import (
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
)
from workbench.ids import new_id
from workbench.runtime import Runtime

log = logging.getLogger(__name__)

SESSION_LIFETIME = timedelta(days=14)
TOKEN_TOUCH_INTERVAL = timedelta(minutes=5)
GENERIC_LOGIN_FAILURE = "Invalid email or password."
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def normalize_email(raw: str) -> str:
    email = raw.strip().lower()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise Unprocessable("not a valid email address")
    return email


def check_password_policy(password: str) -> None:
    if not 8 <= len(password) <= 256:
        raise Unprocessable("a password must be 8 to 256 characters")
    if not password.strip():
        raise Unprocessable("a password cannot be only spaces")


# -- accounts ---------------------------------------------------------------------------------


def create_user(runtime: Runtime, email: str, password: str, *, actor: str | None = None) -> User:
    """Create an account; ``Conflict`` when the email is taken."""
    email = normalize_email(email)
    check_password_policy(password)
    password_hash = passwords.hash_password(password)  # slow: outside the write lock
    now = isoformat(runtime.clock.now())
    user = UserRecord(
        id=new_id("usr"),
        email=email,
        password_hash=password_hash,
        created_at=now,
        updated_at=now,
    )
    with runtime.storage.control.write() as conn:
        if auth_store.user_by_email(conn, email) is not None:
            raise Conflict("an account with this email already exists")
        auth_store.insert_user(conn, user)
        record(conn, runtime, "user.created", actor=actor or user.id, target=user.id)
    return user.public()


def get_user(runtime: Runtime, user_id: str) -> User:
    with runtime.storage.control.read() as conn:
        user = auth_store.user_by_id(conn, user_id)
    if user is None:
        raise Unauthorized("the account no longer exists")
    return user.public()


def find_user(runtime: Runtime, email: str) -> User:
    """The account for an email (operators' tools); ``NotFound`` when there is none."""
    with runtime.storage.control.read() as conn:
        user = auth_store.user_by_email(conn, normalize_email(email))
    if user is None:
        raise NotFound(f"no user with email {email.strip().lower()}")
    return user.public()


def signup(
    runtime: Runtime, limiter: RateLimiter, email: str, password: str, *, address: str
) -> NewSession:
    if not runtime.settings.signup_enabled:
        raise Forbidden("sign-up is disabled on this server; ask an operator for an account")
    limiter.take(SIGNUP_PER_ADDRESS, address)
    user = create_user(runtime, email, password)
    with runtime.storage.control.write() as conn:
        return _open_session(conn, runtime, user, address=address, action="auth.signup")


def login(
    runtime: Runtime, limiter: RateLimiter, email: str, password: str, *, address: str
) -> NewSession:
    """Check credentials and open a session; ``Unauthorized`` with one text for every failure."""
    account_key = email.strip().lower()[:254]
    limiter.take(LOGIN_PER_ADDRESS, address)
    try:
        # Counted before the password is checked, so parallel guesses cannot all slip in
        # under the limit; a success clears the count.
        limiter.take(LOGIN_FAILURES_PER_ACCOUNT, account_key)
    except TooManyRequests:
        # Logged, not audited: a flood of refused attempts must not grow the audit chain.
        log.warning("login refused by rate limit", extra={"address": address})
        raise
    with runtime.storage.control.read() as conn:
        user = auth_store.user_by_email(conn, account_key)
    if user is None:
        passwords.burn_equivalent_time(password)
        ok = False
    else:
        ok = passwords.verify_password(user.password_hash, password)
    if user is None or not ok:
        with runtime.storage.control.write() as conn:
            record(
                conn,
                runtime,
                "auth.login_failed",
                actor=None,
                target=user.id if user else None,
                details={"email": account_key, "address": address},
            )
        raise Unauthorized(GENERIC_LOGIN_FAILURE)
    limiter.reset(LOGIN_FAILURES_PER_ACCOUNT, account_key)
    new_hash = (
        passwords.hash_password(password) if passwords.needs_rehash(user.password_hash) else None
    )
    with runtime.storage.control.write() as conn:
        if new_hash:
            auth_store.set_password_hash(conn, user.id, new_hash, isoformat(runtime.clock.now()))
        return _open_session(conn, runtime, user.public(), address=address, action="auth.login")


def _open_session(
    conn: apsw.Connection, runtime: Runtime, user: User, *, address: str, action: str
) -> NewSession:
    now = runtime.clock.now()
    token, csrf = credentials.new_secret(), credentials.new_secret()
    session = NewSession(
        id=new_id("ses"),
        user=user,
        token=token,
        csrf_token=csrf,
        expires_at=isoformat(now + SESSION_LIFETIME),
    )
    auth_store.insert_session(
        conn,
        session_id=session.id,
        token_hash=credentials.hash_secret(token),
        csrf_hash=credentials.hash_secret(csrf),
        user_id=user.id,
        created_at=isoformat(now),
        expires_at=session.expires_at,
    )
    record(
        conn,
        runtime,
        action,
        actor=user.id,
        target=user.id,
        details={"session_id": session.id, "address": address},
    )
    return session


def logout(runtime: Runtime, principal: Principal, session_id: str) -> None:
    with runtime.storage.control.write() as conn:
        auth_store.revoke_session(conn, session_id, isoformat(runtime.clock.now()))
        record(
            conn,
            runtime,
            "auth.logout",
            actor=principal.user_id,
            target=principal.user_id,
            details={"session_id": session_id},
        )


def change_password(
    runtime: Runtime,
    limiter: RateLimiter,
    principal: Principal,
    current: str,
    new: str,
    *,
    session_id: str | None,
) -> int:
    """Change the password and sign out every other session; returns how many were ended."""
    limiter.check(LOGIN_FAILURES_PER_ACCOUNT, principal.email)
    with runtime.storage.control.read() as conn:
        user = auth_store.user_by_id(conn, principal.user_id)
    if user is None or not passwords.verify_password(user.password_hash, current):
        limiter.hit(LOGIN_FAILURES_PER_ACCOUNT, principal.email)
        raise Forbidden("the current password is not right")
    check_password_policy(new)
    new_hash = passwords.hash_password(new)
    now = isoformat(runtime.clock.now())
    with runtime.storage.control.write() as conn:
        auth_store.set_password_hash(conn, user.id, new_hash, now)
        ended = auth_store.revoke_user_sessions(conn, user.id, now, keep=session_id)
        record(
            conn,
            runtime,
            "user.password_changed",
            actor=user.id,
            target=user.id,
            details={"sessions_ended": ended},
        )
    return ended


def prune_sessions(runtime: Runtime, *, older_than: timedelta = timedelta(days=30)) -> int:
    """Delete sessions that expired or were revoked more than ``older_than`` ago."""
    before = isoformat(runtime.clock.now() - older_than)
    with runtime.storage.control.write() as conn:
        return auth_store.delete_dead_sessions(conn, before)


# -- authenticating requests ------------------------------------------------------------------


@dataclass(frozen=True)
class SessionAuth:
    principal: Principal
    session_id: str
    csrf_hash: str


def authenticate_session(runtime: Runtime, cookie: str) -> SessionAuth:
    if not credentials.SESSION_PATTERN.fullmatch(cookie):
        raise Unauthorized("the session cookie is malformed; sign in again")
    with runtime.storage.control.read() as conn:
        row = auth_store.session_with_user(conn, credentials.hash_secret(cookie))
    if row is None or row["revoked_at"] is not None:
        raise Unauthorized("signed out: sign in again")
    if _expired(row["expires_at"], runtime.clock.now()):
        raise Unauthorized("the session has expired; sign in again")
    principal = Principal(user_id=row["user_id"], email=row["email"], via="session")
    return SessionAuth(principal=principal, session_id=row["id"], csrf_hash=row["csrf_hash"])


@dataclass(frozen=True)
class TokenAuth:
    principal: Principal
    """Bound to the token's workspace; the role is resolved later, from the membership."""
    role_ceiling: str | None


def authenticate_bearer(runtime: Runtime, authorization: str) -> TokenAuth:
    """Check an ``Authorization: Bearer wb_...`` header against the stored token hashes."""
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not credentials.API_TOKEN_PATTERN.fullmatch(value):
        raise Unauthorized("malformed Authorization header: expected 'Bearer wb_...'")
    now = runtime.clock.now()
    with runtime.storage.control.read() as conn:
        row = auth_store.token_with_user(conn, credentials.hash_secret(value))
    if row is None:
        raise Unauthorized("the API token is not valid")
    if row["revoked_at"] is not None:
        raise Unauthorized("the API token has been revoked")
    if row["expires_at"] is not None and _expired(row["expires_at"], now):
        raise Unauthorized("the API token has expired")
    last_used = row["last_used_at"]
    if last_used is None or _expired(last_used, now - TOKEN_TOUCH_INTERVAL):
        with runtime.storage.control.write() as conn:
            auth_store.touch_token(conn, row["id"], isoformat(now))
    principal = Principal(
        user_id=row["user_id"],
        email=row["email"],
        workspace_id=row["workspace_id"],
        token_id=row["id"],
        via="token",
    )
    return TokenAuth(principal=principal, role_ceiling=row["role_ceiling"])


def _expired(stamp: str, now: datetime) -> bool:
    """Stored stamps share one fixed-width UTC format, so text order is time order."""
    return stamp <= isoformat(now)

"""Sliding-window rate limits for login, sign-up and token creation, on the injected clock.

Each limit counts events per key (a client address or an account) within a window. The
state is in memory, per process: a restart forgets it, which is acceptable for abuse limits
(credentials, sessions and tokens themselves are never memory-only).
"""

from __future__ import annotations

import math
import threading
import weakref
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from workbench.clock import Clock
from workbench.errors import TooManyRequests

if TYPE_CHECKING:
    from workbench.runtime import Runtime


@dataclass(frozen=True)
class Limit:
    name: str
    max_events: int
    window: timedelta


LOGIN_PER_ADDRESS = Limit("login per address", 30, timedelta(minutes=10))
LOGIN_FAILURES_PER_ACCOUNT = Limit("failed logins per account", 10, timedelta(minutes=15))
SIGNUP_PER_ADDRESS = Limit("sign-ups per address", 10, timedelta(hours=1))
TOKENS_PER_ADDRESS = Limit("token creation per address", 60, timedelta(hours=1))
TOKENS_PER_ACCOUNT = Limit("token creation per account", 20, timedelta(hours=1))
INVITATION_ACCEPT_PER_ADDRESS = Limit("invitation attempts per address", 30, timedelta(hours=1))


class RateLimiter:
    """Timestamps of recent events per (limit, key); old ones fall out of the window."""

    def __init__(self, clock: Clock, max_keys: int = 100_000) -> None:
        self.clock = clock
        self.max_keys = max_keys
        self._events: dict[tuple[str, str], deque[datetime]] = {}
        self._lock = threading.Lock()

    def check(self, limit: Limit, key: str) -> None:
        """Raise ``TooManyRequests`` (with ``retry_after`` seconds) when ``key`` is at its
        limit. Does not count an event."""
        now = self.clock.now()
        with self._lock:
            events = self._trimmed(limit, key, now)
            if len(events) >= limit.max_events:
                self._refuse(limit, events, now)

    @staticmethod
    def _refuse(limit: Limit, events: deque[datetime], now: datetime) -> None:
        retry = max(1, math.ceil((events[0] + limit.window - now).total_seconds()))
        raise TooManyRequests(
            f"too many attempts ({limit.name}); try again in {retry} seconds",
            retry_after=retry,
        )

    def hit(self, limit: Limit, key: str) -> None:
        """Count one event for ``key``."""
        now = self.clock.now()
        with self._lock:
            if len(self._events) >= self.max_keys:
                self._forget_idle(now)
            self._trimmed(limit, key, now).append(now)

    def take(self, limit: Limit, key: str) -> None:
        """Check and count in one step (under one lock, so concurrent callers cannot all pass
        the check before any of them counts): the usual gate in front of an action."""
        now = self.clock.now()
        with self._lock:
            events = self._trimmed(limit, key, now)
            if len(events) >= limit.max_events:
                self._refuse(limit, events, now)
            if len(self._events) >= self.max_keys:
                self._forget_idle(now)
                events = self._trimmed(limit, key, now)
            events.append(now)

    def reset(self, limit: Limit, key: str) -> None:
        with self._lock:
            self._events.pop((limit.name, key), None)

    def _trimmed(self, limit: Limit, key: str, now: datetime) -> deque[datetime]:
        events = self._events.setdefault((limit.name, key), deque())
        while events and events[0] <= now - limit.window:
            events.popleft()
        return events

    def _forget_idle(self, now: datetime) -> None:
        """Bound memory under a flood of distinct keys: drop keys idle for a day."""
        horizon = now - timedelta(days=1)
        for key in [k for k, v in self._events.items() if not v or v[-1] <= horizon]:
            del self._events[key]
        if len(self._events) >= self.max_keys:
            self._events.clear()


_limiters: weakref.WeakKeyDictionary[Runtime, RateLimiter] = weakref.WeakKeyDictionary()
_limiters_lock = threading.Lock()


def limiter_for(runtime: Runtime) -> RateLimiter:
    """The one limiter of a runtime (one process), on the runtime's clock."""
    with _limiters_lock:
        limiter = _limiters.get(runtime)
        if limiter is None:
            limiter = _limiters[runtime] = RateLimiter(runtime.clock)
        return limiter

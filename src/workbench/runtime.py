"""The runtime: settings, storage, plugins, events, migrations and jobs, wired once.

The HTTP app, the CLI and the worker each build one ``Runtime`` and pass it down; nothing in
Workbench reads global state.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from functools import cached_property
from itertools import chain
from typing import Any

import pluggy
from huey import Huey

from workbench.clock import Clock, SystemClock
from workbench.config import Settings
from workbench.db.database import Storage
from workbench.db.migrations import Migrator
from workbench.events.dispatch import Dispatcher
from workbench.events.envelope import EventRegistry
from workbench.events.outbox import take_pending
from workbench.plugins import get_plugin_manager

log = logging.getLogger(__name__)


def collect(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> list[Any]:
    """Call a list-returning hook on every plugin and join the lists (None counts as empty)."""
    return list(chain.from_iterable(r for r in getattr(pm.hook, hook)(**kwargs) if r))


class DispatchNotifier:
    """Turns "events were committed in workspace W" into queued dispatch jobs, off the
    request thread and coalesced: a burst of commits in one workspace within ``delay``
    becomes one job. Each job is queued after the commits it covers, and a dispatch reads
    the outbox when it runs, so no event waits for the minute sweep."""

    def __init__(self, enqueue: Callable[[str], None], delay: float = 0.02) -> None:
        self._enqueue = enqueue
        self._delay = delay
        self._pending: set[str] = set()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False

    def notify(self, workspace_ids: set[str]) -> None:
        with self._wake:
            self._pending |= workspace_ids
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="dispatch-notifier", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closing:
                    self._wake.wait()
                if not self._pending:
                    return
            time.sleep(self._delay)  # let the rest of a burst arrive
            with self._wake:
                batch, self._pending = self._pending, set()
            for workspace_id in sorted(batch):
                try:
                    self._enqueue(workspace_id)
                except Exception:  # the minute sweep will catch up
                    log.exception(
                        "could not queue event dispatch", extra={"workspace_id": workspace_id}
                    )

    def close(self) -> None:
        """Queue what is pending, then stop."""
        with self._wake:
            self._closing = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)


class NotInitialized(Exception):
    """The data directory has not been set up with ``workbench init``."""


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        pm: pluggy.PluginManager | None = None,
        immediate_jobs: bool = False,
        dispatch_on_commit: bool = True,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.pm = pm or get_plugin_manager(settings.plugins_dir or None)
        self.dispatch_on_commit = dispatch_on_commit
        self.storage = Storage(
            settings,
            on_workspace_commit=self._after_workspace_commit,
            on_workspace_rollback=self._after_workspace_rollback,
        )
        self.events = EventRegistry()
        for event_type in collect(self.pm, "workbench_event_types"):
            self.events.register(event_type)
        self.migrator = Migrator(self.storage, collect(self.pm, "workbench_migrations"))
        self.immediate_jobs = immediate_jobs

    @cached_property
    def dispatcher(self) -> Dispatcher:
        subscribers = collect(self.pm, "workbench_event_subscribers", runtime=self)
        return Dispatcher(subscribers, clock=self.clock)

    @cached_property
    def huey(self) -> Huey:
        from workbench.jobs import build_huey

        return build_huey(self, immediate=self.immediate_jobs)

    def _after_workspace_commit(self, workspace_id: str) -> None:
        """Events committed: hand them to the dispatcher now rather than at the next sweep."""
        pending = take_pending()
        if not (pending and self.dispatch_on_commit):
            return
        if self.immediate_jobs:
            for pending_id in pending:
                self._enqueue_dispatch(pending_id)
        else:
            self.dispatch_notifier.notify(pending)

    def _enqueue_dispatch(self, workspace_id: str) -> None:
        from workbench.jobs import enqueue

        enqueue(self.huey, "events.dispatch_workspace", workspace_id)

    @cached_property
    def dispatch_notifier(self) -> DispatchNotifier:
        return DispatchNotifier(self._enqueue_dispatch)

    def _after_workspace_rollback(self, workspace_id: str) -> None:
        take_pending()  # the events of a rolled-back transaction never happened

    # -- set-up --------------------------------------------------------------------------

    def initialize(self) -> list[str]:
        """Create the data directory, the secret key (mode 0600) and the control file, and
        bring the control file up to date. Safe to run again; returns what it created."""
        created = []
        self.settings.workspaces_path.mkdir(parents=True, exist_ok=True)
        key_path = self.settings.secret_key_path
        if not key_path.exists():
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(base64.urlsafe_b64encode(secrets.token_bytes(32)) + b"\n")
            created.append(str(key_path))
        is_new = not self.settings.control_db_path.exists()
        reports = self.migrator.migrate_file("control", self.storage.control, "control")
        if reports.status in ("failed", "refused"):
            raise RuntimeError(f"control database: {reports.error}")
        if is_new:
            created.append(str(self.settings.control_db_path))
        return created

    def secret_key(self) -> bytes:
        path = self.settings.secret_key_path
        if not path.exists():
            raise NotInitialized(f"no secret key at {path}: run 'workbench init'")
        return base64.urlsafe_b64decode(path.read_bytes().strip())

    def startup(self) -> None:
        self.pm.hook.workbench_startup(runtime=self)

    def close(self) -> None:
        if "dispatch_notifier" in self.__dict__:
            self.dispatch_notifier.close()
        self.storage.close()

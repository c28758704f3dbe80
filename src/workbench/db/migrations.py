"""Numbered SQL migrations with an up and a down part, checksummed, one transaction per file.

A migration file is ``NNNN_name.sql``::

    -- migrate:up
    CREATE TABLE things (...);
    -- migrate:down
    DROP TABLE things;

Sources: the core ships ``migrations/control`` and ``migrations/workspace``; plugins add their
own through the ``workbench_migrations`` hook. Each source has its own version sequence.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import apsw

from workbench.db.connection import open_connection, rows, schema_snapshot
from workbench.db.database import Database, Storage
from workbench.db.tenancy import install_tenant_guards

Target = Literal["control", "workspace"]
CORE = "core"
LEDGER = "_workbench_migrations"
_FILENAME = re.compile(r"(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql")
_UP = re.compile(r"^--\s*migrate:up\s*$", re.MULTILINE)
_DOWN = re.compile(r"^--\s*migrate:down\s*$", re.MULTILINE)


class MigrationError(Exception):
    """A migration cannot be read, planned or applied."""


class ChecksumDrift(MigrationError):
    """An applied migration file was changed afterwards."""


@dataclass(frozen=True)
class MigrationSource:
    """A directory of migrations for one kind of file, owned by the core or a plugin."""

    name: str
    target: Target
    directory: Path


@dataclass(frozen=True)
class Migration:
    source: str
    version: int
    name: str
    up: str
    down: str
    checksum: str

    @property
    def label(self) -> str:
        return f"{self.source}:{self.version:04d}_{self.name}"


@dataclass
class FileReport:
    """What happened to one database file."""

    label: str
    before: dict[str, int]
    after: dict[str, int]
    applied: list[str] = field(default_factory=list)
    status: Literal["ok", "unchanged", "failed", "refused"] = "unchanged"
    error: str = ""
    seconds: float = 0.0


def core_migrations_root() -> Path:
    """Installed wheels carry ``workbench/_migrations``; a source checkout has ``migrations/``."""
    packaged = Path(__file__).resolve().parent.parent / "_migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "migrations"


def core_sources() -> list[MigrationSource]:
    root = core_migrations_root()
    return [
        MigrationSource(CORE, "control", root / "control"),
        MigrationSource(CORE, "workspace", root / "workspace"),
    ]


def load_source(source: MigrationSource) -> list[Migration]:
    """Read and parse every migration of a source, in version order."""
    if not source.directory.is_dir():
        raise MigrationError(f"migration directory missing: {source.directory}")
    found: list[Migration] = []
    for path in sorted(source.directory.glob("*.sql")):
        match = _FILENAME.fullmatch(path.name)
        if not match:
            raise MigrationError(f"bad migration file name {path.name!r}: want NNNN_name.sql")
        text = path.read_text()
        up_at, down_at = _UP.search(text), _DOWN.search(text)
        if not up_at or not down_at or down_at.start() < up_at.end():
            raise MigrationError(
                f"{path}: needs a '-- migrate:up' part followed by a '-- migrate:down' part"
            )
        found.append(
            Migration(
                source=source.name,
                version=int(match["version"]),
                name=match["name"],
                up=text[up_at.end() : down_at.start()].strip(),
                down=text[down_at.end() :].strip(),
                checksum=hashlib.sha256(text.encode()).hexdigest(),
            )
        )
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"{source.directory}: versions must run 1, 2, 3... without gaps")
    return found


def ensure_ledger(conn: apsw.Connection) -> None:
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {LEDGER} ("
        " source TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,"
        " checksum TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT"
        " (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),"
        " PRIMARY KEY (source, version)) STRICT"
    )


def applied(conn: apsw.Connection) -> dict[tuple[str, int], str]:
    """Applied (source, version) -> checksum; empty for a file never migrated."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (LEDGER,)
    ).fetchone()
    if not exists:
        return {}
    return {
        (r["source"], r["version"]): r["checksum"]
        for r in rows(conn, f"SELECT source, version, checksum FROM {LEDGER}")
    }


def versions(done: dict[tuple[str, int], str]) -> dict[str, int]:
    current: dict[str, int] = {}
    for source, version in done:
        current[source] = max(current.get(source, 0), version)
    return current


class Migrator:
    """Plans and applies migrations to the control file and every workspace file."""

    def __init__(self, storage: Storage, sources: Sequence[MigrationSource]) -> None:
        self.storage = storage
        self.by_target: dict[str, dict[str, list[Migration]]] = {"control": {}, "workspace": {}}
        for source in sorted(sources, key=lambda s: (s.name != CORE, s.name)):
            self.by_target[source.target][source.name] = load_source(source)

    # -- planning ---------------------------------------------------------------------------

    def check_drift(self, target: Target, done: dict[tuple[str, int], str]) -> None:
        """Refuse a file whose applied migrations no longer match the files on disk."""
        known = {(m.source, m.version): m for ms in self.by_target[target].values() for m in ms}
        for key, checksum in sorted(done.items()):
            migration = known.get(key)
            if migration is None:
                raise ChecksumDrift(
                    f"migration {key[0]}:{key[1]:04d} is applied but its file is missing"
                )
            if migration.checksum != checksum:
                raise ChecksumDrift(
                    f"checksum drift: {migration.label} was changed after it was applied "
                    f"(recorded {checksum[:12]}, file {migration.checksum[:12]}); "
                    "write a new migration instead of editing an applied one"
                )

    def pending(
        self, target: Target, done: dict[tuple[str, int], str], to: int | None = None
    ) -> list[Migration]:
        plan = []
        for source, migrations in self.by_target[target].items():
            for m in migrations:
                limit = to if (to is not None and source == CORE) else None
                if (source, m.version) not in done and (limit is None or m.version <= limit):
                    plan.append(m)
        return plan

    def latest(self, target: Target) -> dict[str, int]:
        return {src: len(ms) for src, ms in self.by_target[target].items()}

    def is_current(self, target: Target, conn: apsw.Connection) -> bool:
        done = applied(conn)
        try:
            self.check_drift(target, done)
        except ChecksumDrift:
            return False
        return not self.pending(target, done)

    # -- applying ---------------------------------------------------------------------------

    def _apply_to_connection(
        self, conn: apsw.Connection, target: Target, plan: Iterable[Migration]
    ) -> list[str]:
        ensure_ledger(conn)
        labels = []
        for m in plan:
            try:
                conn.execute(m.up)
            except apsw.Error as exc:
                raise MigrationError(f"{m.label} failed: {exc}") from exc
            conn.execute(
                f"INSERT INTO {LEDGER} (source, version, name, checksum) VALUES (?, ?, ?, ?)",
                (m.source, m.version, m.name, m.checksum),
            )
            labels.append(m.label)
        if target == "workspace":
            install_tenant_guards(conn)
        return labels

    def _revert_on_connection(
        self, conn: apsw.Connection, target: Target, source: str, to: int
    ) -> list[str]:
        done = applied(conn)
        migrations = {m.version: m for m in self.by_target[target].get(source, [])}
        labels = []
        for src, version in sorted(done, key=lambda k: -k[1]):
            if src != source or version <= to:
                continue
            m = migrations[version]
            try:
                conn.execute(m.down)
            except apsw.Error as exc:
                raise MigrationError(f"{m.label} down failed: {exc}") from exc
            conn.execute(f"DELETE FROM {LEDGER} WHERE source = ? AND version = ?", (src, version))
            labels.append(m.label + " (down)")
        if target == "workspace":
            install_tenant_guards(conn)
        return labels

    def _run_on_file(
        self,
        label: str,
        db: Database,
        target: Target,
        action: Callable[[apsw.Connection, dict[tuple[str, int], str]], list[str]],
        *,
        commit: bool = True,
    ) -> FileReport:
        started = time.perf_counter()
        report = FileReport(label=label, before={}, after={})
        try:
            with db.write() as conn:
                done = applied(conn)
                report.before = versions(done)
                self.check_drift(target, done)
                report.applied = action(conn, done)
                report.after = versions(applied(conn))
                if not commit:
                    raise _Rollback
        except _Rollback:
            pass
        except ChecksumDrift as exc:
            report.status, report.error = "refused", str(exc)
        except (MigrationError, apsw.Error) as exc:
            report.status, report.error = "failed", str(exc)
            report.after = report.before
        report.seconds = time.perf_counter() - started
        if report.status == "unchanged" and report.applied:
            report.status = "ok"
        return report

    def _targets(
        self, workspace: str | None = None, target: Target | None = None
    ) -> Iterable[tuple[str, Database, Target]]:
        if workspace is not None:
            yield workspace, self.storage.workspace(workspace), "workspace"
            return
        if target in (None, "control"):
            yield "control", self.storage.control, "control"
        if target in (None, "workspace"):
            for workspace_id in self.storage.workspace_ids_on_disk():
                yield workspace_id, self.storage.workspace(workspace_id), "workspace"

    @staticmethod
    def _check_to(to: int | None, target: Target | None, workspace: str | None) -> None:
        if to is not None and target is None and workspace is None:
            raise MigrationError(
                "--to needs --target control or --target workspace: "
                "the two kinds of file have separate version sequences"
            )

    def count_files(self, workspace: str | None = None, target: Target | None = None) -> int:
        if workspace is not None:
            return 1
        workspaces = len(self.storage.workspace_ids_on_disk())
        return {None: 1 + workspaces, "control": 1, "workspace": workspaces}[target]

    def up(
        self,
        to: int | None = None,
        *,
        dry_run: bool = False,
        workspace: str | None = None,
        target: Target | None = None,
        progress: Callable[[FileReport], None] | None = None,
    ) -> list[FileReport]:
        """Apply pending migrations to every file (or one workspace, or one kind of file),
        one transaction each."""
        self._check_to(to, target, workspace)
        reports = []
        for label, db, kind in self._targets(workspace, target):
            report = self.migrate_file(label, db, kind, to=to, dry_run=dry_run)
            reports.append(report)
            if progress:
                progress(report)
        return reports

    def migrate_file(
        self,
        label: str,
        db: Database,
        target: Target,
        *,
        to: int | None = None,
        dry_run: bool = False,
    ) -> FileReport:
        def action(conn: apsw.Connection, done: dict[tuple[str, int], str]) -> list[str]:
            return self._apply_to_connection(conn, target, self.pending(target, done, to))

        return self._run_on_file(label, db, target, action, commit=not dry_run)

    def down(
        self,
        to: int,
        *,
        source: str = CORE,
        workspace: str | None = None,
        target: Target | None = None,
        dry_run: bool = False,
        progress: Callable[[FileReport], None] | None = None,
    ) -> list[FileReport]:
        """Roll files back to version ``to`` of ``source``: every file of ``target``, or one
        workspace. ``to=0`` with no target rolls back everything."""
        if to < 0:
            raise MigrationError("--to must be 0 or more")
        if to > 0:
            self._check_to(to, target, workspace)
        reports = []
        for label, db, kind in self._targets(workspace, target):
            if source not in self.by_target[kind]:
                continue

            def action(
                conn: apsw.Connection, done: dict[tuple[str, int], str], kind: Target = kind
            ) -> list[str]:
                return self._revert_on_connection(conn, kind, source, to)

            report = self._run_on_file(label, db, kind, action, commit=not dry_run)
            reports.append(report)
            if progress:
                progress(report)
        return reports

    def status(self) -> list[dict[str, object]]:
        """Per file: applied versions, latest available, pending count and drift."""
        out: list[dict[str, object]] = []
        for label, db, target in self._targets():
            with db.read() as conn:
                done = applied(conn)
            drift = ""
            try:
                self.check_drift(target, done)
            except ChecksumDrift as exc:
                drift = str(exc)
            out.append(
                {
                    "file": label,
                    "target": target,
                    "current": versions(done),
                    "latest": self.latest(target),
                    "pending": [m.label for m in self.pending(target, done)],
                    "drift": drift,
                }
            )
        return out

    def rehearse(
        self, *, limit: int | None = None, progress: Callable[[FileReport], None] | None = None
    ) -> list[FileReport]:
        """On copies of the files: apply pending, roll back, apply again, compare schemas.

        The real files are never written. A file passes when the rollback restores its
        original schema exactly and the second up produces the same schema as the first.
        """
        reports = []
        scratch = Path(tempfile.mkdtemp(prefix="workbench-rehearse-"))
        try:
            targets = list(self._targets())
            if limit is not None:
                targets = targets[: limit + 1]
            for label, db, target in targets:
                report = self._rehearse_file(label, db, target, scratch)
                reports.append(report)
                if progress:
                    progress(report)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return reports

    def _rehearse_file(self, label: str, db: Database, target: Target, scratch: Path) -> FileReport:
        started = time.perf_counter()
        copy_path = scratch / f"{label}.db"
        with db.read() as source_conn:
            copy = open_connection(copy_path, db.options)
            with copy.backup("main", source_conn, "main") as backup:
                backup.step()
        report = FileReport(label=label, before={}, after={})
        try:
            done = applied(copy)
            report.before = versions(done)
            self.check_drift(target, done)
            plan = self.pending(target, done)
            if not plan:
                # Nothing pending: rehearse the latest migration of each source instead.
                with copy:
                    for source, version in report.before.items():
                        self._revert_on_connection(copy, target, source, version - 1)
                done = applied(copy)
                plan = self.pending(target, done)
            floors = versions(done)
            original = schema_snapshot(copy)
            with copy:
                report.applied = self._apply_to_connection(copy, target, plan)
            first_up = schema_snapshot(copy)
            with copy:
                for source in {m.source for m in plan}:
                    self._revert_on_connection(copy, target, source, floors.get(source, 0))
            if schema_snapshot(copy) != original:
                raise MigrationError("rolling back did not restore the original schema")
            with copy:
                self._apply_to_connection(copy, target, self.pending(target, applied(copy)))
            if schema_snapshot(copy) != first_up:
                raise MigrationError("applying again gave a different schema than the first time")
            report.after = versions(applied(copy))
            report.status = "ok"
        except ChecksumDrift as exc:
            report.status, report.error = "refused", str(exc)
        except (MigrationError, apsw.Error) as exc:
            report.status, report.error = "failed", str(exc)
        finally:
            copy.close()
        report.seconds = time.perf_counter() - started
        return report


class _Rollback(Exception):
    """Raised inside a transaction to undo it on purpose (dry runs)."""

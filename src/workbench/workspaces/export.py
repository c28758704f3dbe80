"""Exporting a workspace file: a consistent copy with SQLite's backup API, verified.

The copy goes to ``<data_dir>/exports/<workspace_id>-<timestamp>.db`` (mode 0600, in a 0700
directory), as one self-contained file (rollback journal, not WAL). It must open, pass
``PRAGMA integrity_check`` and record its own workspace id, or it is removed and
``ExportFailed`` raised. Deleting a workspace depends on this.
"""

from __future__ import annotations

import os
from pathlib import Path

import apsw

from workbench.db.connection import open_connection
from workbench.db.database import recorded_workspace_id
from workbench.errors import NotFound, WorkbenchError
from workbench.ids import validate_workspace_id
from workbench.runtime import Runtime


class ExportFailed(WorkbenchError):
    """The export taken before a deletion did not verify; nothing was deleted."""

    title = "Export failed"
    type_slug = "export-failed"


def export_workspace(runtime: Runtime, workspace_id: str) -> Path:
    """Copy a workspace file with the backup API into ``exports/`` and verify the copy."""
    workspace_id = validate_workspace_id(workspace_id)
    source_path = runtime.storage.workspace_path(workspace_id)
    if not source_path.is_file():
        raise NotFound("workspace not found")
    exports = runtime.settings.data_path / "exports"
    exports.mkdir(mode=0o700, exist_ok=True)
    stamp = runtime.clock.now().strftime("%Y%m%dT%H%M%S%fZ")
    target = exports / f"{workspace_id}-{stamp}.db"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        source = open_connection(
            source_path, runtime.storage.options, query_only=True, create=False
        )
        try:
            copy = apsw.Connection(str(target))
            try:
                with copy.backup("main", source, "main") as backup:
                    backup.step()
                copy.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
            finally:
                copy.close()
        finally:
            source.close()
        _verify_export(target, workspace_id)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target


def _verify_export(path: Path, workspace_id: str) -> None:
    check = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        result = [row[0] for row in check.execute("PRAGMA integrity_check")]
        if result != ["ok"]:
            raise ExportFailed(f"export of {workspace_id} failed its integrity check: {result}")
        if recorded_workspace_id(check) != workspace_id:
            raise ExportFailed(f"export of {workspace_id} does not record its workspace id")
    finally:
        check.close()

"""The third wall of tenant isolation: triggers that reject a foreign ``workspace_id``.

Every workspace file records its own id in ``_workbench_meta``. After each migration run, every
table that has a ``workspace_id`` column gets an insert and an update trigger that abort when
the row's ``workspace_id`` is not the file's own. Plugin tables are covered the same way.
"""

from __future__ import annotations

import apsw

from workbench.db.database import META_TABLE

GUARD_PREFIX = "tenant_guard_"


def tenant_tables(conn: apsw.Connection) -> list[str]:
    # table_list types virtual tables (FTS5, vec0) and their shadow tables apart: they
    # cannot carry triggers, and their rows are derived from a guarded table.
    tables = sorted(
        name
        for (schema, name, kind) in conn.execute("SELECT schema, name, type FROM pragma_table_list")
        if schema == "main" and kind == "table" and not name.startswith("sqlite_")
    )
    return [
        t
        for t in tables
        if any(col[1] == "workspace_id" for col in conn.execute(f'PRAGMA table_info("{t}")'))
    ]


def install_tenant_guards(conn: apsw.Connection) -> None:
    """Create the guard triggers for every tenant table that lacks them (idempotent)."""
    for table in tenant_tables(conn):
        for event in ("INSERT", "UPDATE OF workspace_id"):
            suffix = "insert" if event == "INSERT" else "update"
            conn.execute(
                f'CREATE TRIGGER IF NOT EXISTS "{GUARD_PREFIX}{table}_{suffix}" '
                f'BEFORE {event} ON "{table}" '
                f"WHEN NEW.workspace_id IS NOT "
                f"(SELECT value FROM {META_TABLE} WHERE key = 'workspace_id') "
                f"BEGIN SELECT RAISE(ABORT, 'workspace_id does not belong to this workspace file'); "
                f"END"
            )

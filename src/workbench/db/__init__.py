"""SQLite storage on apsw: connections, the per-file writer, tenancy and migrations."""

from workbench.db.database import Database, Storage

__all__ = ["Database", "Storage"]

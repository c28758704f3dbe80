"""The core's migrations, contributed through the ``workbench_migrations`` hook."""

from __future__ import annotations

from workbench.db.migrations import MigrationSource, core_sources
from workbench.hookspecs import hookimpl


@hookimpl
def workbench_migrations() -> list[MigrationSource]:
    return core_sources()

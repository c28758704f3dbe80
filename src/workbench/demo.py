"""Seeds the demo data directory (``make demo``): a demo workspace, made once.

Runs offline with the embedded defaults. Safe to run again: it only adds what is missing.
"""

from __future__ import annotations

import sys

from workbench.config import load_settings
from workbench.runtime import Runtime
from workbench.workspaces.service import create_workspace, list_workspaces

DEMO_WORKSPACE = "Demo"


def seed(runtime: Runtime) -> str:
    """Create the demo workspace unless it exists; return its id."""
    runtime.initialize()
    for workspace in list_workspaces(runtime):
        if workspace.name == DEMO_WORKSPACE:
            return workspace.id
    return create_workspace(runtime, DEMO_WORKSPACE, actor="demo").id


def main() -> None:
    runtime = Runtime(load_settings())
    try:
        workspace_id = seed(runtime)
    finally:
        runtime.close()
    sys.stdout.write(f"demo workspace: {workspace_id}\n")


if __name__ == "__main__":
    main()

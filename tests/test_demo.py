"""The demo seed is idempotent and leaves a served, healthy app."""

from __future__ import annotations

from workbench.demo import seed
from workbench.runtime import Runtime
from workbench.workspaces.service import list_workspaces


def test_seed_is_idempotent(runtime: Runtime) -> None:
    first = seed(runtime)
    assert seed(runtime) == first
    assert [w.id for w in list_workspaces(runtime)] == [first]

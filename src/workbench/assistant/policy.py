"""Tool policy: may this run's starter use this tool, and does a person need to confirm?"""

from __future__ import annotations

from typing import Literal

from workbench.assistant.tools import Tool
from workbench.auth.permissions import has_permission

Decision = Literal["allow", "deny", "needs_approval"]


def decide(
    tool: Tool | None, name: str, role: str, approval_tools: list[str]
) -> tuple[Decision, str]:
    """The decision and its reason, recorded with the tool call and told to the model."""
    if tool is None:
        return "deny", f"there is no tool named {name!r}"
    if not has_permission(role, tool.permission):
        return "deny", (
            f"the person who started this run is a {role}, and {name} needs the "
            f"{tool.permission} permission"
        )
    if name in approval_tools:
        return "needs_approval", f"{name} needs a person's approval in this workspace"
    return "allow", "permitted by role"

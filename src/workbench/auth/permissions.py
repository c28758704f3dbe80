"""Roles and the permission matrix: the one place that says who may do what.

Every workspace route declares the permission it needs (``opt={"permission": ...}``) and the
app-level guard checks it against this matrix. ``docs/permissions.md`` is generated from here
(``python -m workbench.auth.permissions``); a test fails when the file is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final, Literal

Role = Literal["viewer", "member", "admin", "owner"]

ROLES: Final[tuple[Role, ...]] = ("viewer", "member", "admin", "owner")
"""Every role, weakest first: each role holds every permission of the roles before it."""

ROLE_DESCRIPTIONS: Final[dict[str, str]] = {
    "viewer": "Reads the workspace; changes nothing but their own API tokens.",
    "member": "Does the everyday work: items, views, knowledge, the assistant.",
    "admin": "Runs the workspace: people, automations, webhooks, audit; not billing or deletion.",
    "owner": "Everything, including billing, ownership and deleting the workspace.",
}

PERMISSIONS: Final[dict[str, str]] = {
    "workspace.read": "See the workspace, its name and status.",
    "workspace.manage": "Rename, archive and unarchive the workspace.",
    "workspace.delete": "Delete the workspace (after an export to the data directory).",
    "members.read": "List the members and their roles.",
    "members.manage": "Invite, remove and change the role of members; revoke their tokens.",
    "tokens.manage": "Create, list and revoke one's own API tokens for the workspace.",
    "audit.read": "Read the workspace audit log.",
    "items.read": "Read work items.",
    "items.write": "Create, change and move work items through their lifecycle.",
    "views.write": "Create and change one's own saved views.",
    "views.share": "Share saved views with the whole workspace.",
    "knowledge.read": "Search and read the knowledge base.",
    "knowledge.write": "Add, change and remove knowledge base documents.",
    "assistant.run": "Ask the assistant and read runs; its tools still need their own permissions.",
    "assistant.approve": "Approve assistant actions that need a human decision.",
    "automations.read": "See automations and their runs.",
    "automations.manage": "Create, change and delete automations.",
    "webhooks.manage": "Create, change and delete webhooks and their secrets.",
    "billing.read": "See the plan, invoices and usage.",
    "billing.manage": "Change the plan and payment details.",
}

# The weakest role that holds each permission. The matrix below is derived from this table,
# so a stronger role can never hold less than a weaker one.
_WEAKEST_ROLE: Final[dict[str, Role]] = {
    "workspace.read": "viewer",
    "workspace.manage": "admin",
    "workspace.delete": "owner",
    "members.read": "viewer",
    "members.manage": "admin",
    "tokens.manage": "viewer",
    "audit.read": "admin",
    "items.read": "viewer",
    "items.write": "member",
    "views.write": "member",
    "views.share": "admin",
    "knowledge.read": "viewer",
    "knowledge.write": "member",
    "assistant.run": "viewer",
    "assistant.approve": "admin",
    "automations.read": "viewer",
    "automations.manage": "admin",
    "webhooks.manage": "admin",
    "billing.read": "admin",
    "billing.manage": "owner",
}

BLOCKED_WHEN_ARCHIVED: Final[frozenset[str]] = frozenset(
    {
        "items.write",
        "views.write",
        "views.share",
        "knowledge.write",
        "assistant.run",
        "assistant.approve",
        "automations.manage",
        "webhooks.manage",
    }
)
"""Permissions that change a workspace's content, refused (409) while it is archived.
Administration (members, tokens, rename, unarchive, delete, billing) keeps working."""

MATRIX: Final[dict[str, frozenset[str]]] = {
    role: frozenset(perm for perm, weakest in _WEAKEST_ROLE.items() if ROLES.index(weakest) <= rank)
    for rank, role in enumerate(ROLES)
}

DOCS_PATH = Path("docs") / "permissions.md"


class UnknownPermission(Exception):
    """A permission or role name that the matrix does not define."""


def role_rank(role: str) -> int:
    """Position of a role in ``ROLES``: higher is stronger."""
    try:
        return ROLES.index(role)
    except ValueError:
        raise UnknownPermission(f"unknown role {role!r}; roles: {', '.join(ROLES)}") from None


def weaker_role(first: str, second: str | None) -> str:
    """The weaker of two roles (``second`` may be None, meaning no ceiling)."""
    if second is None:
        return first
    return first if role_rank(first) <= role_rank(second) else second


def has_permission(role: str | None, permission: str) -> bool:
    """Whether ``role`` holds ``permission``. Unknown permissions raise: a typo must not
    silently deny (or allow) anything."""
    if permission not in PERMISSIONS:
        raise UnknownPermission(f"unknown permission {permission!r}")
    if role is None:
        return False
    role_rank(role)
    return permission in MATRIX[role]


def render_markdown() -> str:
    """The text of ``docs/permissions.md``."""
    header = "| Permission | " + " | ".join(ROLES) + " | Description |"
    rule = "|---|" + "---|" * len(ROLES) + "---|"
    lines = [
        "# Permissions",
        "",
        "<!-- Generated by `python -m workbench.auth.permissions` from",
        "     src/workbench/auth/permissions.py. Do not edit by hand: a test fails when stale. -->",
        "",
        "Every route under `/api/v1/workspaces/{workspace_id}/` declares one permission; a",
        "caller acts with the role of their membership, capped by the role ceiling of the API",
        "token they use, if any. Roles from weakest to strongest:",
        "",
    ]
    lines += [f"- **{role}**: {ROLE_DESCRIPTIONS[role]}" for role in ROLES]
    lines += ["", header, rule]
    for perm, description in PERMISSIONS.items():
        marks = " | ".join("yes" if perm in MATRIX[role] else "-" for role in ROLES)
        lines.append(f"| `{perm}` | {marks} | {description} |")
    lines += [
        "",
        "## Archived workspaces",
        "",
        "While a workspace is archived these permissions are refused with 409, whatever the",
        "role: " + ", ".join(f"`{p}`" for p in sorted(BLOCKED_WHEN_ARCHIVED)) + ".",
        "",
        "## Rules beyond the matrix",
        "",
        "- A workspace always keeps at least one owner: removing, demoting or the leaving of",
        "  the last owner is refused with 409.",
        "- Only an owner may make someone an owner or change an owner's role; nobody may",
        "  invite with, or give a token, a role stronger than their own.",
        "- Any member may leave (`DELETE .../members/{their own id}` or `.../members/me`) and",
        "  revoke their own tokens; revoking someone else's token needs `members.manage`.",
        "- Not a member, a token issued for another workspace, or no such workspace: 404, so",
        "  a workspace's existence is never revealed. A member lacking the permission: 403.",
        "",
    ]
    return "\n".join(lines)


def write_docs(root: Path = Path(".")) -> Path:
    path = root / DOCS_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown())
    return path


if __name__ == "__main__":
    sys.stdout.write(f"wrote {write_docs()}\n")

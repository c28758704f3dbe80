"""Domain errors. Each carries the HTTP status it maps to; one handler renders them.

Domain code raises these and never builds HTTP responses itself.
"""

from __future__ import annotations

from typing import Any, ClassVar


class WorkbenchError(Exception):
    """Base class for every error the application raises on purpose."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    type_slug: ClassVar[str] = "internal"

    def __init__(self, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


class BadRequest(WorkbenchError):
    """The request is malformed or a value is out of range."""

    status = 400
    title = "Bad request"
    type_slug = "bad-request"


class Unauthorized(WorkbenchError):
    """No valid credentials came with the request."""

    status = 401
    title = "Unauthorized"
    type_slug = "unauthorized"


class Forbidden(WorkbenchError):
    """The caller is known but lacks the permission needed."""

    status = 403
    title = "Forbidden"
    type_slug = "forbidden"


class NotFound(WorkbenchError):
    """The resource does not exist, or the caller may not know it exists."""

    status = 404
    title = "Not found"
    type_slug = "not-found"


class Conflict(WorkbenchError):
    """The request conflicts with the current state of the resource."""

    status = 409
    title = "Conflict"
    type_slug = "conflict"


class Gone(WorkbenchError):
    """The resource existed but is no longer usable (an expired or withdrawn invitation)."""

    status = 410
    title = "Gone"
    type_slug = "gone"


class PreconditionFailed(WorkbenchError):
    """The caller's expected version does not match the current one."""

    status = 412
    title = "Precondition failed"
    type_slug = "precondition-failed"


class Unprocessable(WorkbenchError):
    """The request is well-formed but cannot be processed as asked."""

    status = 422
    title = "Unprocessable content"
    type_slug = "unprocessable"


class TooManyRequests(WorkbenchError):
    """The caller exceeded a rate limit."""

    status = 429
    title = "Too many requests"
    type_slug = "rate-limited"


class InvalidWorkspaceId(BadRequest):
    """A workspace id does not match the strict id pattern."""

    title = "Invalid workspace id"
    type_slug = "invalid-workspace-id"


class PreconditionRequired(WorkbenchError):
    """An update came without the version it expects to change."""

    status = 428
    title = "Precondition required"
    type_slug = "precondition-required"

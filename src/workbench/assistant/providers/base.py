"""The contract between the run engine and a model provider.

A provider gets the rendered conversation (``messages``), the tools it may call, an optional
JSON Schema for the answer and the retrieved passages as structured data (a hosted model
reads them from the system message; the extractive provider works on them directly). It
returns text and/or tool calls, with token usage. Failures are ``ProviderError`` with an
``error_class`` and whether retrying can help.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from workbench.assistant.models import Passage

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolCallRequest:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str = ""
    tool_calls: tuple[ToolCallRequest, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]
    """JSON Schema of the arguments."""


@dataclass(frozen=True)
class ModelRequest:
    model: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    response_schema: dict[str, Any] | None = None
    passages: tuple[Passage, ...] = ()
    max_tokens: int = 1024
    temperature: float = 0.0


@dataclass(frozen=True)
class ModelResponse:
    content: str = ""
    tool_calls: tuple[ToolCallRequest, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    raw: dict[str, Any] = field(default_factory=dict)


class ProviderError(Exception):
    """A provider call failed. ``retryable`` says whether the same call may succeed later."""

    def __init__(
        self, message: str, *, error_class: str, retryable: bool, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.retryable = retryable
        self.retry_after = retry_after


@runtime_checkable
class ModelProvider(Protocol):
    """``name`` identifies the provider in run records; ``default_model`` is used when a
    workspace names none."""

    name: str
    default_model: str

    def complete(self, request: ModelRequest) -> ModelResponse: ...

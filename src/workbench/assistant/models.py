"""What crosses the boundary for the assistant: run requests, records, config and evals."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

RunStatus = Literal["queued", "running", "awaiting_approval", "succeeded", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
StepKind = Literal["retrieve", "model_call", "tool_call", "approval", "answer", "error"]
ToolStatus = Literal["succeeded", "failed", "denied", "awaiting_approval", "rejected"]

Question = Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]


class Limits(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What one run may spend; exceeding any ends the run with a named error class."""

    max_steps: Annotated[int, msgspec.Meta(ge=1, le=50)] = 8
    max_tool_calls: Annotated[int, msgspec.Meta(ge=0, le=50)] = 6
    max_seconds: Annotated[float, msgspec.Meta(gt=0, le=600)] = 60.0
    max_tokens: Annotated[int, msgspec.Meta(ge=100, le=1_000_000)] = 20_000


class RunCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    question: Question
    output_schema: dict[str, Any] | None = None
    """A JSON Schema the answer must satisfy (structured output)."""
    limits: Limits = msgspec.field(default_factory=Limits)
    top_k: Annotated[int, msgspec.Meta(ge=1, le=20)] = 5


class Citation(msgspec.Struct, kw_only=True):
    marker: str
    document_id: str
    chunk_id: str
    char_start: int
    char_end: int
    title: str = ""
    quote: str = ""


class Passage(msgspec.Struct, kw_only=True):
    """A retrieved passage as the assistant sees it."""

    marker: str
    document_id: str
    chunk_id: str
    title: str
    text: str
    char_start: int
    char_end: int
    score: float = 0.0
    flagged: bool = False
    flag_reason: str = ""


class ToolCallRecord(msgspec.Struct, kw_only=True):
    id: str
    run_id: str
    step: int
    tool: str
    arguments: dict[str, Any]
    result: Any
    status: ToolStatus
    decision: Literal["allow", "deny", "needs_approval"]
    reason: str
    duration_ms: float
    created_at: str


class Step(msgspec.Struct, kw_only=True):
    run_id: str
    ordinal: int
    kind: StepKind
    detail: dict[str, Any]
    created_at: str
    duration_ms: float


class Run(msgspec.Struct, kw_only=True):
    id: str
    status: RunStatus
    question: str
    started_by: str | None
    provider: str
    model: str
    prompt_name: str
    prompt_version: int
    settings: dict[str, Any]
    answer: str | None = None
    output: Any = None
    citations: list[Citation] = []
    flags: list[dict[str, Any]] = []
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float | None = None
    error_class: str | None = None
    error_message: str | None = None
    correlation_id: str | None = None
    created_at: str
    finished_at: str | None = None


class RunDetail(msgspec.Struct, kw_only=True):
    run: Run
    steps: list[Step]
    tool_calls: list[ToolCallRecord]


class RunPage(msgspec.Struct, kw_only=True):
    runs: list[Run]
    next_cursor: str | None


class Decision(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A person's answer to a tool call that awaits approval."""

    tool_call_id: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    reason: Annotated[str, msgspec.Meta(max_length=1000)] = ""


class AssistantConfig(msgspec.Struct, kw_only=True):
    id: int
    provider: str
    model: str
    prompt_name: str
    prompt_version: int
    approval_tools: list[str]
    base_url: str | None = None
    api_key_set: bool = False
    """Whether a key is stored; the key itself is never returned."""
    created_by: str | None
    created_at: str


class ConfigChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    provider: Annotated[str, msgspec.Meta(max_length=50)] | None = None
    model: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    prompt_name: Annotated[str, msgspec.Meta(max_length=50)] | None = None
    prompt_version: Annotated[int, msgspec.Meta(ge=1)] | None = None
    approval_tools: list[Annotated[str, msgspec.Meta(max_length=50)]] | None = None
    base_url: Annotated[str, msgspec.Meta(max_length=500, pattern=r"^https?://")] | None = None
    api_key: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=600)] | None = None


class Rollback(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    to: Annotated[int, msgspec.Meta(ge=1)]
    """The id of an earlier configuration to make active again."""


class PromptCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,49}$")]
    template: Annotated[str, msgspec.Meta(min_length=10, max_length=20_000)]


class PromptVersion(msgspec.Struct, kw_only=True):
    name: str
    version: int
    template: str
    builtin: bool
    created_at: str


# -- evals ----------------------------------------------------------------------------------


class ExpectedTool(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    tool: str
    arguments: dict[str, Any] = {}
    """Argument values that must match (a subset of the call's arguments)."""


class EvalCase(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    question: Question
    expected_documents: list[str] = []
    expected_phrases: list[str] = []
    expected_tools: list[ExpectedTool] = []
    output_schema: dict[str, Any] | None = None


class EvalSetCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    cases: Annotated[list[EvalCase], msgspec.Meta(min_length=1, max_length=1000)]


class EvalSet(msgspec.Struct, kw_only=True):
    id: str
    name: str
    cases: list[EvalCase]
    created_at: str


class CaseResult(msgspec.Struct, kw_only=True):
    case_id: str
    run_id: str | None
    status: str
    error_class: str | None
    citation_precision: float | None
    citation_recall: float | None
    phrase_match: float | None
    tool_accuracy: float | None
    latency_ms: float
    passed: bool


class EvalRun(msgspec.Struct, kw_only=True):
    id: str
    set_id: str
    provider: str
    model: str
    prompt_name: str
    prompt_version: int
    created_at: str
    summary: dict[str, Any]
    results: list[CaseResult] = []


class Regression(msgspec.Struct, kw_only=True):
    case_id: str
    metric: str
    before: Any
    after: Any


class EvalComparison(msgspec.Struct, kw_only=True):
    baseline: str
    candidate: str
    regressed: list[Regression]
    improved: list[Regression]
    summary_delta: dict[str, float | None]


# -- event payloads -------------------------------------------------------------------------


class RunFinished(msgspec.Struct, kw_only=True):
    run_id: str
    status: str
    error_class: str | None = None

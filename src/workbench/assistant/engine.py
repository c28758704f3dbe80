"""The run engine: one run from ``queued`` to ``succeeded``, ``failed`` or ``cancelled``.

Each step is written as it happens (so a stream can follow it), under the run's limits:
retrieve -> model call -> tool calls (policy first) -> ... -> answer (structured output
checked and repaired once, citations checked against what this run retrieved). A tool that
needs a person's approval parks the run in ``awaiting_approval``; ``resume`` continues it.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import jsonschema
import msgspec

from workbench.assistant import grounding, store
from workbench.assistant.models import Limits, Passage
from workbench.assistant.policy import decide
from workbench.assistant.prompts import render
from workbench.assistant.providers.base import (
    Message,
    ModelProvider,
    ModelRequest,
    ModelResponse,
    ProviderError,
    ToolCallRequest,
    ToolSpec,
)
from workbench.assistant.providers.extractive import NOT_FOUND
from workbench.assistant.safety import injection_flags, redact, redact_value
from workbench.assistant.tools import Tool, ToolContext, argument_schema
from workbench.clock import isoformat
from workbench.errors import WorkbenchError
from workbench.events.outbox import emit
from workbench.ids import new_id
from workbench.runtime import Runtime

log = logging.getLogger(__name__)
PROVIDER_RETRIES = 2


class RunStopped(Exception):
    """Ends a run with a named error class (a limit, an invalid output, a provider failure)."""

    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class


class Parked(Exception):
    """The run waits for a person (approval) or was cancelled: stop without finishing."""


def backoff_delay(attempt: int, retry_after: float | None, rng: random.Random) -> float:
    """Exponential backoff with full jitter; a server's Retry-After wins when it is longer."""
    base = min(8.0, 0.5 * 2**attempt)
    delay = rng.uniform(base / 2, base)
    return min(30.0, max(delay, retry_after or 0.0))


class RunEngine:
    def __init__(
        self,
        runtime: Runtime,
        workspace_id: str,
        *,
        providers: dict[str, ModelProvider],
        tools: dict[str, Tool],
        retrieve: Callable[[str, int], list[Passage]],
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.runtime = runtime
        self.workspace_id = workspace_id
        self.db = runtime.storage.workspace(workspace_id)
        self.providers = providers
        self.tools = tools
        self.retrieve = retrieve
        self.sleep = sleep
        self.rng = rng or random.Random()

    # -- entry points ----------------------------------------------------------------------

    def execute(self, run_id: str) -> None:
        """Run a queued run until it finishes or parks."""
        if not self._transition(run_id, ("queued",), "running", started_at=self._now()):
            return  # cancelled, or another worker has it
        self._guarded(run_id, lambda: self._start(run_id))

    def resume(
        self, run_id: str, tool_call_id: str, *, approve: bool, reason: str, decided_by: str | None
    ) -> None:
        """Continue a run parked on a tool call, with a person's decision. The decision was
        taken (the run moved back to ``running``) by the request that made it, so a second
        click cannot decide twice; a stray duplicate of this job finds nothing pending."""
        run = self._load(run_id)
        if run["status"] != "running" or not _pending(run["transcript"], tool_call_id):
            return
        parked_at = run["settings"].get("parked_at")
        if parked_at:  # time waiting for a person does not count against the run's limit
            waited = (self.runtime.clock.now() - _parse(parked_at)).total_seconds()
            settings = {
                **run["settings"],
                "parked_at": None,
                "parked_seconds": run["settings"].get("parked_seconds", 0) + waited,
            }
            self._update(run_id, settings=settings)
        self._guarded(
            run_id, lambda: self._decide(run_id, tool_call_id, approve, reason, decided_by)
        )

    # -- the loop --------------------------------------------------------------------------

    def _guarded(self, run_id: str, body: Callable[[], None]) -> None:
        try:
            body()
        except Parked:
            return
        except RunStopped as stop:
            self._finish(run_id, "failed", error_class=stop.error_class, message=str(stop))
        except Exception as exc:  # a bug must still leave the run closed and explained
            log.exception("assistant run crashed", extra={"run_id": run_id})
            self._finish(
                run_id,
                "failed",
                error_class="internal_error",
                message=f"{type(exc).__name__}: {redact(str(exc))[:500]}",
            )

    def _start(self, run_id: str) -> None:
        run = self._load(run_id)
        settings = run["settings"]
        started = time.perf_counter()
        found = self.retrieve(run["question"], int(settings.get("top_k", 5)))
        passages, flags = [], []
        for n, passage in enumerate(found, start=1):
            marks = injection_flags(passage.text)
            passage = msgspec.structs.replace(
                passage, marker=str(n), flagged=bool(marks), flag_reason=", ".join(marks)
            )
            passages.append(passage)
            if marks:
                flags.append(
                    {
                        "kind": "prompt_injection",
                        "marker": passage.marker,
                        "document_id": passage.document_id,
                        "chunk_id": passage.chunk_id,
                        "patterns": marks,
                    }
                )
        usable = [p for p in passages if not p.flagged]  # flagged text never reaches the model
        self._step(
            run_id,
            "retrieve",
            {
                "query": run["question"],
                "passages": [
                    {
                        "marker": p.marker,
                        "document_id": p.document_id,
                        "chunk_id": p.chunk_id,
                        "score": p.score,
                        "flagged": p.flagged,
                    }
                    for p in passages
                ],
                "withheld": [p.marker for p in passages if p.flagged],
            },
            started,
        )
        template = self._template(run["prompt_name"], run["prompt_version"])
        transcript = [
            {"role": "system", "content": render(template, usable)},
            {"role": "user", "content": run["question"]},
        ]
        self._update(
            run_id,
            passages=[msgspec.to_builtins(p) for p in passages],
            flags=flags,
            transcript=redact_value(transcript),
        )
        self._loop(run_id, transcript, usable)

    def _loop(self, run_id: str, transcript: list[dict[str, Any]], passages: list[Passage]) -> None:
        run = self._load(run_id)
        limits = msgspec.convert(run["settings"].get("limits", {}), Limits)
        schema = run["settings"].get("output_schema")
        repaired = False
        while True:
            self._check(run_id, limits)
            response = self._call_model(run_id, run, transcript, passages, schema)
            self._check_budget(self._load(run_id), limits)
            if response.tool_calls:
                transcript.append(
                    {
                        "role": "assistant",
                        "content": response.content,
                        "tool_calls": [c.__dict__ for c in response.tool_calls],
                    }
                )
                for call in response.tool_calls:
                    self._tool_call(run_id, run, call, transcript, limits)
                self._update(run_id, transcript=redact_value(transcript))
                continue
            problem = _output_problem(response.content, schema) if schema else None
            if problem and not repaired:
                repaired = True
                transcript.append({"role": "assistant", "content": response.content})
                transcript.append(
                    {
                        "role": "system",
                        "content": f"The answer does not match the required JSON schema: "
                        f"{problem}. Reply again with only JSON that matches it.",
                    }
                )
                self._step(
                    run_id,
                    "error",
                    {"error_class": "output_invalid", "message": problem, "repairing": True},
                )
                continue
            if problem:
                raise RunStopped(
                    "output_invalid",
                    f"the answer does not match the schema after one repair: {problem}",
                )
            self._answer(run_id, run, response.content, passages, schema)
            return

    def _call_model(
        self,
        run_id: str,
        run: dict[str, Any],
        transcript: list[dict[str, Any]],
        passages: list[Passage],
        schema: dict[str, Any] | None,
    ) -> ModelResponse:
        provider = self.providers.get(run["provider"])
        if provider is None:
            raise RunStopped("provider_unknown", f"no model provider named {run['provider']!r}")
        request = ModelRequest(
            model=run["model"],
            messages=tuple(_to_message(m) for m in transcript),
            tools=tuple(
                ToolSpec(t.name, t.description, argument_schema(t)) for t in self.tools.values()
            ),
            response_schema=schema,
            passages=tuple(passages),
        )
        for attempt in range(PROVIDER_RETRIES + 1):
            started = time.perf_counter()
            try:
                response = provider.complete(request)
            except ProviderError as exc:
                self._step(
                    run_id,
                    "error",
                    {
                        "error_class": exc.error_class,
                        "message": redact(str(exc)),
                        "attempt": attempt + 1,
                        "retryable": exc.retryable,
                    },
                    started,
                )
                if not exc.retryable or attempt == PROVIDER_RETRIES:
                    raise RunStopped(exc.error_class, str(exc)) from None
                delay = backoff_delay(attempt, exc.retry_after, self.rng)
                self.sleep(delay)
                self._check_budget(self._load(run_id), _limits(run))  # no retry past the limit
                continue
            usage = self._load(run_id)
            self._update(
                run_id,
                prompt_tokens=usage["prompt_tokens"] + response.prompt_tokens,
                completion_tokens=usage["completion_tokens"] + response.completion_tokens,
            )
            self._step(
                run_id,
                "model_call",
                {
                    "provider": run["provider"],
                    "model": run["model"],
                    "attempt": attempt + 1,
                    "prompt_tokens": response.prompt_tokens,
                    "completion_tokens": response.completion_tokens,
                    "content": redact(response.content)[:4000],
                    "tool_calls": [
                        {"name": c.name, "arguments": redact_value(c.arguments)}
                        for c in response.tool_calls
                    ],
                },
                started,
            )
            return response
        raise AssertionError("unreachable")

    def _tool_call(
        self,
        run_id: str,
        run: dict[str, Any],
        call: ToolCallRequest,
        transcript: list[dict[str, Any]],
        limits: Limits,
    ) -> None:
        with self.db.read() as conn:
            used = store.count_tool_calls(conn, run_id)
        if used >= limits.max_tool_calls:
            raise RunStopped(
                "tool_call_limit",
                f"the run reached its limit of {limits.max_tool_calls} tool calls",
            )
        tool = self.tools.get(call.name)
        config = self._config()
        role = self._current_role(run)
        if role is None:
            decision, reason = "deny", "the person who started this run is no longer a member"
        else:
            decision, reason = decide(tool, call.name, role, config.get("approval_tools", []))
        call_id = new_id("tc")
        marker = f"T{used + 1}"
        record = {
            "id": call_id,
            "run_id": run_id,
            "step": used + 1,
            "tool": call.name,
            "arguments": redact_value(call.arguments),
            "result": None,
            "decision": decision,
            "reason": reason,
            "duration_ms": 0.0,
            "created_at": self._now(),
            "status": {"deny": "denied", "needs_approval": "awaiting_approval"}.get(
                decision, "succeeded"
            ),
        }
        if decision == "deny":
            with self.db.write() as conn:
                store.insert_tool_call(conn, self.workspace_id, record)
            self._step(
                run_id,
                "tool_call",
                {
                    "tool_call_id": call_id,
                    "tool": call.name,
                    "decision": decision,
                    "reason": reason,
                },
            )
            transcript.append(_tool_message(call, marker, "denied", None, reason))
            return
        if decision == "needs_approval":
            with self.db.write() as conn:
                store.insert_tool_call(conn, self.workspace_id, record)
            self._step(
                run_id,
                "approval",
                {
                    "tool_call_id": call_id,
                    "tool": call.name,
                    "arguments": redact_value(call.arguments),
                    "reason": reason,
                },
            )
            pending = {
                "id": call.id,
                "name": call.name,
                "arguments": call.arguments,
                "marker": marker,
                "tool_call_id": call_id,
            }
            self._transition(
                run_id,
                ("running",),
                "awaiting_approval",
                transcript=redact_value(
                    [*transcript, {"role": "pending", "content": json.dumps(pending)}]
                ),
                settings={**run["settings"], "parked_at": self._now()},
            )
            raise Parked  # parked for a person, or cancelled meanwhile: either way, stop
        self._record_before_running(run_id, record)
        self._run_tool(run_id, call_id, tool, call, marker, {**run, "role": role}, transcript)

    def _record_before_running(self, run_id: str, record: dict[str, Any]) -> None:
        """Write the tool call before it runs (a crash mid-way leaves an honest record), in
        the same transaction that checks the run is still live: a cancel wins over a tool
        the model asked for just before it."""
        with self.db.write() as conn:
            live = store.get_run(conn, run_id)
            if live is None or live["status"] != "running":
                raise Parked
            store.insert_tool_call(
                conn,
                self.workspace_id,
                {**record, "status": "failed", "reason": "interrupted before it finished"},
            )

    def _current_role(self, run: dict[str, Any]) -> str | None:
        """The weaker of the role the run started with and the starter's role now: a person
        demoted or removed meanwhile gets no more than they have now."""
        from workbench.auth.permissions import weaker_role
        from workbench.workspaces import store as workspace_store

        if run["started_by"] is None:  # an operator's run (the command line)
            return str(run["role"])
        with self.runtime.storage.control.read() as conn:
            member = workspace_store.membership(conn, self.workspace_id, run["started_by"])
        if member is None:
            return None
        return weaker_role(run["role"], member["role"])

    def _run_tool(
        self,
        run_id: str,
        call_id: str,
        tool: Tool | None,
        call: ToolCallRequest,
        marker: str,
        run: dict[str, Any],
        transcript: list[dict[str, Any]],
    ) -> None:
        started = time.perf_counter()
        assert tool is not None
        status, result, reason = "succeeded", None, ""
        try:
            args = msgspec.convert(call.arguments, tool.arguments)
            context = ToolContext(self.runtime, self.workspace_id, run["started_by"], run["role"])
            result = redact_value(msgspec.to_builtins(tool.run(context, args)))
        except msgspec.ValidationError as exc:
            status, reason = "failed", f"invalid arguments: {exc}"
        except WorkbenchError as exc:
            status, reason = "failed", exc.detail
        elapsed = (time.perf_counter() - started) * 1000
        with self.db.write() as conn:
            store.update_tool_call(
                conn, call_id, status=status, result=result, reason=reason, duration_ms=elapsed
            )
        self._step(
            run_id,
            "tool_call",
            {
                "tool_call_id": call_id,
                "tool": call.name,
                "decision": "allow",
                "status": status,
                "reason": reason,
            },
            started,
        )
        shown = self._screen_tool_result(run_id, call_id, marker, result)
        transcript.append(_tool_message(call, marker, status, shown, reason))

    def _screen_tool_result(self, run_id: str, call_id: str, marker: str, result: Any) -> Any:
        """Tool results reach the model too: text in them that tries to instruct it (an item
        body, a passage) is flagged on the run and withheld, like a retrieved passage."""
        patterns = sorted({p for text in _strings(result) for p in injection_flags(text)})
        if not patterns:
            return result
        run = self._load(run_id)
        flag = {
            "kind": "prompt_injection",
            "marker": marker,
            "tool_call_id": call_id,
            "patterns": patterns,
        }
        self._update(run_id, flags=[*run["flags"], flag])
        return {"withheld": "the result contained text that tries to instruct the assistant"}

    def _decide(
        self, run_id: str, tool_call_id: str, approve: bool, reason: str, decided_by: str | None
    ) -> None:
        run = self._load(run_id)
        transcript = list(run["transcript"])
        if not _pending(transcript, tool_call_id):
            return  # a duplicate job: the decision was already applied
        pending = json.loads(transcript.pop()["content"])
        call = ToolCallRequest(pending["id"], pending["name"], pending["arguments"])
        role = self._current_role(run)
        tool = self.tools.get(call.name)
        if approve and role is not None and decide(tool, call.name, role, [])[0] == "allow":
            self._run_tool(
                run_id,
                tool_call_id,
                tool,
                call,
                pending["marker"],
                {**run, "role": role},
                transcript,
            )
        elif approve:
            reason = "the person who started this run may no longer use this tool"
            with self.db.write() as conn:
                store.update_tool_call(
                    conn, tool_call_id, status="denied", result=None, reason=reason, duration_ms=0
                )
            transcript.append(_tool_message(call, pending["marker"], "denied", None, reason))
        else:
            with self.db.write() as conn:
                store.update_tool_call(
                    conn,
                    tool_call_id,
                    status="rejected",
                    result=None,
                    reason=reason or "rejected by a person",
                    duration_ms=0,
                )
            transcript.append(
                _tool_message(
                    call, pending["marker"], "rejected", None, reason or "rejected by a person"
                )
            )
        self._update(run_id, transcript=redact_value(transcript))
        passages = [msgspec.convert(p, Passage) for p in run["passages"]]
        self._loop(run_id, transcript, [p for p in passages if not p.flagged])

    def _answer(
        self,
        run_id: str,
        run: dict[str, Any],
        content: str,
        passages: list[Passage],
        schema: dict[str, Any] | None,
    ) -> None:
        with self.db.read() as conn:
            tool_markers = {f"T{n}" for n in range(1, store.count_tool_calls(conn, run_id) + 1)}
        if schema:
            text = " ".join(_strings(json.loads(content)))
            result = grounding.check(text, passages, tool_markers, NOT_FOUND)
            if result.error_class == "citation_invalid":
                raise RunStopped(result.error_class, result.message)
            output: Any = json.loads(content)
        else:
            result = grounding.check(content, passages, tool_markers, NOT_FOUND)
            if result.error_class:
                raise RunStopped(result.error_class, result.message)
            output = None
        self._step(
            run_id, "answer", {"answer": redact(content)[:8000], "citations": len(result.citations)}
        )
        self._finish(
            run_id,
            "succeeded",
            answer=redact(content),
            output=output,
            citations=[msgspec.to_builtins(c) for c in result.citations],
        )

    # -- limits, state and records -------------------------------------------------------

    def _check(self, run_id: str, limits: Limits) -> None:
        run = self._load(run_id)
        if run["status"] == "cancelled":
            raise Parked
        with self.db.read() as conn:
            steps = store.count_steps(conn, run_id)
        if steps >= limits.max_steps:
            raise RunStopped("step_limit", f"the run reached its limit of {limits.max_steps} steps")
        self._check_budget(run, limits)

    def _check_budget(self, run: dict[str, Any], limits: Limits) -> None:
        """Wall time and tokens, checked before and after every model call."""
        elapsed = (self.runtime.clock.now() - _parse(run["started_at"])).total_seconds()
        elapsed -= float(run["settings"].get("parked_seconds", 0))
        if elapsed > limits.max_seconds:
            raise RunStopped(
                "time_limit", f"the run took longer than its limit of {limits.max_seconds:g}s"
            )
        tokens = run["prompt_tokens"] + run["completion_tokens"]
        if tokens > limits.max_tokens:
            raise RunStopped(
                "token_limit",
                f"the run used {tokens} tokens, over its limit of {limits.max_tokens}",
            )

    def _finish(
        self,
        run_id: str,
        status: str,
        *,
        error_class: str | None = None,
        message: str | None = None,
        **fields: Any,
    ) -> None:
        run = self._load(run_id)
        started = _parse(run["started_at"] or run["created_at"])
        latency = (self.runtime.clock.now() - started).total_seconds() * 1000
        with self.db.write() as conn:
            # only a live run can end: a cancel that landed meanwhile stays the last word
            if not store.transition_run(
                conn,
                run_id,
                ("running", "awaiting_approval", "queued"),
                status,
                error_class=error_class,
                error_message=redact(message) if message else None,
                finished_at=self._now(),
                latency_ms=latency,
                **fields,
            ):
                return
            if error_class:
                store.add_step(
                    conn,
                    self.workspace_id,
                    run_id,
                    "error",
                    {"error_class": error_class, "message": redact(message or "")},
                    self._now(),
                    0,
                )
            emit(
                conn,
                self.runtime.events.build(
                    "assistant.run_finished",
                    workspace_id=self.workspace_id,
                    payload={"run_id": run_id, "status": status, "error_class": error_class},
                    correlation_id=run["correlation_id"],
                    actor=run["started_by"],
                    clock=self.runtime.clock,
                ),
            )

    def _step(
        self, run_id: str, kind: str, detail: dict[str, Any], started: float | None = None
    ) -> None:
        elapsed = (time.perf_counter() - started) * 1000 if started else 0.0
        with self.db.write() as conn:
            store.add_step(conn, self.workspace_id, run_id, kind, detail, self._now(), elapsed)

    def _transition(
        self, run_id: str, from_statuses: tuple[str, ...], to: str, **fields: Any
    ) -> bool:
        with self.db.write() as conn:
            return store.transition_run(conn, run_id, from_statuses, to, **fields)

    def _load(self, run_id: str) -> dict[str, Any]:
        with self.db.read() as conn:
            run = store.get_run(conn, run_id)
        if run is None:
            raise RunStopped("internal_error", f"run {run_id} vanished")
        return run

    def _update(self, run_id: str, **fields: Any) -> None:
        with self.db.write() as conn:
            store.update_run(conn, run_id, **fields)

    def _config(self) -> dict[str, Any]:
        with self.db.read() as conn:
            return store.active_config(conn) or {}

    def _template(self, name: str, version: int) -> str:
        from workbench.assistant.prompts import BUILTIN

        if (name, version) in BUILTIN:
            return BUILTIN[(name, version)]
        with self.db.read() as conn:
            row = store.prompt(conn, name, version)
        if row is None:
            raise RunStopped("prompt_unknown", f"no prompt {name!r} version {version}")
        return str(row["template"])

    def _now(self) -> str:
        return isoformat(self.runtime.clock.now())


def _limits(run: dict[str, Any]) -> Limits:
    return msgspec.convert(run["settings"].get("limits", {}), Limits)


def pending_tool_call(transcript: list[dict[str, Any]]) -> str | None:
    """The id of the tool call a parked run waits on, if any."""
    if not transcript or transcript[-1].get("role") != "pending":
        return None
    found = json.loads(transcript[-1]["content"]).get("tool_call_id")
    return str(found) if found else None


def _pending(transcript: list[dict[str, Any]], tool_call_id: str) -> bool:
    return pending_tool_call(transcript) == tool_call_id


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _to_message(entry: dict[str, Any]) -> Message:
    calls = tuple(
        ToolCallRequest(c["id"], c["name"], c["arguments"]) for c in entry.get("tool_calls", [])
    )
    return Message(
        role=entry["role"],
        content=entry.get("content", ""),
        tool_calls=calls,
        tool_call_id=entry.get("tool_call_id"),
        name=entry.get("name"),
    )


def _tool_message(
    call: ToolCallRequest, marker: str, status: str, result: Any, reason: str
) -> dict[str, Any]:
    content = json.dumps({"marker": marker, "status": status, "result": result, "reason": reason})
    return {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": content}


def _output_problem(content: str, schema: dict[str, Any]) -> str | None:
    try:
        value = json.loads(content)
    except ValueError as exc:
        return f"not JSON ({exc})"
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(value)
    )
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{where}: {error.message}"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []

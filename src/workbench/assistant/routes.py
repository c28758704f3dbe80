"""HTTP for the assistant: runs (with a server-sent event stream), approvals, configuration,
prompt versions and evals."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
import anyio.to_thread
import msgspec
from litestar import Controller, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from workbench.assistant import evals
from workbench.assistant.models import (
    AssistantConfig,
    ConfigChange,
    Decision,
    EvalComparison,
    EvalRun,
    EvalSet,
    EvalSetCreate,
    PromptCreate,
    PromptVersion,
    Rollback,
    Run,
    RunCreate,
    RunDetail,
    RunPage,
)
from workbench.assistant.service import Assistant
from workbench.auth.models import Principal
from workbench.runtime import Runtime

RUN = {"permission": "assistant.run"}
APPROVE = {"permission": "assistant.approve"}
MANAGE = {"permission": "workspace.manage"}
WorkspaceId = FromPath[str]
RunId = Annotated[str, PathParameter(max_length=64)]
Caller = NamedDependency[Principal]
Rt = NamedDependency[Runtime]
STREAM_SECONDS = 300.0
POLL_SECONDS = 0.1


def _service(runtime: Runtime, workspace_id: str, principal: Principal) -> Assistant:
    return Assistant(runtime, workspace_id, principal.user_id, principal.role or "viewer")


class AssistantController(Controller):
    path = "/api/v1/workspaces/{workspace_id:str}/assistant"
    tags = ["assistant"]

    @post("/runs", opt=RUN, sync_to_thread=True, status_code=202, summary="Start a run")
    def start_run(
        self, workspace_id: WorkspaceId, data: JSONBody[RunCreate], principal: Caller, runtime: Rt
    ) -> Run:
        return _service(runtime, workspace_id, principal).start(data)

    @get("/runs", opt=RUN, sync_to_thread=True, summary="List runs, newest first")
    def list_runs(
        self,
        workspace_id: WorkspaceId,
        principal: Caller,
        runtime: Rt,
        cursor: Annotated[str | None, QueryParameter(max_length=20)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        status: Annotated[str | None, QueryParameter(max_length=20)] = None,
    ) -> RunPage:
        return _service(runtime, workspace_id, principal).list_runs(cursor, limit, status)

    @get(
        "/runs/{run_id:str}",
        opt=RUN,
        sync_to_thread=True,
        summary="A run with its steps and tool calls",
    )
    def get_run(
        self, workspace_id: WorkspaceId, run_id: RunId, principal: Caller, runtime: Rt
    ) -> RunDetail:
        return _service(runtime, workspace_id, principal).get(run_id)

    @get("/runs/{run_id:str}/events", opt=RUN, summary="Server-sent events of a run")
    async def run_events(
        self, workspace_id: WorkspaceId, run_id: RunId, principal: Caller, runtime: Rt
    ) -> ServerSentEvent:
        service = _service(runtime, workspace_id, principal)
        await anyio.to_thread.run_sync(service.get, run_id)  # 404 before the stream starts
        return ServerSentEvent(_stream(service, run_id))

    @post(
        "/runs/{run_id:str}/cancel",
        opt=RUN,
        sync_to_thread=True,
        status_code=200,
        summary="Cancel a run",
    )
    def cancel_run(
        self, workspace_id: WorkspaceId, run_id: RunId, principal: Caller, runtime: Rt
    ) -> Run:
        return _service(runtime, workspace_id, principal).cancel(run_id)

    @post(
        "/runs/{run_id:str}/approve",
        opt=APPROVE,
        sync_to_thread=True,
        status_code=200,
        summary="Approve the tool call a run waits on",
    )
    def approve(
        self,
        workspace_id: WorkspaceId,
        run_id: RunId,
        data: JSONBody[Decision],
        principal: Caller,
        runtime: Rt,
    ) -> Run:
        return _service(runtime, workspace_id, principal).decide(
            run_id, data.tool_call_id, approve=True, reason=data.reason
        )

    @post(
        "/runs/{run_id:str}/reject",
        opt=APPROVE,
        sync_to_thread=True,
        status_code=200,
        summary="Reject the tool call a run waits on",
    )
    def reject(
        self,
        workspace_id: WorkspaceId,
        run_id: RunId,
        data: JSONBody[Decision],
        principal: Caller,
        runtime: Rt,
    ) -> Run:
        return _service(runtime, workspace_id, principal).decide(
            run_id, data.tool_call_id, approve=False, reason=data.reason
        )

    # -- configuration -------------------------------------------------------------------

    @get("/config", opt=RUN, sync_to_thread=True, summary="Active provider, model and prompt")
    def get_config(
        self, workspace_id: WorkspaceId, principal: Caller, runtime: Rt
    ) -> AssistantConfig:
        return _service(runtime, workspace_id, principal).config()

    @put("/config", opt=MANAGE, sync_to_thread=True, summary="Change the active configuration")
    def put_config(
        self,
        workspace_id: WorkspaceId,
        data: JSONBody[ConfigChange],
        principal: Caller,
        runtime: Rt,
    ) -> AssistantConfig:
        return _service(runtime, workspace_id, principal).change_config(data)

    @get("/config/history", opt=RUN, sync_to_thread=True, summary="Earlier configurations")
    def config_history(
        self, workspace_id: WorkspaceId, principal: Caller, runtime: Rt
    ) -> list[AssistantConfig]:
        return _service(runtime, workspace_id, principal).history()

    @post(
        "/config/rollback",
        opt=MANAGE,
        sync_to_thread=True,
        status_code=200,
        summary="Make an earlier configuration active again",
    )
    def rollback(
        self, workspace_id: WorkspaceId, data: JSONBody[Rollback], principal: Caller, runtime: Rt
    ) -> AssistantConfig:
        return _service(runtime, workspace_id, principal).rollback(data.to)

    @get("/prompts", opt=RUN, sync_to_thread=True, summary="Prompt versions")
    def list_prompts(
        self, workspace_id: WorkspaceId, principal: Caller, runtime: Rt
    ) -> list[PromptVersion]:
        return _service(runtime, workspace_id, principal).prompts()

    @post("/prompts", opt=MANAGE, sync_to_thread=True, summary="Add a prompt version")
    def add_prompt(
        self,
        workspace_id: WorkspaceId,
        data: JSONBody[PromptCreate],
        principal: Caller,
        runtime: Rt,
    ) -> PromptVersion:
        return _service(runtime, workspace_id, principal).add_prompt(data)

    # -- evals ---------------------------------------------------------------------------

    @post("/evals/sets", opt=RUN, sync_to_thread=True, summary="Save an eval set")
    def create_eval_set(
        self,
        workspace_id: WorkspaceId,
        data: JSONBody[EvalSetCreate],
        principal: Caller,
        runtime: Rt,
    ) -> EvalSet:
        return evals.Evals(_service(runtime, workspace_id, principal)).create_set(data)

    @get("/evals/sets", opt=RUN, sync_to_thread=True, summary="Eval sets")
    def list_eval_sets(
        self, workspace_id: WorkspaceId, principal: Caller, runtime: Rt
    ) -> list[EvalSet]:
        return evals.Evals(_service(runtime, workspace_id, principal)).sets()

    @post(
        "/evals/sets/{set_id:str}/runs",
        opt=RUN,
        sync_to_thread=True,
        summary="Run an eval set through the real runtime",
    )
    def run_eval(
        self,
        workspace_id: WorkspaceId,
        set_id: Annotated[str, PathParameter(max_length=64)],
        principal: Caller,
        runtime: Rt,
    ) -> EvalRun:
        return evals.Evals(_service(runtime, workspace_id, principal)).run(set_id)

    @get("/evals/runs/{eval_run_id:str}", opt=RUN, sync_to_thread=True, summary="An eval run")
    def get_eval_run(
        self,
        workspace_id: WorkspaceId,
        eval_run_id: Annotated[str, PathParameter(max_length=64)],
        principal: Caller,
        runtime: Rt,
    ) -> EvalRun:
        return evals.Evals(_service(runtime, workspace_id, principal)).get_run(eval_run_id)

    @get(
        "/evals/compare",
        opt=RUN,
        sync_to_thread=True,
        summary="Which cases regressed between two eval runs",
    )
    def compare(
        self,
        workspace_id: WorkspaceId,
        principal: Caller,
        runtime: Rt,
        baseline: Annotated[str, QueryParameter(max_length=64)],
        candidate: Annotated[str, QueryParameter(max_length=64)],
    ) -> EvalComparison:
        return evals.Evals(_service(runtime, workspace_id, principal)).compare(baseline, candidate)


async def _stream(service: Assistant, run_id: str) -> AsyncIterator[ServerSentEventMessage]:
    """Steps as they are written, then the run itself; ends when the run ends or parks."""
    seen = 0
    deadline = time.monotonic() + STREAM_SECONDS
    while True:
        run, steps = await anyio.to_thread.run_sync(service.steps_after, run_id, seen)
        for step in steps:
            seen = step.ordinal
            yield ServerSentEventMessage(
                data=msgspec.json.encode(step).decode(), event="step", id=step.ordinal
            )
        if run.status in ("succeeded", "failed", "cancelled", "awaiting_approval"):
            yield ServerSentEventMessage(data=msgspec.json.encode(run).decode(), event="run")
            return
        if time.monotonic() > deadline:
            yield ServerSentEventMessage(data="{}", event="timeout")
            return
        await anyio.sleep(POLL_SECONDS)

"""The assistant's rules seen from outside a run: start, read, list, cancel, approve or
reject; the workspace's active provider, model and prompt version, with history and
rollback; prompt versions."""

from __future__ import annotations

from typing import Annotated, Any

import jsonschema
import msgspec

from workbench import cursors
from workbench.assistant import registry, store
from workbench.assistant.engine import RunEngine, pending_tool_call
from workbench.assistant.models import (
    TERMINAL,
    AssistantConfig,
    ConfigChange,
    PromptCreate,
    PromptVersion,
    Run,
    RunCreate,
    RunDetail,
    RunPage,
    Step,
    ToolCallRecord,
)
from workbench.assistant.prompts import BUILTIN, DEFAULT, builtin_latest
from workbench.assistant.safety import redact
from workbench.clock import isoformat
from workbench.errors import Conflict, NotFound, Unprocessable
from workbench.ids import new_id
from workbench.jobs import enqueue
from workbench.logs import correlation_id
from workbench.runtime import Runtime

_Seq = Annotated[int, msgspec.Meta(ge=0, le=2**62)]
DEFAULT_CONFIG: dict[str, Any] = {
    "provider": "extractive",
    "model": "extractive-v1",
    "prompt_name": DEFAULT[0],
    "prompt_version": DEFAULT[1],
    "approval_tools": [],
    "provider_settings": {},
}
_RUN_FIELDS = {f.name for f in msgspec.structs.fields(Run)}


def build_engine(runtime: Runtime, workspace_id: str, **overrides: Any) -> RunEngine:
    from workbench.assistant.retrieval import retrieve

    with runtime.storage.workspace(workspace_id).read() as conn:
        config = store.active_config(conn) or DEFAULT_CONFIG
    return RunEngine(
        runtime,
        workspace_id,
        providers=registry.providers(runtime, workspace_id, config),
        tools=registry.tools(runtime),
        retrieve=lambda query, k: retrieve(runtime, workspace_id, query, k),
        **overrides,
    )


class Assistant:
    def __init__(self, runtime: Runtime, workspace_id: str, actor: str | None, role: str) -> None:
        self.runtime = runtime
        self.workspace_id = workspace_id
        self.actor = actor
        self.role = role
        self.db = runtime.storage.workspace(workspace_id)

    def _now(self) -> str:
        return isoformat(self.runtime.clock.now())

    # -- runs --------------------------------------------------------------------------

    def create(self, data: RunCreate) -> str:
        """Record a queued run with the workspace's active configuration; return its id."""
        if data.output_schema is not None:
            try:
                jsonschema.Draft202012Validator.check_schema(data.output_schema)
            except jsonschema.SchemaError as exc:
                raise Unprocessable(
                    f"output_schema is not a valid JSON Schema: {exc.message}"
                ) from None
        config = self.config_row()
        run_id = new_id("run")
        with self.db.write() as conn:
            store.insert_run(
                conn,
                {
                    "id": run_id,
                    "workspace_id": self.workspace_id,
                    "status": "queued",
                    "question": redact(data.question),
                    "started_by": self.actor,
                    "role": self.role,
                    "provider": config["provider"],
                    "model": config["model"],
                    "prompt_name": config["prompt_name"],
                    "prompt_version": config["prompt_version"],
                    "settings": {
                        "limits": msgspec.to_builtins(data.limits),
                        "output_schema": data.output_schema,
                        "top_k": data.top_k,
                    },
                    "correlation_id": correlation_id.get(),
                    "created_at": self._now(),
                },
            )
        return run_id

    def start(self, data: RunCreate) -> Run:
        """Queue a run for the worker and return it as it stands."""
        run_id = self.create(data)
        enqueue(self.runtime.huey, "assistant.execute_run", self.workspace_id, run_id)
        return self.get(run_id).run

    def run_now(self, data: RunCreate, **engine_overrides: Any) -> RunDetail:
        """Create and execute a run in this thread (the CLI and evals)."""
        run_id = self.create(data)
        build_engine(self.runtime, self.workspace_id, **engine_overrides).execute(run_id)
        return self.get(run_id)

    def get(self, run_id: str) -> RunDetail:
        with self.db.read() as conn:
            row = store.get_run(conn, run_id)
            if row is None:
                raise NotFound("run not found")
            steps = store.steps(conn, run_id)
            calls = store.tool_calls(conn, run_id)
        return RunDetail(
            run=to_run(row),
            steps=[msgspec.convert(s, Step) for s in steps],
            tool_calls=[msgspec.convert(c, ToolCallRecord) for c in calls],
        )

    def steps_after(self, run_id: str, after: int) -> tuple[Run, list[Step]]:
        with self.db.read() as conn:
            row = store.get_run(conn, run_id)
            if row is None:
                raise NotFound("run not found")
            steps = store.steps(conn, run_id, after)
        return to_run(row), [msgspec.convert(s, Step) for s in steps]

    def list_runs(self, cursor: str | None, limit: int, status: str | None) -> RunPage:
        before = cursors.decode(cursor, _Seq) if cursor else None
        with self.db.read() as conn:
            found = store.list_runs(conn, before, limit + 1, status)
        next_cursor = cursors.encode(found[limit - 1]["seq"]) if len(found) > limit else None
        return RunPage(runs=[to_run(r) for r in found[:limit]], next_cursor=next_cursor)

    def cancel(self, run_id: str) -> Run:
        with self.db.write() as conn:
            row = store.get_run(conn, run_id)
            if row is None:
                raise NotFound("run not found")
            if row["status"] in TERMINAL:
                raise Conflict(f"the run already ended ({row['status']})", run_status=row["status"])
            emit_finished(self.runtime, conn, self.workspace_id, row, "cancelled", "cancelled")
            store.update_run(
                conn,
                run_id,
                status="cancelled",
                finished_at=self._now(),
                error_class="cancelled",
                error_message="cancelled by a person",
            )
            store.add_step(
                conn,
                self.workspace_id,
                run_id,
                "error",
                {"error_class": "cancelled", "by": self.actor},
                self._now(),
                0,
            )
        return self.get(run_id).run

    def decide(self, run_id: str, tool_call_id: str | None, *, approve: bool, reason: str) -> Run:
        """Take a person's decision on the tool call a run waits on. The run moves back to
        ``running`` here, in the request, so a second click gets a 409 instead of deciding
        twice; the worker then applies the decision."""
        with self.db.write() as conn:
            row = store.get_run(conn, run_id)
            if row is None:
                raise NotFound("run not found")
            if row["status"] != "awaiting_approval":
                raise Conflict(
                    f"the run is {row['status']}, not awaiting approval", run_status=row["status"]
                )
            pending = pending_tool_call(row["transcript"])
            if pending is None or (tool_call_id and tool_call_id != pending):
                raise NotFound("no such tool call awaits approval")
            store.transition_run(conn, run_id, ("awaiting_approval",), "running")
            store.add_step(
                conn,
                self.workspace_id,
                run_id,
                "approval",
                {
                    "tool_call_id": pending,
                    "approved": approve,
                    "decided_by": self.actor,
                    "reason": redact(reason),
                },
                self._now(),
                0,
            )
        enqueue(
            self.runtime.huey,
            "assistant.resume_run",
            self.workspace_id,
            run_id,
            pending,
            approve,
            reason,
            self.actor,
        )
        return self.get(run_id).run

    # -- configuration and prompts -------------------------------------------------------

    def config_row(self) -> dict[str, Any]:
        with self.db.read() as conn:
            return store.active_config(conn) or {
                **DEFAULT_CONFIG,
                "id": 0,
                "created_by": None,
                "created_at": "",
            }

    def config(self) -> AssistantConfig:
        return to_config(self.config_row())

    def history(self) -> list[AssistantConfig]:
        with self.db.read() as conn:
            return [to_config(r) for r in store.config_history(conn)]

    def change_config(self, change: ConfigChange) -> AssistantConfig:
        current = self.config_row()
        new = {k: current[k] for k in DEFAULT_CONFIG}
        for key in ("provider", "model", "prompt_name", "prompt_version", "approval_tools"):
            value = getattr(change, key)
            if value is not None:
                new[key] = value
        settings = dict(current.get("provider_settings") or {})
        if change.base_url is not None:
            from workbench.outbound import OutboundRefused, check_url

            try:
                check_url(change.base_url, self.runtime.settings.outbound_allowlist)
            except OutboundRefused as exc:
                raise Unprocessable(f"base_url refused: {exc}") from None
            if change.base_url != settings.get("base_url") and change.api_key is None:
                # the stored key was given for the old endpoint: never send it elsewhere
                settings.pop("api_key_sealed", None)
            settings["base_url"] = change.base_url
        if change.timeout_seconds is not None:
            settings["timeout_seconds"] = change.timeout_seconds
        if change.api_key is not None:
            settings["api_key_sealed"] = registry.seal_key(
                self.runtime, self.workspace_id, change.api_key
            )
        new["provider_settings"] = settings
        if (
            change.provider is not None
            and change.model is None
            and change.provider != current["provider"]
        ):
            new["model"] = "extractive-v1" if change.provider == "extractive" else new["model"]
        self._validate(new)
        return self._save(new)

    def rollback(self, config_id: int) -> AssistantConfig:
        with self.db.read() as conn:
            earlier = store.config(conn, config_id)
        if earlier is None:
            raise NotFound("no such configuration")
        return self._save({k: earlier[k] for k in DEFAULT_CONFIG})

    def _validate(self, config: dict[str, Any]) -> None:
        if config["provider"] not in registry.provider_names(self.runtime):
            raise Unprocessable(f"unknown provider {config['provider']!r}")
        if config["provider"] == "openai" and not config["provider_settings"].get("base_url"):
            raise Unprocessable("the openai provider needs base_url")
        if not self._prompt_exists(config["prompt_name"], config["prompt_version"]):
            raise Unprocessable(
                f"no prompt {config['prompt_name']!r} version {config['prompt_version']}"
            )
        unknown = set(config["approval_tools"]) - set(registry.tools(self.runtime))
        if unknown:
            raise Unprocessable(f"unknown tools in approval_tools: {', '.join(sorted(unknown))}")

    def _save(self, config: dict[str, Any]) -> AssistantConfig:
        row = {**config, "created_by": self.actor, "created_at": self._now()}
        with self.db.write() as conn:
            row["id"] = store.insert_config(conn, self.workspace_id, row)
        return to_config(row)

    def _prompt_exists(self, name: str, version: int) -> bool:
        if (name, version) in BUILTIN:
            return True
        with self.db.read() as conn:
            return store.prompt(conn, name, version) is not None

    def prompts(self) -> list[PromptVersion]:
        out = [
            PromptVersion(name=n, version=v, template=t, builtin=True, created_at="")
            for (n, v), t in sorted(BUILTIN.items())
        ]
        with self.db.read() as conn:
            out += [
                PromptVersion(
                    name=r["name"],
                    version=r["version"],
                    template=r["template"],
                    builtin=False,
                    created_at=r["created_at"],
                )
                for r in store.prompts(conn)
            ]
        return out

    def add_prompt(self, data: PromptCreate) -> PromptVersion:
        if "{passages}" not in data.template:
            raise Unprocessable("a prompt template must contain {passages}")
        now = self._now()
        with self.db.write() as conn:
            version = (
                max(store.latest_prompt_version(conn, data.name), builtin_latest(data.name)) + 1
            )
            store.insert_prompt(
                conn, self.workspace_id, data.name, version, data.template, self.actor, now
            )
        return PromptVersion(
            name=data.name, version=version, template=data.template, builtin=False, created_at=now
        )


def to_run(row: dict[str, Any]) -> Run:
    return msgspec.convert({k: v for k, v in row.items() if k in _RUN_FIELDS}, Run)


def to_config(row: dict[str, Any]) -> AssistantConfig:
    settings = row.get("provider_settings") or {}
    return AssistantConfig(
        id=row["id"],
        provider=row["provider"],
        model=row["model"],
        prompt_name=row["prompt_name"],
        prompt_version=row["prompt_version"],
        approval_tools=list(row["approval_tools"]),
        base_url=settings.get("base_url"),
        api_key_set=bool(settings.get("api_key_sealed")),
        created_by=row.get("created_by"),
        created_at=row.get("created_at", ""),
    )


def emit_finished(
    runtime: Runtime,
    conn: Any,
    workspace_id: str,
    run: dict[str, Any],
    status: str,
    error_class: str | None,
) -> None:
    """The ``assistant.run_finished`` event, in the transaction that ends the run."""
    from workbench.events.outbox import emit

    emit(
        conn,
        runtime.events.build(
            "assistant.run_finished",
            workspace_id=workspace_id,
            payload={"run_id": run["id"], "status": status, "error_class": error_class},
            correlation_id=run.get("correlation_id"),
            actor=run.get("started_by"),
            clock=runtime.clock,
        ),
    )


def fail_unstarted(
    runtime: Runtime, workspace_id: str, run_id: str, error_class: str, message: str
) -> None:
    """Close a queued run that cannot start (its provider cannot be set up, say)."""
    now = isoformat(runtime.clock.now())
    with runtime.storage.workspace(workspace_id).write() as conn:
        row = store.get_run(conn, run_id)
        if row is None or not store.transition_run(
            conn,
            run_id,
            ("queued", "running"),
            "failed",
            error_class=error_class,
            error_message=redact(message)[:1000],
            finished_at=now,
        ):
            return
        store.add_step(
            conn,
            workspace_id,
            run_id,
            "error",
            {"error_class": error_class, "message": redact(message)[:1000]},
            now,
            0,
        )
        emit_finished(runtime, conn, workspace_id, row, "failed", error_class)


INTERRUPTED_GRACE_SECONDS = 120.0


def recover_interrupted(runtime: Runtime) -> int:
    """Close runs left ``running`` by a crash as failed with class ``interrupted``.

    A run is only taken for dead once it has been running longer than its own time limit
    (plus time parked for approval) and a grace period: a live run of another process (a
    worker started beside the server) is never closed under it. Called at start-up and
    every minute by the worker.
    """
    import apsw

    from workbench.assistant.engine import _parse

    closed = 0
    moment = runtime.clock.now()
    for workspace_id in runtime.storage.workspace_ids_on_disk():
        try:
            with runtime.storage.peek(workspace_id) as conn:
                stuck = [
                    row
                    for run_id in store.runs_with_status(conn, "running")
                    if (row := store.get_run(conn, run_id)) is not None
                ]
        except apsw.SQLError:  # a file not yet migrated has no runs table
            continue
        dead = []
        for row in stuck:
            settings = row["settings"]
            allowed = (
                float(settings.get("limits", {}).get("max_seconds", 60))
                + float(settings.get("parked_seconds", 0))
                + INTERRUPTED_GRACE_SECONDS
            )
            started = _parse(row["started_at"] or row["created_at"])
            if (moment - started).total_seconds() > allowed:
                dead.append(row)
        if not dead:
            continue
        now = isoformat(moment)
        with runtime.storage.workspace(workspace_id).write() as conn:
            for row in dead:
                if not store.transition_run(
                    conn,
                    row["id"],
                    ("running",),
                    "failed",
                    error_class="interrupted",
                    error_message="the process stopped while the run was running",
                    finished_at=now,
                ):
                    continue
                store.add_step(
                    conn, workspace_id, row["id"], "error", {"error_class": "interrupted"}, now, 0
                )
                emit_finished(runtime, conn, workspace_id, row, "failed", "interrupted")
                closed += 1
    return closed

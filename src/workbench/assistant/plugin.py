"""Registers the assistant through the same hooks a plugin uses: event types, routes, jobs,
start-up recovery and the ``ask`` and ``eval assistant`` commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import msgspec
from huey import crontab

from workbench.assistant.models import RunFinished
from workbench.events.envelope import EventType
from workbench.hookspecs import hookimpl


@hookimpl
def workbench_event_types() -> list[EventType]:
    return [EventType("assistant.run_finished", 1, RunFinished, "An assistant run ended.")]


@hookimpl
def workbench_routes(runtime: Any) -> list[Any]:
    from workbench.assistant.routes import AssistantController

    return [AssistantController]


@hookimpl
def workbench_jobs(huey: Any, runtime: Any) -> None:
    from workbench.assistant.service import build_engine

    @huey.task(name="assistant.execute_run")
    def execute_run(workspace_id: str, run_id: str) -> None:
        try:
            engine = build_engine(runtime, workspace_id)
        except Exception as exc:  # e.g. the provider's key cannot be opened any more
            from workbench.assistant.service import fail_unstarted

            fail_unstarted(
                runtime,
                workspace_id,
                run_id,
                "provider_config",
                getattr(exc, "detail", None) or f"{type(exc).__name__}: {exc}",
            )
            return
        engine.execute(run_id)

    @huey.periodic_task(crontab(minute="*"), name="assistant.recover_interrupted")
    def recover() -> int:
        from workbench.assistant.service import recover_interrupted

        return recover_interrupted(runtime)

    @huey.task(name="assistant.resume_run")
    def resume_run(
        workspace_id: str,
        run_id: str,
        tool_call_id: str,
        approve: bool,
        reason: str,
        decided_by: str | None,
    ) -> None:
        build_engine(runtime, workspace_id).resume(
            run_id, tool_call_id, approve=approve, reason=reason, decided_by=decided_by
        )


@hookimpl
def workbench_startup(runtime: Any) -> None:
    import logging

    from workbench.assistant.service import recover_interrupted

    closed = recover_interrupted(runtime)
    if closed:
        logging.getLogger(__name__).warning(
            "closed interrupted assistant runs", extra={"runs": closed}
        )


def _operator(state: Any, workspace_id: str, email: str | None) -> Any:
    """The CLI acts as a named member (with their role) or as the operator (owner role)."""
    from workbench.assistant.service import Assistant

    runtime = state.runtime()
    actor, role = None, "owner"
    if email:
        from workbench.auth.service import find_user
        from workbench.workspaces import store as workspace_store

        actor = find_user(runtime, email).id
        with runtime.storage.control.read() as conn:
            member = workspace_store.membership(conn, workspace_id, actor)
        if member is None:
            raise click.ClickException(f"{email} is not a member of {workspace_id}")
        role = member["role"]
    return Assistant(runtime, workspace_id, actor, role)


@hookimpl
def workbench_cli(cli: Any) -> None:
    from workbench.errors import WorkbenchError

    @cli.command("ask")
    @click.option("--workspace", "workspace_id", required=True, help="Workspace id.")
    @click.option("--as-user", "email", default=None, help="Act as this member (email).")
    @click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
    @click.argument("question")
    @click.pass_obj
    def ask(state: Any, workspace_id: str, email: str | None, as_json: bool, question: str) -> None:
        """Ask the assistant; print the answer with its citations.

        \b
        Example:
            workbench ask --workspace ws_0190... "How do I restore a backup?"
        """
        from workbench.assistant.models import RunCreate

        try:
            detail = _operator(state, workspace_id, email).run_now(RunCreate(question=question))
        except WorkbenchError as exc:
            raise click.ClickException(exc.detail) from exc
        except msgspec.ValidationError as exc:
            raise click.ClickException(str(exc)) from exc
        run = detail.run
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "run_id": run.id,
                        "status": run.status,
                        "answer": run.answer,
                        "citations": msgspec.to_builtins(run.citations),
                        "tool_calls": [
                            {"tool": c.tool, "status": c.status, "arguments": c.arguments}
                            for c in detail.tool_calls
                        ],
                        "error_class": run.error_class,
                        "error_message": run.error_message,
                    }
                )
            )
        else:
            click.echo(run.answer or f"(no answer: {run.error_class}: {run.error_message})")
            for citation in run.citations:
                click.echo(
                    f"  [{citation.marker}] {citation.title} ({citation.document_id}, "
                    f"chars {citation.char_start}-{citation.char_end})"
                )
        if run.status != "succeeded":
            sys.exit(1)

    evaluate = cli.commands.get("eval")
    if evaluate is None:

        @cli.group("eval")
        def evaluate() -> None:
            """Evaluations."""

    @evaluate.command("assistant")
    @click.option("--workspace", "workspace_id", required=True, help="Workspace id.")
    @click.option("--json", "as_json", is_flag=True, help="Print the eval run as JSON.")
    @click.argument("eval_set", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.pass_obj
    def eval_assistant(state: Any, workspace_id: str, as_json: bool, eval_set: Path) -> None:
        """Run an eval set (a JSON file: {"name", "cases": [...]}) through the assistant.

        \b
        Example:
            workbench eval assistant --workspace ws_0190... tests/assistant_eval.json
        """
        from workbench.assistant.evals import Evals
        from workbench.assistant.models import EvalSetCreate

        try:
            data = msgspec.json.decode(eval_set.read_bytes(), type=EvalSetCreate)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise click.ClickException(f"{eval_set}: {exc}") from exc
        evals = Evals(_operator(state, workspace_id, None))
        created = evals.create_set(data)
        with click.progressbar(length=len(data.cases), label="evaluating", file=sys.stderr) as bar:
            result = evals.run(created.id, progress=lambda _r: bar.update(1))
        if as_json:
            click.echo(msgspec.json.encode(result).decode())
            return
        for case in result.results:
            mark = "pass" if case.passed else "FAIL"
            click.echo(
                f"{mark} {case.case_id}: {case.status}"
                + (f" ({case.error_class})" if case.error_class else "")
            )
        click.echo(json.dumps(result.summary))

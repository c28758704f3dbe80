"""Registers identity routes, commands and the session clean-up job through the hooks."""

from __future__ import annotations

from typing import Any

from huey import crontab

from workbench.hookspecs import hookimpl


@hookimpl
def workbench_routes(runtime: Any) -> list[Any]:
    from workbench.auth.routes import auth_router

    return [auth_router(runtime)]


@hookimpl
def workbench_cli(cli: Any) -> None:
    from workbench.auth.cli import register

    register(cli)


@hookimpl
def workbench_jobs(huey: Any, runtime: Any) -> None:
    from workbench.auth.service import prune_sessions

    @huey.periodic_task(crontab(minute="17", hour="3"), name="auth.prune_sessions")
    def prune() -> int:
        """Delete sessions that ended (expired or signed out) more than 30 days ago."""
        return prune_sessions(runtime)

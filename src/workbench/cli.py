"""The ``workbench`` command line. Library errors become one-line messages at this edge."""

from __future__ import annotations

import functools
import importlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from workbench import __version__
from workbench.config import ConfigError, load_settings, masked_settings
from workbench.db.migrations import FileReport, MigrationError
from workbench.errors import WorkbenchError
from workbench.plugins import (
    DEFAULT_PLUGINS,
    PluginLoadError,
    describe_plugins,
    get_plugin_manager,
)
from workbench.runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])


class CliState:
    """Options of the root command; the runtime is built on first use."""

    def __init__(self, config: str | None, data_dir: str | None, plugins_dir: str | None) -> None:
        self.config = config
        self.data_dir = data_dir
        self.plugins_dir = plugins_dir
        self._runtime: Runtime | None = None

    def settings(self) -> Any:
        return load_settings(self.config, data_dir=self.data_dir, plugins_dir=self.plugins_dir)

    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = Runtime(self.settings())
        return self._runtime

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()


def one_line_errors(fn: F) -> F:
    """Turn expected failures into ``Error: <one line>`` and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (
            ConfigError,
            MigrationError,
            PluginLoadError,
            WorkbenchError,
            ValueError,
            FileExistsError,
        ) as exc:
            raise click.ClickException(str(exc).splitlines()[0] if str(exc) else repr(exc)) from exc

    return wrapper  # type: ignore[return-value]


pass_state = click.make_pass_decorator(CliState)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="workbench")
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    default=None,
    help="Settings file (default: $WORKBENCH_CONFIG or ./workbench.toml).",
)
@click.option(
    "--data-dir", default=None, help="Data directory (default: $WORKBENCH_DATA_DIR or ./data)."
)
@click.option(
    "--plugins-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Load every *.py file in this directory as a plugin.",
)
@click.pass_context
def cli(
    ctx: click.Context, config: str | None, data_dir: str | None, plugins_dir: str | None
) -> None:
    """Workbench: a self-hostable workspace platform over SQLite.

    \b
    Example:
        workbench init && workbench serve
    """
    state = CliState(config, data_dir, plugins_dir)
    ctx.obj = state
    ctx.call_on_close(state.close)


@cli.command()
@pass_state
@one_line_errors
def init(state: CliState) -> None:
    """Create the data directory, the control database and the secret key (mode 0600).

    \b
    Example:
        workbench --data-dir ./data init
    """
    runtime = state.runtime()
    created = runtime.initialize()
    for path in created:
        click.echo(f"created {path}")
    click.echo(f"data directory ready: {runtime.settings.data_path}")


@cli.group()
def config() -> None:
    """Inspect configuration."""


@config.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@one_line_errors
def config_check(state: CliState, as_json: bool) -> None:
    """Validate settings and print them, secrets masked.

    \b
    Example:
        WORKBENCH_PORT=9000 workbench config check
    """
    values = masked_settings(state.settings())
    if as_json:
        click.echo(json.dumps(values, indent=2))
        return
    width = max(map(len, values))
    for key, value in values.items():
        click.echo(f"{key.ljust(width)} = {json.dumps(value)}")


# -- migrations -------------------------------------------------------------------------------


@cli.group()
def migrate() -> None:
    """Apply, roll back, dry-run and rehearse schema migrations on every file."""


def _print_report(report: FileReport) -> None:
    marks = {"ok": "applied", "unchanged": "up to date", "failed": "FAILED", "refused": "REFUSED"}
    line = f"{report.label}: {marks[report.status]}"
    if report.applied:
        line += f" [{', '.join(report.applied)}]"
    if report.error:
        line += f": {report.error}"
    click.echo(line)


def _run_with_progress(
    runtime: Runtime,
    label: str,
    run: Callable[[Callable[[FileReport], None]], list[FileReport]],
    total: int | None = None,
) -> None:
    total = runtime.migrator.count_files() if total is None else total
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        reports = run(lambda _report: bar.update(1))
    for report in reports:
        _print_report(report)
    bad = [r for r in reports if r.status in ("failed", "refused")]
    changed = sum(1 for r in reports if r.status == "ok")
    click.echo(f"{len(reports)} files: {changed} changed, {len(bad)} failed or refused")
    if bad:
        raise SystemExit(1)


@migrate.command("status")
@click.option("--json", "as_json", is_flag=True)
@pass_state
@one_line_errors
def migrate_status(state: CliState, as_json: bool) -> None:
    """Show each file's applied and pending migrations.

    \b
    Example:
        workbench migrate status
    """
    rows = state.runtime().migrator.status()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        pending = list(row["pending"])  # type: ignore[call-overload]
        state_text = (
            "drift: " + str(row["drift"])
            if row["drift"]
            else (f"{len(pending)} pending" if pending else "current")
        )
        click.echo(f"{row['file']} ({row['target']}) at {row['current']}: {state_text}")


target_option = click.option(
    "--target",
    type=click.Choice(["control", "workspace"]),
    default=None,
    help="Only this kind of file (needed with --to: each kind has its own versions).",
)


@migrate.command("up")
@click.option("--to", "to", type=int, default=None, help="Stop at this core version.")
@click.option("--workspace", default=None, help="Only this workspace file.")
@target_option
@pass_state
@one_line_errors
def migrate_up(state: CliState, to: int | None, workspace: str | None, target: Any) -> None:
    """Apply pending migrations, one transaction per file.

    \b
    Example:
        workbench migrate up --target workspace --to 3
    """
    runtime = state.runtime()
    _run_with_progress(
        runtime,
        "migrating",
        lambda p: runtime.migrator.up(to, workspace=workspace, target=target, progress=p),
        runtime.migrator.count_files(workspace, target),
    )


@migrate.command("down")
@click.option("--to", "to", type=int, required=True, help="Roll back to this version.")
@click.option("--source", default="core", show_default=True, help="Whose migrations.")
@click.option("--workspace", default=None, help="Only this workspace file.")
@target_option
@pass_state
@one_line_errors
def migrate_down(state: CliState, to: int, source: str, workspace: str | None, target: Any) -> None:
    """Roll back to a version, one transaction per file.

    \b
    Example:
        workbench migrate down --target workspace --to 1
    """
    runtime = state.runtime()
    _run_with_progress(
        runtime,
        "rolling back",
        lambda p: runtime.migrator.down(
            to, source=source, workspace=workspace, target=target, progress=p
        ),
        runtime.migrator.count_files(workspace, target),
    )


@migrate.command("dry-run")
@click.option("--to", "to", type=int, default=None)
@pass_state
@one_line_errors
def migrate_dry_run(state: CliState, to: int | None) -> None:
    """Run pending migrations inside transactions that are rolled back.

    \b
    Example:
        workbench migrate dry-run
    """
    runtime = state.runtime()
    _run_with_progress(
        runtime, "dry run", lambda p: runtime.migrator.up(to, dry_run=True, progress=p)
    )


@migrate.command("rehearse")
@click.option("--limit", type=int, default=None, help="Rehearse on at most N workspace files.")
@pass_state
@one_line_errors
def migrate_rehearse(state: CliState, limit: int | None) -> None:
    """On copies: up, down, up again; check the schema round-trips.

    \b
    Example:
        workbench migrate rehearse --limit 50
    """
    runtime = state.runtime()
    _run_with_progress(
        runtime, "rehearsing", lambda p: runtime.migrator.rehearse(limit=limit, progress=p)
    )


# -- audit ------------------------------------------------------------------------------------


@cli.group()
def audit() -> None:
    """Audit log tools."""


@audit.command("verify")
@click.option(
    "--workspace", default=None, help="Verify this workspace's chain, not the control file's."
)
@pass_state
@one_line_errors
def audit_verify(state: CliState, workspace: str | None) -> None:
    """Verify the hash chain; exit 1 naming the first bad row.

    \b
    Example:
        workbench audit verify --workspace ws_0190...
    """
    from workbench.audit import ChainBroken, verify

    runtime = state.runtime()
    db = runtime.storage.workspace(workspace) if workspace else runtime.storage.control
    label = workspace or "control"
    with db.read() as conn:
        try:
            count = verify(conn)
        except ChainBroken as exc:
            click.echo(f"{label}: audit chain BROKEN: {exc}", err=True)
            raise SystemExit(1) from None
    click.echo(f"{label}: audit chain intact ({count} entries)")


# -- workspaces -------------------------------------------------------------------------------


@cli.group()
def workspace() -> None:
    """Create and list workspaces."""


@workspace.command("create")
@click.argument("name")
@click.option(
    "--owner",
    "owner_email",
    default=None,
    metavar="EMAIL",
    help="Make this existing account the workspace's owner.",
)
@pass_state
@one_line_errors
def workspace_create(state: CliState, name: str, owner_email: str | None) -> None:
    """Create a workspace and print its id.

    \b
    Example:
        workbench workspace create "Design team" --owner ada@example.com
    """
    from workbench.workspaces.service import create_workspace

    runtime = state.runtime()
    runtime.initialize()
    owner_id = None
    if owner_email is not None:
        from workbench.auth.service import find_user

        owner_id = find_user(runtime, owner_email).id
    click.echo(create_workspace(runtime, name, owner_id=owner_id, actor="cli").id)


@workspace.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_state
@one_line_errors
def workspace_list(state: CliState, as_json: bool) -> None:
    """List workspaces.

    \b
    Example:
        workbench workspace list --json
    """
    import msgspec

    from workbench.workspaces.service import list_workspaces

    runtime = state.runtime()
    runtime.initialize()
    found = list_workspaces(runtime)
    if as_json:
        click.echo(msgspec.json.encode(found).decode())
        return
    for ws in found:
        click.echo(f"{ws.id}\t{ws.status}\t{ws.name}")


# -- plugins, server, worker ------------------------------------------------------------------


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@pass_state
@one_line_errors
def plugins(state: CliState, as_json: bool) -> None:
    """List loaded plugins and the hooks each implements.

    \b
    Example:
        workbench --plugins-dir ./my-plugins plugins
    """
    described = describe_plugins(state.runtime().pm)
    if as_json:
        click.echo(json.dumps(described, indent=2))
        return
    for plugin in described:
        click.echo(f"{plugin['name']} ({plugin['origin']}): {', '.join(plugin['hooks'])}")  # type: ignore[arg-type]


@cli.command()
@click.option("--host", default=None, help="Interface to bind (default from settings).")
@click.option("--port", type=int, default=None, help="Port (default from settings).")
@click.option("--no-worker", is_flag=True, help="Do not run the embedded job consumer.")
@click.option("--no-migrate", is_flag=True, help="Do not apply pending migrations at start.")
@pass_state
@one_line_errors
def serve(
    state: CliState, host: str | None, port: int | None, no_worker: bool, no_migrate: bool
) -> None:
    """Run the HTTP server (with an embedded job consumer unless --no-worker).

    \b
    Example:
        workbench serve --host 127.0.0.1 --port 8000
    """
    import uvicorn

    from workbench.app import create_app
    from workbench.logs import configure_logging

    settings = load_settings(
        state.config, data_dir=state.data_dir, plugins_dir=state.plugins_dir, host=host, port=port
    )
    configure_logging(settings.log_level, settings.log_format)
    runtime = Runtime(settings)
    runtime.initialize()
    if not no_migrate:
        failed = [r for r in runtime.migrator.up() if r.status in ("failed", "refused")]
        for report in failed:
            _print_report(report)
        if failed:
            raise click.ClickException(f"{len(failed)} files could not be migrated")
    app = create_app(runtime, embedded_worker=not no_worker)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        server_header=False,
        lifespan="on",
    )


@cli.command()
@pass_state
@one_line_errors
def worker(state: CliState) -> None:
    """Run a job consumer alone (SIGINT stops it gracefully).

    \b
    Example:
        WORKBENCH_QUEUE_URL=redis://localhost:6379/0 workbench worker
    """
    from workbench.logs import configure_logging

    runtime = state.runtime()
    configure_logging(runtime.settings.log_level, runtime.settings.log_format)
    runtime.initialize()
    runtime.startup()
    consumer = runtime.huey.create_consumer(
        workers=runtime.settings.worker_threads, worker_type="thread", periodic=True
    )
    consumer.run()


def _add_default_commands() -> None:
    """Built-in capabilities add their commands through the same hook as plugins do."""
    for name in DEFAULT_PLUGINS:
        module = importlib.import_module(name)
        if hasattr(module, "workbench_cli"):
            module.workbench_cli(cli=cli)


_add_default_commands()


def main() -> None:
    """Console entry point: installed plugins and those of ``$WORKBENCH_PLUGINS_DIR`` may add
    commands before the command line is parsed."""
    try:
        pm = get_plugin_manager(os.environ.get("WORKBENCH_PLUGINS_DIR") or None)
    except PluginLoadError as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(1) from None
    defaults = [pm.get_plugin(name) for name in DEFAULT_PLUGINS]
    pm.subset_hook_caller("workbench_cli", remove_plugins=defaults)(cli=cli)
    cli(prog_name="workbench")


if __name__ == "__main__":
    main()

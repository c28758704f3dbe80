"""Every hook a Workbench plugin can implement.

Hooks are called with keyword arguments only; an implementation may accept a subset of them.
Built-in features are registered through these same hooks (see ``plugins.DEFAULT_PLUGINS``).
``docs/plugins.md`` is the reference for plugin authors; a test keeps the two in step.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("workbench")
hookimpl = pluggy.HookimplMarker("workbench")


@hookspec
def workbench_migrations() -> list[Any]:  # type: ignore[empty-body]
    """Called when the migrator is built, at start-up and by ``workbench migrate``.

    Receives nothing. Returns a list of ``workbench.db.migrations.MigrationSource``: a name
    (its own version sequence, e.g. the plugin's name), a target (``"control"`` or
    ``"workspace"``) and a directory of ``NNNN_name.sql`` files with ``-- migrate:up`` and
    ``-- migrate:down`` parts. Tables with a ``workspace_id`` column in workspace files get the
    tenant guard triggers automatically.
    """


@hookspec
def workbench_event_types() -> list[Any]:  # type: ignore[empty-body]
    """Called once when the event registry is built at start-up.

    Receives nothing. Returns a list of ``workbench.events.EventType`` (name, version and the
    msgspec Struct its payload must fit). An event type may be registered at several versions;
    emitting an unregistered type or version is an error.
    """


@hookspec
def workbench_event_subscribers(runtime: Any) -> list[Any]:  # type: ignore[empty-body]
    """Called once when the dispatcher is built.

    Receives the ``runtime`` (settings, storage, clock). Returns a list of objects that satisfy
    ``workbench.events.dispatch.Subscriber``: a unique ``name``, the ``event_types`` it wants
    (empty for all), whether it is ``transactional`` and ``handle(event, conn)``. Events are
    delivered at least once and in order; a transactional subscriber's writes commit with its
    delivery record, so it applies each event once.
    """


@hookspec
def workbench_routes(runtime: Any) -> list[Any]:  # type: ignore[empty-body]
    """Called once by ``create_app()``.

    Receives the ``runtime``. Returns a list of Litestar route handlers, controllers or
    routers to mount. Workspace-scoped routes belong under
    ``/api/v1/workspaces/{workspace_id}/`` and must declare the permission they need in
    ``opt={"permission": "items.read"}`` (see ``docs/permissions.md``); other API routes declare
    ``opt={"auth": "user"}`` or ``opt={"public": True}``. ``create_app`` refuses to start
    when a route declares nothing, so nothing becomes public by accident.
    """


@hookspec
def workbench_cli(cli: Any) -> None:
    """Called when the ``workbench`` command line is assembled.

    Receives the root ``click.Group``; add commands or groups to it. Returns nothing.
    """


@hookspec
def workbench_jobs(huey: Any, runtime: Any) -> None:
    """Called when the job queue is built, in the server and in ``workbench worker``.

    Receives the ``huey`` instance and the ``runtime``; define tasks with ``huey.task()`` or
    ``huey.periodic_task()``. Returns nothing.
    """


@hookspec
def workbench_startup(runtime: Any) -> None:
    """Called after migrations are checked and before the server accepts requests, and when
    a worker starts.

    Receives the ``runtime``. Use it for recovery work (closing what a crash left open).
    Returns nothing.
    """


@hookspec
def workbench_model_providers(runtime: Any) -> list[Any]:  # type: ignore[empty-body]
    """Called when an assistant run is prepared, once per run.

    Receives the ``runtime``. Returns a list of objects satisfying
    ``workbench.assistant.providers.ModelProvider``: a unique ``name``, a ``default_model`` and
    ``complete(request) -> ModelResponse``, raising ``ProviderError`` (with an error class and
    whether retrying helps) on failure. A workspace selects a provider by name in its
    assistant configuration. Every provider must pass ``tests/test_assistant_providers.py``.
    """


@hookspec
def workbench_assistant_tools() -> list[Any]:  # type: ignore[empty-body]
    """Called when an assistant run is prepared, once per run.

    Receives nothing. Returns a list of objects satisfying ``workbench.assistant.tools.Tool``:
    a unique ``name``, a ``description``, ``arguments`` (a msgspec Struct: its JSON Schema is
    shown to the model and the model's arguments are validated against it), the
    ``permission`` the person who started the run must hold, and ``run(ctx, args)`` returning
    a JSON-serialisable result. A tool never acts with more than that person's permissions.
    """


@hookspec
def workbench_embedders() -> list[Any]:  # type: ignore[empty-body]
    """Called whenever the knowledge base needs its embedders: to embed chunks at ingestion,
    to embed a query at search time, and to list or switch a workspace's embedder.

    Receives nothing. Returns a list of embedder objects (see
    ``workbench.knowledge.embedders.Embedder``): ``name`` (unique; what a workspace selects),
    ``model``, ``version`` (change it whenever the same text would embed differently),
    ``dim``, ``normalized`` (whether rows are unit length) and ``embed(texts)`` returning a
    float32 numpy array of shape ``(len(texts), dim)``. The hook is called often, so return
    cheap objects and load model weights lazily, once per process. Every embedder must pass
    the contract tests in ``tests/test_embedders.py``.
    """

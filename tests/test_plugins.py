"""Plugins: the hook reference stays true, and every hook is exercised by a real plugin."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from tests.conftest import TEST_PLUGINS_DIR
from workbench import hookspecs, plugin_docs
from workbench.app import create_app
from workbench.cli import cli
from workbench.db.connection import scalar
from workbench.jobs import UnknownTask, enqueue
from workbench.plugins import (
    DEFAULT_PLUGINS,
    PluginLoadError,
    describe_plugins,
    get_plugin_manager,
)
from workbench.runtime import Runtime
from workbench.workspaces.service import create_workspace


def test_docs_plugins_md_matches_hookspecs() -> None:
    assert plugin_docs.DOC_PATH.read_text() == plugin_docs.render(), (
        "docs/plugins.md is stale: run `python -m workbench.plugin_docs`"
    )


def test_every_hook_is_documented_with_its_arguments() -> None:
    text = plugin_docs.DOC_PATH.read_text()
    for name in plugin_docs.hook_names():
        fn = getattr(hookspecs, name)
        assert fn.__doc__ and len(inspect.cleandoc(fn.__doc__)) > 40, name
        args = ", ".join(inspect.signature(fn).parameters)
        assert f"### `{name}({args})`" in text


def test_every_hook_has_a_test() -> None:
    tests = {name for name in globals() if name.startswith("test_hook_")}
    missing = {f"test_hook_{n}" for n in plugin_docs.hook_names()} - tests
    assert not missing, f"hooks without a test: {sorted(missing)}"


def test_defaults_and_plugins_dir_are_loaded_but_not_entry_points() -> None:
    pm = get_plugin_manager(TEST_PLUGINS_DIR)
    names = {p["name"]: p for p in describe_plugins(pm)}
    for default in DEFAULT_PLUGINS:
        assert names[default]["origin"] == "default"
    sample = names["plugins_dir:workbench_plugin_sample_plugin"]
    assert sample["origin"] == "plugins dir"
    assert set(sample["hooks"]) == set(plugin_docs.hook_names())  # type: ignore[arg-type]
    assert pm.list_plugin_distinfo() == []  # entry points are off under tests


def test_a_broken_plugin_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import does_not_exist\n")
    with pytest.raises(PluginLoadError, match=r"broken\.py failed to import"):
        get_plugin_manager(tmp_path)
    with pytest.raises(PluginLoadError, match="does not exist"):
        get_plugin_manager(tmp_path / "nope")


def test_cli_lists_plugins(plugin_runtime: Runtime) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "--data-dir",
            str(plugin_runtime.settings.data_path),
            "--plugins-dir",
            str(TEST_PLUGINS_DIR),
            "plugins",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "plugins_dir:workbench_plugin_sample_plugin (plugins dir): workbench_" in (result.output)
    assert "workbench.db.builtin (default): workbench_migrations" in result.output


# -- one test per hook --------------------------------------------------------------------


def test_hook_workbench_migrations(plugin_runtime: Runtime) -> None:
    ws = create_workspace(plugin_runtime, "A")
    with plugin_runtime.storage.workspace(ws.id).read() as conn:
        assert scalar(conn, "SELECT count(*) FROM sample_notes") == 0


def test_hook_workbench_event_types(plugin_runtime: Runtime) -> None:
    assert [t.version for t in plugin_runtime.events.all() if t.name == "sample.noted"] == [1, 2]


def test_hook_workbench_event_subscribers(plugin_runtime: Runtime) -> None:
    names = [s.name for s in plugin_runtime.dispatcher.subscribers]
    assert names == ["sample.counter", "sample.crashy"]


def test_hook_workbench_routes(plugin_runtime: Runtime) -> None:
    with TestClient(create_app(plugin_runtime)) as client:
        assert client.post("/sample/echo", json={"message": "hi"}).json() == {
            "message": "hi",
            "count": 1,
        }


def test_hook_workbench_cli(tmp_path: Path) -> None:
    from workbench import cli as cli_module

    pm = get_plugin_manager(TEST_PLUGINS_DIR)
    pm.hook.workbench_cli(cli=cli_module.cli)
    try:
        result = CliRunner().invoke(cli_module.cli, ["sample-hello"])
        assert (result.exit_code, result.output) == (0, "hello from sample\n")
    finally:
        cli_module.cli.commands.pop("sample-hello", None)


def test_hook_workbench_jobs(plugin_runtime: Runtime) -> None:
    assert enqueue(plugin_runtime.huey, "sample.add", 2, 3).get() == 5  # immediate mode
    with pytest.raises(UnknownTask):
        enqueue(plugin_runtime.huey, "sample.nope")


def test_hook_workbench_startup(plugin_runtime: Runtime) -> None:
    sample = sys.modules["workbench_plugin_sample_plugin"]
    sample.STARTED.clear()
    plugin_runtime.startup()
    assert [plugin_runtime] == sample.STARTED


def test_hook_workbench_embedders(plugin_runtime: Runtime) -> None:
    from workbench.knowledge.embedders import registry
    from workbench.knowledge.models import SearchRequest
    from workbench.knowledge.service import Knowledge

    embedders = registry(plugin_runtime.pm)
    assert {"wordllama", "hashing", "sample-words"} <= set(embedders)
    ws = create_workspace(plugin_runtime, "A")
    knowledge = Knowledge(plugin_runtime, ws.id, None, "owner")
    knowledge.add(b"the wing flutters in the wind", media_type="text/plain")
    index = knowledge.switch_embedder("sample-words")  # immediate mode: rebuilt at once
    assert knowledge.indexes()[0].embedder == "sample-words"
    assert index.embedder == "sample-words"
    hits = knowledge.search(SearchRequest(query="wing flutters", mode="vector")).hits
    assert hits and hits[0].text == "the wing flutters in the wind"


def test_hook_workbench_model_providers(plugin_runtime: Runtime) -> None:
    from workbench.assistant import registry

    providers = registry.providers(plugin_runtime, "ws_" + "0" * 32, {})
    assert {"extractive", "sample-echo", "sample-slow"} <= set(providers)
    assert "sample-echo" in registry.provider_names(plugin_runtime)


def test_hook_workbench_assistant_tools(plugin_runtime: Runtime) -> None:
    from workbench.assistant import registry
    from workbench.assistant.tools import argument_schema

    tools = registry.tools(plugin_runtime)
    assert "sample_shout" in tools and "create_item" in tools
    assert argument_schema(tools["sample_shout"])["required"] == ["text"]

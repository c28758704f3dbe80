"""The plugin manager: hook specs, the entry-point group, a plugins directory, the defaults."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from pathlib import Path

import pluggy

from workbench import hookspecs

DEFAULT_PLUGINS: tuple[str, ...] = (
    "workbench.db.builtin",
    "workbench.events.builtin",
    "workbench.http.health",
    "workbench.auth.plugin",
    "workbench.workspaces.plugin",
    "workbench.items.plugin",
    "workbench.knowledge.plugin",
    "workbench.assistant.plugin",
)

ENTRY_POINT_GROUP = "workbench"


class PluginLoadError(Exception):
    """A plugin file or entry point could not be imported."""


def get_plugin_manager(
    plugins_dir: str | Path | None = None, *, load_entry_points: bool | None = None
) -> pluggy.PluginManager:
    """Specs first, then installed entry points, then the plugins directory, then defaults.

    Entry points are skipped under tests (``WORKBENCH_NO_ENTRY_POINTS=1``), so what happens to
    be installed on a developer's machine cannot change a test's result.
    """
    pm = pluggy.PluginManager("workbench")
    pm.add_hookspecs(hookspecs)
    if load_entry_points is None:
        load_entry_points = os.environ.get("WORKBENCH_NO_ENTRY_POINTS") != "1"
    if load_entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    if plugins_dir:
        for module in load_plugins_dir(Path(plugins_dir)):
            pm.register(module, name=f"plugins_dir:{module.__name__}")
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    pm.check_pending()
    return pm


def load_plugins_dir(directory: Path) -> list[types.ModuleType]:
    """Import every ``*.py`` file of ``directory`` as a plugin module."""
    if not directory.is_dir():
        raise PluginLoadError(f"plugins directory does not exist: {directory}")
    modules = []
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module_name = f"workbench_plugin_{path.stem}"
        loaded = sys.modules.get(module_name)
        if loaded is not None and getattr(loaded, "__file__", None) == str(path):
            modules.append(loaded)  # the CLI and the runtime share one import
            continue
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise PluginLoadError(f"cannot load plugin file {path}")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise PluginLoadError(f"plugin {path.name} failed to import: {exc}") from exc
        sys.modules[module_name] = module
        modules.append(module)
    return modules


def describe_plugins(pm: pluggy.PluginManager) -> list[dict[str, object]]:
    """What is loaded: each plugin's name, where it came from and the hooks it implements."""
    out = []
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda p: str(p[0])):
        if plugin is None:
            continue
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [] if caller.name)
        dist = dists.get(id(plugin))
        origin = (
            "default"
            if name in DEFAULT_PLUGINS
            else (
                "entry point"
                if dist
                else "plugins dir"
                if str(name).startswith("plugins_dir:")
                else "registered"
            )
        )
        out.append(
            {
                "name": name,
                "origin": origin,
                "version": getattr(dist, "version", None) if dist else None,
                "hooks": hooks,
            }
        )
    return out

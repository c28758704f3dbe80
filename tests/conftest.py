"""Shared fixtures. The environment is set before any Workbench module is imported."""

from __future__ import annotations

import os

os.environ["WORKBENCH_NO_ENTRY_POINTS"] = "1"
for _key in [
    k for k in os.environ if k.startswith("WORKBENCH_") and k != "WORKBENCH_NO_ENTRY_POINTS"
]:
    del os.environ[_key]

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from litestar.testing import TestClient  # noqa: E402

from workbench.app import create_app  # noqa: E402
from workbench.clock import FrozenClock  # noqa: E402
from workbench.config import Settings, load_settings  # noqa: E402
from workbench.plugins import get_plugin_manager  # noqa: E402
from workbench.runtime import Runtime  # noqa: E402

TEST_PLUGINS_DIR = Path(__file__).parent / "plugins"


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    overrides.setdefault("secure_cookies", False)
    return load_settings(environ={}, data_dir=str(data_dir), **overrides)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def runtime(settings: Settings, clock: FrozenClock) -> Iterator[Runtime]:
    rt = Runtime(settings, clock=clock, immediate_jobs=True)
    rt.initialize()
    yield rt
    rt.close()


@pytest.fixture
def plugin_runtime(tmp_path: Path, clock: FrozenClock) -> Iterator[Runtime]:
    """A runtime with the test plugins of ``tests/plugins`` loaded from a plugins directory."""
    settings = make_settings(tmp_path / "data", plugins_dir=str(TEST_PLUGINS_DIR))
    rt = Runtime(
        settings,
        clock=clock,
        immediate_jobs=True,
        pm=get_plugin_manager(TEST_PLUGINS_DIR, load_entry_points=False),
    )
    rt.initialize()
    yield rt
    rt.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(runtime)) as test_client:
        yield test_client

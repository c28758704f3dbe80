"""Which model providers and tools a workspace's runs may use: the built-ins plus whatever
plugins contribute through ``workbench_model_providers`` and ``workbench_assistant_tools``."""

from __future__ import annotations

from typing import Any

from workbench.assistant.providers.base import ModelProvider
from workbench.assistant.providers.extractive import ExtractiveProvider
from workbench.assistant.providers.openai import OpenAIProvider
from workbench.assistant.tools import BUILTIN_TOOLS, Tool
from workbench.crypto import SecretError, open_sealed, seal
from workbench.errors import Unprocessable
from workbench.runtime import Runtime, collect

OPENAI_KEY_CONTEXT = "assistant.openai.api_key"


def tools(runtime: Runtime) -> dict[str, Tool]:
    found = [*BUILTIN_TOOLS, *collect(runtime.pm, "workbench_assistant_tools")]
    return {tool.name: tool for tool in found}


def providers(
    runtime: Runtime, workspace_id: str, config: dict[str, Any]
) -> dict[str, ModelProvider]:
    """Providers by name. ``openai`` exists once the workspace has set its endpoint."""
    out: dict[str, ModelProvider] = {"extractive": ExtractiveProvider()}
    settings = config.get("provider_settings") or {}
    if settings.get("base_url"):
        out["openai"] = OpenAIProvider(
            base_url=settings["base_url"],
            api_key=open_key(runtime, workspace_id, settings.get("api_key_sealed")),
            default_model=config.get("model") or "gpt-4o-mini",
            timeout=float(settings.get("timeout_seconds", 30.0)),
            allowlist=runtime.settings.outbound_allowlist,
        )
    for provider in collect(runtime.pm, "workbench_model_providers", runtime=runtime):
        out[provider.name] = provider
    return out


def provider_names(runtime: Runtime) -> set[str]:
    plugin = collect(runtime.pm, "workbench_model_providers", runtime=runtime)
    return {"extractive", "openai"} | {p.name for p in plugin}


def seal_key(runtime: Runtime, workspace_id: str, api_key: str) -> str:
    return seal(runtime.secret_key(), api_key, context=f"{workspace_id}:{OPENAI_KEY_CONTEXT}")


def open_key(runtime: Runtime, workspace_id: str, sealed: str | None) -> str:
    if not sealed:
        return ""
    try:
        return open_sealed(
            [runtime.secret_key()], sealed, context=f"{workspace_id}:{OPENAI_KEY_CONTEXT}"
        )
    except SecretError as exc:
        raise Unprocessable(f"the stored model API key cannot be opened: {exc}") from None

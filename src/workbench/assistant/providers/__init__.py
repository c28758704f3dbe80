"""Model providers: the extractive offline default and any OpenAI-compatible endpoint."""

from workbench.assistant.providers.base import (
    Message,
    ModelProvider,
    ModelRequest,
    ModelResponse,
    ProviderError,
    ToolCallRequest,
    ToolSpec,
)

__all__ = [
    "Message",
    "ModelProvider",
    "ModelRequest",
    "ModelResponse",
    "ProviderError",
    "ToolCallRequest",
    "ToolSpec",
]

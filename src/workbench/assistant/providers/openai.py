"""Any OpenAI-compatible chat-completions endpoint: OpenAI, llama.cpp's server, Ollama, vLLM.

Tool calling uses the ``tools`` / ``tool_calls`` fields; structured output asks for
``response_format: {"type": "json_schema", ...}``. Errors become ``ProviderError`` with a
named class: timeouts, rate limits (with Retry-After) and 5xx are retryable; auth and
request errors are not.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from workbench.assistant.providers.base import (
    Message,
    ModelRequest,
    ModelResponse,
    ProviderError,
    ToolCallRequest,
)
from workbench.outbound import OutboundRefused, check_url


class OpenAIProvider:
    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str = "",
        default_model: str = "gpt-4o-mini",
        timeout: float = 30.0,
        allowlist: list[str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.default_model = default_model
        self.timeout = timeout
        self.allowlist = allowlist or []

    def complete(self, request: ModelRequest) -> ModelResponse:
        url = f"{self.base_url}/chat/completions"
        try:
            check_url(url, self.allowlist)
        except OutboundRefused as exc:
            raise ProviderError(str(exc), error_class="provider_refused", retryable=False) from None
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            response = httpx.post(
                url, json=self._body(request), headers=headers, timeout=self.timeout
            )
        except httpx.TimeoutException:
            raise ProviderError(
                f"no answer from the model within {self.timeout:g}s",
                error_class="provider_timeout",
                retryable=True,
            ) from None
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"cannot reach the model endpoint: {type(exc).__name__}",
                error_class="provider_unavailable",
                retryable=True,
            ) from None
        return self._parse(response)

    def _body(self, request: ModelRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model or self.default_model,
            "messages": [_message(m) for m in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in request.tools
            ]
        if request.response_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": request.response_schema},
            }
        return body

    def _parse(self, response: httpx.Response) -> ModelResponse:
        status = response.status_code
        if status == 429:
            raise ProviderError(
                "the model endpoint is rate limiting us",
                error_class="provider_rate_limited",
                retryable=True,
                retry_after=_retry_after(response),
            )
        if status in (401, 403):
            raise ProviderError(
                f"the model endpoint refused our credentials ({status})",
                error_class="provider_auth",
                retryable=False,
            )
        if status >= 500:
            raise ProviderError(
                f"the model endpoint failed ({status})",
                error_class="provider_error",
                retryable=True,
            )
        if status >= 400:
            raise ProviderError(
                f"the model endpoint rejected the request ({status}): {_error_text(response)}",
                error_class="provider_bad_request",
                retryable=False,
            )
        try:
            data = response.json()
            choice = data["choices"][0]
            message = choice["message"]
            calls = tuple(
                ToolCallRequest(
                    id=call.get("id") or f"call_{n}",
                    name=call["function"]["name"],
                    arguments=_arguments(call["function"].get("arguments")),
                )
                for n, call in enumerate(message.get("tool_calls") or [], start=1)
            )
            usage = data.get("usage") or {}
            return ModelResponse(
                content=message.get("content") or "",
                tool_calls=calls,
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
                finish_reason=choice.get("finish_reason") or "stop",
            )
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ProviderError(
                f"the model endpoint sent an answer we cannot read: {exc!r}",
                error_class="provider_bad_response",
                retryable=False,
            ) from None


def _message(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in message.tool_calls
        ]
    if message.role == "tool":
        out["tool_call_id"] = message.tool_call_id
        if message.name:
            out["name"] = message.name
    return out


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    parsed = json.loads(raw or "{}")
    if not isinstance(parsed, dict):
        raise ValueError("tool call arguments are not a JSON object")
    return parsed


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("retry-after", ""))
    except ValueError:
        return None


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", {}).get("message", ""))[:300]
    except ValueError:
        return response.text[:300]

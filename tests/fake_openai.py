"""A local HTTP server that speaks the OpenAI chat-completions protocol, for tests.

Its "model" is the extractive provider behind the wire format: the passages are read back
from the system message, tools and tool results travel as the protocol says. Model names
script failures: ``fail-500``, ``rate-limit``, ``slow``, ``garbage``, ``unauthorized``,
``flaky`` (fails twice with 503, then works), ``bad-json-output`` (ignores the schema once),
``always-bad-json`` (never matches a schema), ``fabricate`` (adds a claim citing [9]).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from workbench.assistant.models import Passage
from workbench.assistant.providers.base import (
    Message,
    ModelRequest,
    ToolCallRequest,
    ToolSpec,
)
from workbench.assistant.providers.extractive import ExtractiveProvider

_BLOCK = re.compile(r"\n\n(?=\[\d+\] )")
_HEAD = re.compile(r"\[(\d+)\] (.*)")


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.calls: Counter[str] = Counter()
        self.api_key = "sk-test-secret-key-0123456789"
        self.slow_seconds = 2.0

    def handle(
        self, body: dict[str, Any], auth: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        self.requests.append(body)
        model = body.get("model", "")
        self.calls[model] += 1
        if auth != f"Bearer {self.api_key}" or model == "unauthorized":
            return 401, {"error": {"message": "invalid api key"}}, {}
        if model == "fail-500":
            return 500, {"error": {"message": "boom"}}, {}
        if model == "rate-limit":
            return 429, {"error": {"message": "slow down"}}, {"Retry-After": "0"}
        if model == "flaky" and self.calls[model] <= 2:
            return 503, {"error": {"message": "try later"}}, {}
        if model == "slow":
            time.sleep(self.slow_seconds)
        if model == "garbage":
            return 200, {"unexpected": True}, {}
        response = ExtractiveProvider().complete(_to_request(body))
        content = response.content
        if model == "bad-json-output" and self.calls[model] == 1:
            content = "not json at all"
        if model == "always-bad-json":
            content = '{"answer": 42}'
        if model == "fabricate" and content:
            content += " The moon is made of cheese. [9]"
        message: dict[str, Any] = {"role": "assistant", "content": content or None}
        if response.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                }
                for c in response.tool_calls
            ]
        return (
            200,
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if response.tool_calls else "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": response.prompt_tokens,
                    "completion_tokens": response.completion_tokens,
                },
            },
            {},
        )


def _to_request(body: dict[str, Any]) -> ModelRequest:
    messages = []
    passages: list[Passage] = []
    for m in body["messages"]:
        calls = tuple(
            ToolCallRequest(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in m.get("tool_calls") or []
        )
        messages.append(
            Message(
                role=m["role"],
                content=m.get("content") or "",
                tool_calls=calls,
                tool_call_id=m.get("tool_call_id"),
                name=m.get("name"),
            )
        )
        if m["role"] == "system" and not passages and "Passages:" in (m.get("content") or ""):
            listed = m["content"].split("Passages:", 1)[1].strip()
            for block in _BLOCK.split(listed):
                head, _, text = block.partition("\n")
                found = _HEAD.match(head)
                if found:
                    passages.append(
                        Passage(
                            marker=found[1],
                            document_id="",
                            chunk_id="",
                            title=found[2],
                            text=text.strip(),
                            char_start=0,
                            char_end=len(text.strip()),
                        )
                    )
    tools = tuple(
        ToolSpec(
            t["function"]["name"],
            t["function"].get("description", ""),
            t["function"].get("parameters", {}),
        )
        for t in body.get("tools") or []
    )
    schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema")
    return ModelRequest(
        model=body["model"],
        messages=tuple(messages),
        tools=tools,
        response_schema=schema,
        passages=tuple(passages),
    )


@contextmanager
def serve() -> Iterator[tuple[str, FakeOpenAI]]:
    fake = FakeOpenAI()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != "/v1/chat/completions":
                self.send_error(404)
                return
            length = int(self.headers.get("content-length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            status, payload, headers = fake.handle(body, self.headers.get("authorization"))
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", fake
    finally:
        server.shutdown()
        server.server_close()

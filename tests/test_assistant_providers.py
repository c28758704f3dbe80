"""One contract every model provider passes, then the failure paths of the OpenAI-compatible
provider against a local server that speaks the protocol."""

from __future__ import annotations

import json
from collections.abc import Iterator

import jsonschema
import pytest

from tests.fake_openai import serve
from workbench.assistant.models import Passage
from workbench.assistant.prompts import ANSWER_V1, render
from workbench.assistant.providers.base import (
    Message,
    ModelProvider,
    ModelRequest,
    ProviderError,
    ToolCallRequest,
    ToolSpec,
)
from workbench.assistant.providers.extractive import NOT_FOUND, ExtractiveProvider
from workbench.assistant.providers.openai import OpenAIProvider
from workbench.assistant.text import MARKER

PASSAGES = (
    Passage(
        marker="1",
        document_id="doc_backup",
        chunk_id="chk_1",
        title="Backups",
        text="Backups run every night at two. A restore is verified before it is used.",
        char_start=0,
        char_end=73,
    ),
    Passage(
        marker="2",
        document_id="doc_tea",
        chunk_id="chk_2",
        title="Kitchen",
        text="The kitchen has green tea and coffee.",
        char_start=0,
        char_end=37,
    ),
)
TOOLS = (
    ToolSpec(
        "create_item",
        "Create a work item.",
        {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]},
    ),
    ToolSpec("list_items", "List items.", {"type": "object", "properties": {}}),
    ToolSpec("transition_item", "Move an item.", {"type": "object", "properties": {}}),
)


def request(question: str, *extra: Message, model: str = "m", **kwargs: object) -> ModelRequest:
    messages = (
        Message("system", render(ANSWER_V1, list(PASSAGES))),
        Message("user", question),
        *extra,
    )
    return ModelRequest(model=model, messages=messages, tools=TOOLS, passages=PASSAGES, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(params=["extractive", "openai"])
def provider(request: pytest.FixtureRequest) -> Iterator[ModelProvider]:
    if request.param == "extractive":
        yield ExtractiveProvider()
        return
    with serve() as (url, fake):
        yield OpenAIProvider(
            base_url=url, api_key=fake.api_key, default_model="m", allowlist=["127.0.0.1"]
        )


class TestProviderContract:
    def test_answers_from_passages_with_citations(self, provider: ModelProvider) -> None:
        response = provider.complete(request("When do backups run?"))
        assert not response.tool_calls
        assert "every night" in response.content
        assert MARKER.findall(response.content) == ["1"]
        assert response.prompt_tokens > 0

    def test_says_plainly_when_it_cannot_help(self, provider: ModelProvider) -> None:
        assert provider.complete(request("Who won the chess tournament?")).content == NOT_FOUND

    def test_maps_a_clear_request_to_a_tool_call(self, provider: ModelProvider) -> None:
        response = provider.complete(request("Create an item: renew the TLS certificate"))
        assert [(c.name, c.arguments) for c in response.tool_calls] == [
            ("create_item", {"title": "renew the TLS certificate"})
        ]

    def test_reads_a_tool_result_back_into_a_cited_answer(self, provider: ModelProvider) -> None:
        call = ToolCallRequest("call_1", "create_item", {"title": "renew"})
        result = json.dumps(
            {
                "marker": "T1",
                "status": "succeeded",
                "result": {"id": "itm_1", "title": "renew"},
                "reason": "",
            }
        )
        response = provider.complete(
            request(
                "Create an item: renew",
                Message("assistant", "", tool_calls=(call,)),
                Message("tool", result, tool_call_id="call_1", name="create_item"),
            )
        )
        assert not response.tool_calls
        assert response.content.endswith("[T1]")
        assert "itm_1" in response.content

    def test_structured_output_matches_the_schema(self, provider: ModelProvider) -> None:
        schema = {
            "type": "object",
            "required": ["answer", "found"],
            "properties": {"answer": {"type": "string"}, "found": {"type": "boolean"}},
        }
        response = provider.complete(request("When do backups run?", response_schema=schema))
        value = json.loads(response.content)
        jsonschema.validate(value, schema)
        assert value["found"] is True

    def test_is_deterministic(self, provider: ModelProvider) -> None:
        first = provider.complete(request("When do backups run?"))
        assert provider.complete(request("When do backups run?")).content == first.content


# -- the OpenAI-compatible provider's failure paths --------------------------------------


@pytest.mark.parametrize(
    ("model", "error_class", "retryable"),
    [
        ("fail-500", "provider_error", True),
        ("rate-limit", "provider_rate_limited", True),
        ("unauthorized", "provider_auth", False),
        ("garbage", "provider_bad_response", False),
    ],
)
def test_openai_errors_are_named(model: str, error_class: str, retryable: bool) -> None:
    with serve() as (url, fake):
        provider = OpenAIProvider(base_url=url, api_key=fake.api_key, allowlist=["127.0.0.1"])
        with pytest.raises(ProviderError) as err:
            provider.complete(request("hi", model=model))
    assert (err.value.error_class, err.value.retryable) == (error_class, retryable)
    if model == "rate-limit":
        assert err.value.retry_after == 0.0


def test_openai_timeout() -> None:
    with serve() as (url, fake):
        fake.slow_seconds = 1.0
        provider = OpenAIProvider(
            base_url=url, api_key=fake.api_key, timeout=0.2, allowlist=["127.0.0.1"]
        )
        with pytest.raises(ProviderError) as err:
            provider.complete(request("hi", model="slow"))
    assert (err.value.error_class, err.value.retryable) == ("provider_timeout", True)


def test_openai_sends_tools_schema_and_key() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    with serve() as (url, fake):
        provider = OpenAIProvider(base_url=url, api_key=fake.api_key, allowlist=["127.0.0.1"])
        provider.complete(request("When do backups run?", response_schema=schema))
        body = fake.requests[-1]
    assert [t["function"]["name"] for t in body["tools"]] == [t.name for t in TOOLS]
    assert body["response_format"]["json_schema"]["schema"] == schema
    assert body["messages"][0]["role"] == "system"


def test_openai_refuses_private_addresses_unless_allowed() -> None:
    provider = OpenAIProvider(base_url="http://127.0.0.1:9/v1", api_key="k")
    with pytest.raises(ProviderError) as err:
        provider.complete(request("hi"))
    assert err.value.error_class == "provider_refused"
    assert "outbound_allowlist" in str(err.value)

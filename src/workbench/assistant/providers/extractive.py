"""The offline default provider: deterministic, no network, no model weights.

It answers from the retrieved passages by picking the sentences that best support the
question (idf-weighted term overlap, with a prior for the retriever's rank), ordered by
passage rank, each followed by its citation marker. It maps clear requests to tool calls
("create an item ...", "move X to done", "what is open for Y", "comment on X: ...") and reads
the tool results back into a cited answer. It says plainly when it cannot help.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from workbench.assistant.models import Passage
from workbench.assistant.providers.base import (
    Message,
    ModelRequest,
    ModelResponse,
    ToolCallRequest,
)
from workbench.assistant.text import sentences, strip_markers, terms

NOT_FOUND = "I could not find an answer to that in this workspace's knowledge."
MAX_SENTENCES = 3
MIN_COVERAGE = 0.34
"""Share of the question's term weight a sentence must cover to be used..."""
RELATIVE_COVERAGE = 0.6
"""...and how close it must come to the best sentence's coverage (same passage)..."""
OTHER_PASSAGE_COVERAGE = 0.9
"""...or from another passage."""

_STATES = {
    "open": "open",
    "in progress": "in_progress",
    "in_progress": "in_progress",
    "started": "in_progress",
    "done": "done",
    "finished": "done",
    "closed": "done",
    "archived": "archived",
}
_CREATE = re.compile(
    r"^\s*(?:please\s+)?(?:create|add|open|make|file|new)\s+(?:a\s+|an\s+)?(?:new\s+)?"
    r"(?:work\s+)?(?:item|task|ticket|issue|todo)\b(?:\s+(?:called|titled|named|for|to))?"
    r"\s*[:\-]?\s*(?P<title>.+?)\s*[.!]?\s*$",
    re.IGNORECASE,
)
_MOVE = re.compile(
    r"^\s*(?:please\s+)?(?:move|mark|set|transition|change)\s+(?:the\s+)?(?:item\s+)?"
    r"[\"“']?(?P<ref>.+?)[\"”']?\s+(?:to|as)\s+(?P<state>open|in[ _]progress|started|done|"
    r"finished|closed|archived)\s*[.!]?\s*$",
    re.IGNORECASE,
)
_LIST = re.compile(
    r"^\s*(?:what|which\s+items)(?:'s|\s+is|\s+are)?\s+(?P<state>open|in[ _]progress|done)"
    r"(?:\s+(?:for|assigned\s+to)\s+(?P<who>[^?]+?))?\s*\??\s*$",
    re.IGNORECASE,
)
_COMMENT = re.compile(
    r"^\s*(?:please\s+)?comment\s+on\s+[\"“']?(?P<ref>.+?)[\"”']?\s*[:,]\s*(?P<text>.+?)\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ToolResult:
    marker: str
    tool: str
    status: str
    result: Any
    reason: str


class ExtractiveProvider:
    name = "extractive"
    default_model = "extractive-v1"

    def complete(self, request: ModelRequest) -> ModelResponse:
        question = _last_user_message(request.messages)
        results = _tool_results(request.messages)
        tools = {t.name for t in request.tools}
        response = self._act(question, results, tools)
        if response is None:
            response = _answer_from_passages(question, request.passages)
        if request.response_schema and not response.tool_calls:
            response = _shape(response, request.response_schema, request.messages)
        prompt_tokens = sum(len(m.content.split()) for m in request.messages) + sum(
            len(p.text.split()) for p in request.passages
        )
        return ModelResponse(
            content=response.content,
            tool_calls=response.tool_calls,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(response.content.split()),
            finish_reason="tool_calls" if response.tool_calls else "stop",
        )

    # -- tool use ------------------------------------------------------------------------

    def _act(
        self, question: str, results: list[ToolResult], tools: set[str]
    ) -> ModelResponse | None:
        if (m := _CREATE.match(question)) and "create_item" in tools:
            title = m["title"].strip(" \"“”'")
            if not results:
                return _call(len(results), "create_item", {"title": title[:300]})
            return _report(results[-1], lambda r: f"Created the item “{r['title']}” ({r['id']}).")
        if (m := _MOVE.match(question)) and {"list_items", "transition_item"} <= tools:
            to = _STATES[m["state"].lower().replace("_", " ")]
            return self._on_item(
                m["ref"],
                results,
                "transition_item",
                {"to": to},
                lambda r: f"Moved “{r['title']}” to {r['status']}.",
            )
        if (m := _COMMENT.match(question)) and {"list_items", "comment_on_item"} <= tools:
            return self._on_item(
                m["ref"],
                results,
                "comment_on_item",
                {"body": m["text"]},
                lambda r: "Added the comment.",
            )
        if (m := _LIST.match(question)) and "list_items" in tools:
            status = _STATES[m["state"].lower().replace("_", " ")]
            if not results:
                args: dict[str, Any] = {"status": status}
                if m["who"]:
                    args["assignee"] = m["who"].strip()
                return _call(0, "list_items", args)
            return _report(results[-1], lambda r: _describe_items(r, status))
        return None

    def _on_item(
        self,
        ref: str,
        results: list[ToolResult],
        tool: str,
        extra: dict[str, Any],
        describe: Any,
    ) -> ModelResponse:
        """Find the item by its title first, then act on the best match."""
        if not results:
            return _call(0, "list_items", {"q": ref, "include_archived": True})
        found = results[0]
        if len(results) == 1:
            if found.status != "succeeded":
                return _report(found, lambda r: "")
            items = found.result.get("items", []) if isinstance(found.result, dict) else []
            if not items:
                return ModelResponse(content=f"I found no item matching “{ref}” [{found.marker}].")
            best = max(items, key=lambda i: _title_overlap(ref, i["title"]))
            return _call(1, tool, {"item_id": best["id"], **extra})
        return _report(results[-1], describe)


def _call(index: int, tool: str, arguments: dict[str, Any]) -> ModelResponse:
    return ModelResponse(tool_calls=(ToolCallRequest(f"call_{index + 1}", tool, arguments),))


def _report(result: ToolResult, describe: Any) -> ModelResponse:
    if result.status == "succeeded":
        return ModelResponse(content=f"{describe(result.result)} [{result.marker}]")
    why = result.reason or "the tool failed"
    verb = {"denied": "I was not allowed to do that", "rejected": "A person declined this action"}
    return ModelResponse(
        content=f"{verb.get(result.status, 'That did not work')}: {why} [{result.marker}]"
    )


def _describe_items(result: dict[str, Any], status: str) -> str:
    items = result.get("items", [])
    label = status.replace("_", " ")
    if not items:
        return f"There are no {label} items."
    titles = "; ".join(f"“{i['title']}”" for i in items[:10])
    more = f" and {len(items) - 10} more" if len(items) > 10 else ""
    return f"{len(items)} {label} item{'s' if len(items) != 1 else ''}: {titles}{more}."


def _title_overlap(ref: str, title: str) -> float:
    wanted, have = set(terms(ref)), set(terms(title))
    return len(wanted & have) / (len(wanted) or 1) + (1.0 if ref.lower() == title.lower() else 0)


# -- answering from passages ---------------------------------------------------------------


def _answer_from_passages(question: str, passages: tuple[Passage, ...]) -> ModelResponse:
    wanted = terms(question)
    if not wanted or not passages:
        return ModelResponse(content=NOT_FOUND)
    candidates: list[tuple[int, int, str, list[str]]] = []
    for rank, passage in enumerate(passages):
        for start, end in sentences(passage.text):
            text = passage.text[start:end]
            if text.lstrip().startswith("#") or not 3 <= len(text.split()) <= 80:
                continue  # headings, fragments and whole code listings are not answers
            candidates.append((rank, start, text, terms(text)))
    df: Counter[str] = Counter()
    for *_, words in candidates:
        df.update(set(words))
    n = len(candidates)
    weight = {t: math.log(1 + n / (1 + df[t])) for t in set(wanted)}
    total = sum(weight.values()) or 1.0
    scored = []
    for rank, start, text, words in candidates:
        present = set(words) & weight.keys()
        coverage = sum(weight[t] for t in present) / total
        if coverage >= MIN_COVERAGE:
            prior = 0.05 * (len(passages) - rank) / len(passages)
            scored.append((coverage + prior, rank, start, text))
    if not scored:
        return ModelResponse(content=NOT_FOUND)
    top, _, _, _ = best_sentence = max(scored)
    home = best_sentence[1]
    # Sentences from the best sentence's passage need to come close to it; sentences from
    # other passages need to be nearly as good, so a stray shared word does not pull them in.
    scored = [
        s
        for s in scored
        if s[0] >= (RELATIVE_COVERAGE if s[1] == home else OTHER_PASSAGE_COVERAGE) * top
    ]
    best = sorted(scored, reverse=True)[:MAX_SENTENCES]
    best.sort(key=lambda s: (s[1], s[2]))
    parts = [f"{' '.join(text.split())} [{passages[rank].marker}]" for _, rank, _, text in best]
    return ModelResponse(content=" ".join(parts))


# -- structured output ---------------------------------------------------------------------


def _shape(
    response: ModelResponse, schema: dict[str, Any], messages: tuple[Message, ...]
) -> ModelResponse:
    """Fill the requested JSON shape from the answer: strings get the answer, arrays of
    strings its sentences, booleans whether an answer was found, numbers a count."""
    found = response.content != NOT_FOUND
    plain = strip_markers(response.content)
    markers = re.findall(r"\[(T?\d+)\]", response.content)

    def fill(node: dict[str, Any], key: str = "") -> Any:
        kind = node.get("type")
        if "enum" in node:
            return node["enum"][0]
        if kind == "object":
            props = node.get("properties", {})
            return {k: fill(v, k) for k, v in props.items()}
        if kind == "array":
            item = node.get("items", {})
            if "citation" in key or "source" in key:
                return list(dict.fromkeys(markers)) if item.get("type") == "string" else []
            parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+", plain) if p.strip()]
            return [fill(item, key) if item.get("type") != "string" else p for p in parts]
        if kind == "boolean":
            return found
        if kind in ("integer", "number"):
            return len(markers)
        return response.content if key in ("answer", "text", "summary", "") else plain

    return ModelResponse(content=json.dumps(fill(schema)))


# -- reading the conversation --------------------------------------------------------------


def _last_user_message(messages: tuple[Message, ...]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            return message.content
    return ""


def _tool_results(messages: tuple[Message, ...]) -> list[ToolResult]:
    """Tool results after the last user message, in order."""
    out: list[ToolResult] = []
    for message in messages:
        if message.role == "user":
            out = []
        elif message.role == "tool":
            try:
                data = json.loads(message.content)
            except ValueError:
                continue
            out.append(
                ToolResult(
                    marker=data.get("marker", ""),
                    tool=message.name or "",
                    status=data.get("status", ""),
                    result=data.get("result"),
                    reason=data.get("reason", ""),
                )
            )
    return out

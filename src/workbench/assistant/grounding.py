"""The grounding check: every claim of an answer carries a citation to a passage retrieved
in this run (or a tool result of this run), and no citation points anywhere else."""

from __future__ import annotations

import re
from dataclasses import dataclass

from workbench.assistant.models import Citation, Passage
from workbench.assistant.text import MARKER, strip_markers

_CLAIM_SPLIT = re.compile(r"(?<=\])\s+|(?<=[.!?])\s+(?=[A-Z0-9“\"])")


@dataclass(frozen=True)
class GroundingResult:
    citations: list[Citation]
    error_class: str | None = None
    message: str = ""


def check(
    answer: str, passages: list[Passage], tool_markers: set[str], not_found: str
) -> GroundingResult:
    """Citations for ``answer``, or the reason it is not grounded."""
    if answer.strip() == not_found:
        return GroundingResult(citations=[])
    by_marker = {p.marker: p for p in passages}
    known = set(by_marker) | tool_markers
    used = MARKER.findall(answer)
    fabricated = sorted({m for m in used if m not in known})
    if fabricated:
        return GroundingResult(
            [],
            "citation_invalid",
            f"the answer cites [{'], ['.join(fabricated)}], which this run did not retrieve",
        )
    for claim in _claims(answer):
        if not MARKER.search(claim):
            return GroundingResult(
                [], "ungrounded", f"this claim has no citation: {strip_markers(claim)[:200]!r}"
            )
    citations = []
    seen: set[tuple[str, str]] = set()
    for claim in _claims(answer):
        text = strip_markers(claim)
        for marker in MARKER.findall(claim):
            passage = by_marker.get(marker)
            if passage is None or (marker, text) in seen:
                continue
            seen.add((marker, text))
            citations.append(_cite(marker, passage, text))
    return GroundingResult(citations=citations)


def _claims(answer: str) -> list[str]:
    """Sentences of the answer, each with the markers that follow it."""
    parts = [p.strip() for p in _CLAIM_SPLIT.split(answer) if p.strip()]
    claims: list[str] = []
    for part in parts:
        if MARKER.fullmatch(part.strip(" .")) and claims:
            claims[-1] += " " + part  # a marker standing alone belongs to the claim before it
        else:
            claims.append(part)
    return claims


def _cite(marker: str, passage: Passage, claim: str) -> Citation:
    """Point at the exact source text when the claim quotes the passage (whitespace may
    differ: answers are written on one line), else at the whole passage."""
    words = claim.split()
    found = None
    if words:
        found = re.search(r"\s+".join(re.escape(w) for w in words), passage.text)
    if found is None:
        return Citation(
            marker=marker,
            document_id=passage.document_id,
            chunk_id=passage.chunk_id,
            char_start=passage.char_start,
            char_end=passage.char_end,
            title=passage.title,
            quote="",
        )
    return Citation(
        marker=marker,
        document_id=passage.document_id,
        chunk_id=passage.chunk_id,
        char_start=passage.char_start + found.start(),
        char_end=passage.char_start + found.end(),
        title=passage.title,
        quote=found.group(0),
    )

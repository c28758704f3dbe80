"""Chunking that follows structure within a token budget, with overlap.

The parsed blocks (headings, paragraphs, code) are cut into units: a block that fits the
budget is one unit, a longer one is cut at sentences (lines for code), and a sentence that is
still too long at word windows. Units are packed greedily into chunks of at most ``budget``
tokens. A heading closes the chunk before it, so a chunk does not straddle sections, and the
heading travels with the text under it. When a chunk is closed because it is full, the next
one starts with the previous chunk's last units up to ``overlap`` tokens, so a passage cut at
a boundary is still found whole.

Each chunk is a ``[start, end)`` span of the normalised text: ``text[start:end]`` *is* the
chunk text, which is what lets a citation highlight its source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from workbench.knowledge.parsing import Block, Parsed, heading_text

DEFAULT_BUDGET = 256
DEFAULT_OVERLAP = 32
_TOKEN = re.compile(r"\w+|[^\w\s]")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n")
_WORD = re.compile(r"\S+")


def count_tokens(text: str) -> int:
    """Words and punctuation marks: a tokenizer-free approximation used for budgets."""
    return len(_TOKEN.findall(text))


@dataclass(frozen=True, slots=True)
class ChunkSpan:
    ordinal: int
    start: int
    end: int
    heading: str
    """The section path, outermost first, e.g. ``Install > Linux``."""


@dataclass(frozen=True, slots=True)
class _Unit:
    start: int
    end: int
    tokens: int
    heading: str
    is_heading: bool = False


def chunk(
    parsed: Parsed, budget: int = DEFAULT_BUDGET, overlap: int = DEFAULT_OVERLAP
) -> list[ChunkSpan]:
    if budget < 8 or not 0 <= overlap < budget:
        raise ValueError("budget must be >= 8 and 0 <= overlap < budget")
    units = list(_units(parsed, budget))
    chunks: list[list[_Unit]] = []
    current: list[_Unit] = []
    size = 0
    for unit in units:
        has_content = any(not u.is_heading for u in current)
        if current and unit.is_heading and has_content:
            chunks.append(current)
            current, size = [], 0
        elif current and size + unit.tokens > budget:
            chunks.append(current)
            current = _overlap_tail(current, overlap) if has_content else []
            if current and current[0].heading != unit.heading:
                current = []
            size = sum(u.tokens for u in current)
            if size + unit.tokens > budget:
                current, size = [], 0
        current.append(unit)
        size += unit.tokens
    if current:
        chunks.append(current)
    spans: list[ChunkSpan] = []
    for members in chunks:
        first = next((u for u in members if not u.is_heading), members[0])
        spans.append(ChunkSpan(len(spans), members[0].start, members[-1].end, first.heading))
    return spans


def _overlap_tail(units: list[_Unit], overlap: int) -> list[_Unit]:
    tail: list[_Unit] = []
    size = 0
    for unit in reversed(units):
        if unit.is_heading or size + unit.tokens > overlap:
            break
        tail.insert(0, unit)
        size += unit.tokens
    return tail


def _units(parsed: Parsed, budget: int) -> list[_Unit]:
    text = parsed.text
    sections: list[tuple[int, str]] = []
    units: list[_Unit] = []
    for block in parsed.blocks:
        if block.kind == "heading":
            while sections and sections[-1][0] >= block.level:
                sections.pop()
            sections.append((block.level, heading_text(text, block)))
            path = " > ".join(name for _, name in sections if name)
            units.append(
                _Unit(
                    block.start, block.end, count_tokens(text[block.start : block.end]), path, True
                )
            )
            continue
        path = " > ".join(name for _, name in sections if name)
        units.extend(_split_block(text, block, budget, path))
    return units


def _split_block(text: str, block: Block, budget: int, heading: str) -> list[_Unit]:
    tokens = count_tokens(text[block.start : block.end])
    if tokens <= budget:
        return [_Unit(block.start, block.end, tokens, heading)]
    pieces: list[_Unit] = []
    position = block.start
    boundaries = [m.end() for m in _SENTENCE_END.finditer(text, block.start, block.end)]
    for boundary in [*boundaries, block.end]:
        piece_end = boundary
        while position < piece_end and text[position].isspace():
            position += 1
        while piece_end > position and text[piece_end - 1].isspace():
            piece_end -= 1
        if piece_end > position:
            pieces.extend(_word_windows(text, position, piece_end, budget, heading))
        position = boundary
    return pieces


def _word_windows(text: str, start: int, end: int, budget: int, heading: str) -> list[_Unit]:
    tokens = count_tokens(text[start:end])
    if tokens <= budget:
        return [_Unit(start, end, tokens, heading)]
    windows: list[_Unit] = []
    window_start: int | None = None
    window_end = start
    size = 0
    for word in _WORD.finditer(text, start, end):
        word_tokens = count_tokens(word.group())
        if window_start is not None and size + word_tokens > budget:
            windows.append(_Unit(window_start, window_end, size, heading))
            window_start, size = None, 0
        if window_start is None:
            window_start = word.start()
        window_end = word.end()
        size += word_tokens
    if window_start is not None:
        windows.append(_Unit(window_start, window_end, size, heading))
    return windows

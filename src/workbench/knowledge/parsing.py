"""From uploaded bytes to normalised text plus its structure (headings, paragraphs, code).

Every format yields one ``Parsed``: the normalised text that is stored with the document
version (chunk spans index into it, so a citation can be highlighted) and the blocks that
make up that text, each a ``[start, end)`` span with a kind and, for headings, a level.
Plain text and Markdown keep their source text as is (only line endings are normalised), so a
citation points at the very characters that were uploaded. HTML and PDF have no readable
source text: their extracted text is what is stored and cited.
"""

from __future__ import annotations

import io
import mimetypes
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Literal

from workbench.knowledge.errors import CorruptDocument, EmptyDocument, UnsupportedType

BlockKind = Literal["heading", "text", "code"]

MEDIA_TYPES: dict[str, str] = {
    "text/plain": "text/plain",
    "text/markdown": "text/markdown",
    "text/x-markdown": "text/markdown",
    "text/html": "text/html",
    "application/xhtml+xml": "text/html",
    "application/pdf": "application/pdf",
}
"""Accepted media types -> the canonical one stored with the document."""

EXTENSIONS: dict[str, str] = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".xhtml": "text/html",
    ".pdf": "application/pdf",
}


@dataclass(frozen=True, slots=True)
class Block:
    start: int
    end: int
    kind: BlockKind = "text"
    level: int = 0
    """Heading level (1 = top); 0 for other blocks."""


@dataclass(slots=True)
class Parsed:
    text: str
    blocks: list[Block] = field(default_factory=list)
    title: str | None = None


def canonical_type(declared: str | None, filename: str | None = None) -> str:
    """The canonical media type of an upload, from its declared type or else its name.

    ``application/octet-stream`` (what a browser sends when it does not know) defers to the
    file name. Anything not readable raises ``UnsupportedType`` (415).
    """
    media = (declared or "").split(";")[0].strip().lower()
    if media in MEDIA_TYPES:
        return MEDIA_TYPES[media]
    if media in ("", "application/octet-stream") and filename:
        suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        guessed = EXTENSIONS.get(suffix) or mimetypes.guess_type(filename)[0]
        if guessed in MEDIA_TYPES:
            return MEDIA_TYPES[guessed]
    accepted = ", ".join(sorted(set(MEDIA_TYPES.values())))
    shown = media or "no type"
    raise UnsupportedType(f"cannot index {shown}; send one of {accepted}")


def validate_upload(content: bytes, media_type: str) -> Parsed | None:
    """The checks done before a document is accepted. Text formats are parsed (it is fast):
    empty or undecodable content is refused here, and the parse is returned. A PDF is only
    checked to start like one: reading a whole PDF is too slow for a request, so a PDF broken
    further in fails in the pipeline instead (``CorruptDocument``, straight to dead letters)."""
    if not content.strip():
        raise EmptyDocument("the document is empty")
    if media_type == "application/pdf":
        if content.lstrip()[:5] != b"%PDF-":
            raise CorruptDocument("not a PDF: the content does not start with %PDF-")
        return None
    return parse(content, media_type)


def decode_text(content: bytes) -> str:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorruptDocument(f"text is not valid UTF-8 (byte {exc.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def parse(content: bytes, media_type: str) -> Parsed:
    """Parse ``content`` of the canonical ``media_type``; raise a permanent ingestion error
    (``CorruptDocument``, ``EmptyDocument``, ``UnsupportedType``) when it cannot be read."""
    if media_type == "text/plain":
        parsed = parse_text(decode_text(content))
    elif media_type == "text/markdown":
        parsed = parse_markdown(decode_text(content))
    elif media_type == "text/html":
        parsed = parse_html(decode_text(content))
    elif media_type == "application/pdf":
        parsed = parse_pdf(content)
    else:
        raise UnsupportedType(f"cannot parse {media_type}")
    if not parsed.text.strip() or not parsed.blocks:
        raise EmptyDocument("no text could be extracted from the document")
    return parsed


# -- plain text ------------------------------------------------------------------------------

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def paragraph_blocks(text: str, start: int = 0, end: int | None = None) -> list[Block]:
    """Paragraphs of ``text[start:end]`` (separated by blank lines), trimmed of whitespace."""
    end = len(text) if end is None else end
    blocks: list[Block] = []
    position = start
    for match in _PARAGRAPH_BREAK.finditer(text, start, end):
        blocks.extend(_trimmed(text, position, match.start()))
        position = match.end()
    blocks.extend(_trimmed(text, position, end))
    return blocks


def _trimmed(
    text: str, start: int, end: int, kind: BlockKind = "text", level: int = 0
) -> list[Block]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return [Block(start, end, kind, level)] if end > start else []


def parse_text(text: str) -> Parsed:
    blocks = paragraph_blocks(text)
    first = text[blocks[0].start : blocks[0].end].split("\n", 1)[0] if blocks else ""
    return Parsed(text, blocks, first[:200] or None)


# -- Markdown --------------------------------------------------------------------------------

_ATX = re.compile(r"^(#{1,6})[ \t]+(.*)$")
"""An ATX heading; its closing ``#``s and spaces are stripped in Python (a regex that strips
them backtracks quadratically on a long line of ``" #"``, holding the GIL meanwhile)."""
_SETEXT = re.compile(r"^(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^[ \t]{0,3}(```|~~~)")


def parse_markdown(text: str) -> Parsed:
    """Headings (ATX and setext), fenced code and paragraphs; the source text is kept."""
    blocks: list[Block] = []
    title: str | None = None
    lines = text.split("\n")
    offsets = []
    position = 0
    for line in lines:
        offsets.append(position)
        position += len(line) + 1
    paragraph_start: int | None = None

    def close_paragraph(end: int) -> None:
        nonlocal paragraph_start
        if paragraph_start is not None:
            blocks.extend(paragraph_blocks(text, paragraph_start, end))
            paragraph_start = None

    i = 0
    while i < len(lines):
        line, start = lines[i], offsets[i]
        fence = _FENCE.match(line)
        if fence:
            close_paragraph(start)
            j = i + 1
            while j < len(lines) and not lines[j].lstrip().startswith(fence.group(1)):
                j += 1
            end = offsets[j] + len(lines[j]) if j < len(lines) else len(text)
            blocks.extend(_trimmed(text, start, end, "code"))
            i = j + 1
            continue
        atx = _ATX.match(line)
        next_line = lines[i + 1] if i + 1 < len(lines) else ""
        if atx or (line.strip() and paragraph_start is None and _SETEXT.match(next_line)):
            close_paragraph(start)
            level = len(atx.group(1)) if atx else (1 if next_line.lstrip()[0] == "=" else 2)
            heading = atx.group(2).rstrip(" \t#") if atx else line.strip()
            title = title or heading.strip()[:200] or None
            blocks.extend(_trimmed(text, start, start + len(line), "heading", level))
            i += 1 if atx else 2
            continue
        if not line.strip():
            close_paragraph(start)
        elif paragraph_start is None:
            paragraph_start = start
        i += 1
    close_paragraph(len(text))
    if title is None and blocks:
        title = text[blocks[0].start : blocks[0].end].split("\n", 1)[0][:200] or None
    return Parsed(text, blocks, title)


def heading_text(text: str, block: Block) -> str:
    """A heading block's words without Markdown markers."""
    raw = text[block.start : block.end].split("\n", 1)[0]
    atx = _ATX.match(raw)
    return (atx.group(2).rstrip(" \t#") if atx else raw).strip()


# -- HTML ------------------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    ]
)
_SKIP_TAGS = frozenset(["script", "style", "noscript", "template", "svg", "iframe", "object"])
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_SPACES = re.compile(r"\s+")


class _HtmlText(HTMLParser):
    """Collects blocks of text; whitespace is collapsed except inside ``<pre>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[tuple[str, BlockKind, int]] = []
        self.current: list[str] = []
        self.kind: BlockKind = "text"
        self.level = 0
        self.skip = 0
        self.pre = 0
        self.in_title = False
        self.title = ""

    def flush(self) -> None:
        raw = "".join(self.current)
        self.current = []
        text = raw.strip("\n") if self.pre else _SPACES.sub(" ", raw).strip()
        if text.strip():
            self.parts.append((text, self.kind, self.level))
        self.kind, self.level = "text", 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag in _HEADINGS:
            self.flush()
            self.kind, self.level = "heading", _HEADINGS[tag]
        elif tag == "pre":
            self.flush()
            self.pre += 1
            self.kind = "code"
        elif tag in _BLOCK_TAGS:
            self.flush()
        elif tag == "br":
            self.current.append("\n" if self.pre else " ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag in _HEADINGS or tag in _BLOCK_TAGS:
            self.flush()
        elif tag == "pre":
            self.flush()
            self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data
        elif not self.skip:
            self.current.append(data)


def parse_html(source: str) -> Parsed:
    collector = _HtmlText()
    try:
        collector.feed(source)
        collector.close()
    except Exception as exc:  # html.parser is lenient; this is a last resort
        raise CorruptDocument(f"unreadable HTML: {exc}") from None
    collector.flush()
    text, blocks = _join_blocks(collector.parts)
    title = _SPACES.sub(" ", collector.title).strip()[:200] or None
    if title is None:
        title = next((t[:200] for t, kind, _ in collector.parts if kind == "heading"), None)
    return Parsed(text, blocks, title)


def _join_blocks(parts: list[tuple[str, BlockKind, int]]) -> tuple[str, list[Block]]:
    pieces: list[str] = []
    blocks: list[Block] = []
    position = 0
    for text, kind, level in parts:
        if pieces:
            pieces.append("\n\n")
            position += 2
        pieces.append(text)
        blocks.append(Block(position, position + len(text), kind, level))
        position += len(text)
    return "".join(pieces), blocks


# -- PDF -------------------------------------------------------------------------------------

_MANY_BLANKS = re.compile(r"\n{3,}")
MAX_PDF_TEXT = 5_000_000
"""Characters of text taken from one PDF: a small file can inflate to far more."""


def parse_pdf(content: bytes) -> Parsed:
    """Text of every page (pypdf), pages separated by a blank line, paragraphs within."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(content))
        if reader.is_encrypted and not reader.decrypt(""):
            raise CorruptDocument("the PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
        metadata: Any = reader.metadata
        info_title = metadata.get("/Title") if metadata else None
    except CorruptDocument:
        raise
    except Exception as exc:  # pypdf raises many types for broken files
        raise CorruptDocument(f"unreadable PDF ({type(exc).__name__}: {exc})") from None
    cleaned = []
    budget = MAX_PDF_TEXT
    for page in pages:
        page = page[:budget].replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
        page = "\n".join(line.rstrip(" \t") for line in page.split("\n"))
        page = _MANY_BLANKS.sub("\n\n", page).strip()
        budget -= len(page)
        if page:
            cleaned.append(page)
        if budget <= 0:
            break
    text = "\n\n".join(cleaned)
    blocks = paragraph_blocks(text)
    title = str(info_title).strip()[:200] if info_title else None
    if not title and blocks:
        title = text[blocks[0].start : blocks[0].end].split("\n", 1)[0][:200] or None
    return Parsed(text, blocks, title)

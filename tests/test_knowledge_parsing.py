"""Parsing each format into normalised text and blocks, and chunking that follows structure:
every chunk span points at exactly its text, for every format."""

from __future__ import annotations

import itertools

import pytest

from workbench.knowledge import chunking, parsing
from workbench.knowledge.errors import CorruptDocument, EmptyDocument, UnsupportedType


def _pdf_string(text: str) -> bytes:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("latin-1")


def make_pdf(pages: list[list[str]], title: str | None = None) -> bytes:
    """A small valid PDF (Helvetica text, one line per string), built at test time."""
    objects: list[bytes] = [b"", b""]  # 1: catalog, 2: pages; filled below
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")  # 3
    kids = []
    for lines in pages:
        ops = b"".join(b"(" + _pdf_string(line) + b") Tj T* " for line in lines)
        stream = b"BT /F1 11 Tf 72 720 Td 14 TL " + ops + b"ET"
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        content_number = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]"
            b" /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % content_number
        )
        kids.append(len(objects))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    info = None
    if title:
        objects.append(b"<< /Title (" + _pdf_string(title) + b") >>")
        info = len(objects)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    trailer = b"<< /Size %d /Root 1 0 R" % (len(objects) + 1)
    if info:
        trailer += b" /Info %d 0 R" % info
    out += b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


MARKDOWN = """# Aerodynamics handbook

An introduction to lift.

## Wings

A wing produces lift by turning the flow.
It also produces drag.

```python
def lift(rho, v, s, cl):
    return 0.5 * rho * v**2 * s * cl
```

Setext heading
--------------

Final words about shock waves.
"""

HTML = """<!doctype html><html><head><title>Flutter notes</title>
<style>body { color: red }</style><script>var x = "<p>not text</p>";</script></head>
<body><h1>Flutter</h1><p>Flutter is a <b>dynamic</b> instability &amp; it
   can destroy a wing.</p><ul><li>bending</li><li>torsion</li></ul>
<h2>Tests</h2><pre>  wind tunnel
    at Mach 0.8</pre><p>Done&nbsp;here.</p></body></html>"""


def test_plain_text_keeps_the_source_and_finds_paragraphs() -> None:
    text = "First line\r\nof the first paragraph.\r\n\r\n  Second paragraph.  \n"
    parsed = parsing.parse(text.encode(), "text/plain")
    assert parsed.text == "First line\nof the first paragraph.\n\n  Second paragraph.  \n"
    assert [parsed.text[b.start : b.end] for b in parsed.blocks] == [
        "First line\nof the first paragraph.",
        "Second paragraph.",
    ]
    assert parsed.title == "First line"


def test_markdown_headings_code_and_paragraphs() -> None:
    parsed = parsing.parse(MARKDOWN.encode(), "text/markdown")
    assert parsed.text == MARKDOWN
    kinds = [(b.kind, b.level, parsed.text[b.start : b.end].split("\n")[0]) for b in parsed.blocks]
    assert kinds == [
        ("heading", 1, "# Aerodynamics handbook"),
        ("text", 0, "An introduction to lift."),
        ("heading", 2, "## Wings"),
        ("text", 0, "A wing produces lift by turning the flow."),
        ("code", 0, "```python"),
        ("heading", 2, "Setext heading"),
        ("text", 0, "Final words about shock waves."),
    ]
    assert parsed.title == "Aerodynamics handbook"


def test_html_text_without_scripts_styles_or_markup() -> None:
    parsed = parsing.parse(HTML.encode(), "text/html")
    assert parsed.title == "Flutter notes"
    assert parsed.text == (
        "Flutter\n\nFlutter is a dynamic instability & it can destroy a wing.\n\nbending\n\n"
        "torsion\n\nTests\n\n  wind tunnel\n    at Mach 0.8\n\nDone here."
    )
    assert "not text" not in parsed.text and "color" not in parsed.text
    assert [b.kind for b in parsed.blocks] == [
        "heading",
        "text",
        "text",
        "text",
        "heading",
        "code",
        "text",
    ]


def test_pdf_text_of_every_page() -> None:
    pdf = make_pdf(
        [["Supersonic flow", "over a flat plate."], ["Second page text."]], title="Plates"
    )
    parsed = parsing.parse(pdf, "application/pdf")
    assert parsed.title == "Plates"
    assert "Supersonic flow" in parsed.text and "Second page text." in parsed.text
    assert parsed.text.index("Supersonic") < parsed.text.index("Second page")


def test_a_corrupt_pdf_is_a_corrupt_document() -> None:
    good = make_pdf([["Some text."]])
    with pytest.raises(CorruptDocument, match="unreadable PDF"):
        parsing.parse(good[:9] + b"garbage" * 20, "application/pdf")
    with pytest.raises(CorruptDocument, match="does not start with %PDF-"):
        parsing.validate_upload(b"hello", "application/pdf")


def test_a_pdf_without_text_is_empty() -> None:
    with pytest.raises(EmptyDocument):
        parsing.parse(make_pdf([[]]), "application/pdf")


def test_types_are_recognised_by_header_or_name() -> None:
    assert parsing.canonical_type("text/markdown; charset=utf-8") == "text/markdown"
    assert parsing.canonical_type("application/octet-stream", "notes.MD") == "text/markdown"
    assert parsing.canonical_type(None, "page.htm") == "text/html"
    assert parsing.canonical_type("", "paper.pdf") == "application/pdf"
    with pytest.raises(UnsupportedType, match="cannot index image/png"):
        parsing.canonical_type("image/png", "x.png")
    with pytest.raises(UnsupportedType):
        parsing.canonical_type(None, "archive.zip")


def test_empty_and_undecodable_uploads() -> None:
    with pytest.raises(EmptyDocument):
        parsing.validate_upload(b"", "text/plain")
    with pytest.raises(EmptyDocument):
        parsing.validate_upload(b"  \n\t ", "text/markdown")
    with pytest.raises(EmptyDocument):
        parsing.validate_upload(b"<html><script>x</script></html>", "text/html")
    with pytest.raises(CorruptDocument, match="UTF-8"):
        parsing.validate_upload(b"\xff\xfe\x00bad", "text/plain")


# -- chunking -------------------------------------------------------------------------------

LONG = " ".join(f"Sentence number {i} talks about the boundary layer." for i in range(120))

SAMPLES = {
    "text/plain": (LONG + "\n\nA short closing paragraph.\n").encode(),
    "text/markdown": (MARKDOWN + "\n## Long section\n\n" + LONG + "\n").encode(),
    "text/html": HTML.replace("Done&nbsp;here.", LONG).encode(),
    "application/pdf": make_pdf(
        [[LONG[i : i + 90] for i in range(0, len(LONG), 90)], ["Last page."]]
    ),
}


@pytest.mark.parametrize("media_type", sorted(SAMPLES))
def test_every_chunk_span_points_at_its_text(media_type: str) -> None:
    parsed = parsing.parse(SAMPLES[media_type], media_type)
    spans = chunking.chunk(parsed, budget=64, overlap=16)
    assert len(spans) > 2
    covered = set()
    for span in spans:
        text = parsed.text[span.start : span.end]
        assert text and text == text.strip()
        assert chunking.count_tokens(text) <= 64 + 16
        covered.update(range(span.start, span.end))
    for block in parsed.blocks:  # nothing is lost: every block character is in some chunk
        assert set(range(block.start, block.end)) <= covered
    assert [s.ordinal for s in spans] == list(range(len(spans)))


def test_chunks_follow_headings_and_overlap() -> None:
    parsed = parsing.parse(SAMPLES["text/markdown"], "text/markdown")
    spans = chunking.chunk(parsed, budget=64, overlap=16)
    first = parsed.text[spans[0].start : spans[0].end]
    assert first.startswith("# Aerodynamics handbook") and "## Wings" not in first
    wings = next(s for s in spans if parsed.text[s.start : s.end].startswith("## Wings"))
    assert wings.heading == "Aerodynamics handbook > Wings"
    long_parts = [s for s in spans if s.heading.endswith("Long section")]
    assert len(long_parts) > 2
    for before, after in itertools.pairwise(long_parts):
        assert after.start < before.end  # the next chunk repeats the end of the previous one
        assert after.start > before.start


def test_a_sentence_longer_than_the_budget_is_cut_at_words() -> None:
    text = " ".join(f"word{i}" for i in range(500))
    spans = chunking.chunk(parsing.parse_text(text), budget=50, overlap=0)
    assert all(chunking.count_tokens(text[s.start : s.end]) <= 50 for s in spans)
    assert text[spans[0].start : spans[-1].end] == text


def test_chunk_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        chunking.chunk(parsing.parse_text("x"), budget=4)
    with pytest.raises(ValueError):
        chunking.chunk(parsing.parse_text("x"), budget=64, overlap=64)


def test_closing_hashes_are_stripped_from_headings() -> None:
    """Stripped in Python, not by a backtracking regex (which took 15 s on a line of 40,000
    " #" pairs and held the GIL all along)."""
    from workbench.knowledge.parsing import parse

    assert parse(b"# Title ##\n\ntext here", "text/markdown").title == "Title"
    long = parse(("# " + " #" * 40_000 + "x").encode(), "text/markdown")
    assert long.text.endswith("x")


def test_html_without_a_closing_head_keeps_its_body() -> None:
    from workbench.knowledge.parsing import parse

    html = b"<html><head><title>Guide</title><body><h1>Install</h1><p>Run the installer.</p>"
    parsed = parse(html, "text/html")
    assert "Run the installer." in parsed.text

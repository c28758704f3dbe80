"""Reading item imports: CSV with a header row, or JSON lines. Each record keeps its line
number so a rejected row can be named; what cannot be parsed at all is rejected, not fatal."""

from __future__ import annotations

import csv
import io
from typing import Any

import msgspec

from workbench.errors import BadRequest

MAX_ROWS = 10_000
CSV_TYPES = ("text/csv", "application/csv")
JSONL_TYPES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines")

Record = tuple[int, dict[str, Any]]


def parse(content: bytes, media_type: str) -> tuple[list[Record], list[dict[str, Any]]]:
    """Records and the lines rejected while parsing, for a CSV or JSON-lines body."""
    media_type = media_type.split(";")[0].strip().lower()
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("the import must be UTF-8 text") from None
    if media_type in CSV_TYPES:
        return _parse_csv(text)
    if media_type in JSONL_TYPES:
        return _parse_jsonl(text)
    raise BadRequest(
        f"unsupported import type {media_type!r}; send text/csv or application/x-ndjson"
    )


def parse_file_name(name: str) -> str:
    """The media type implied by a file name, for the CLI."""
    if name.endswith(".csv"):
        return CSV_TYPES[0]
    if name.endswith((".jsonl", ".ndjson")):
        return JSONL_TYPES[0]
    raise BadRequest(f"cannot tell the format of {name!r}: use a .csv or .jsonl file")


def _parse_csv(text: str) -> tuple[list[Record], list[dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "title" not in reader.fieldnames:
        raise BadRequest("the CSV needs a header row with at least a 'title' column")
    records: list[Record] = []
    rejected: list[dict[str, Any]] = []
    for index, row in enumerate(reader, start=2):
        if len(records) >= MAX_ROWS:
            raise BadRequest(f"at most {MAX_ROWS} rows per import")
        if None in row:
            rejected.append({"line": index, "reason": "more values than header columns"})
            continue
        record: dict[str, Any] = {}
        fields: dict[str, Any] = {}
        for key, value in row.items():
            if value in ("", None):
                continue
            if key.startswith("fields."):
                fields[key.removeprefix("fields.")] = value  # typed by the schema on import
            elif key == "labels":
                record["labels"] = [
                    v.strip() for v in value.replace(";", ",").split(",") if v.strip()
                ]
            else:
                record[key] = value
        if fields:
            record["fields"] = fields
        records.append((index, record))
    return records, rejected


def _parse_jsonl(text: str) -> tuple[list[Record], list[dict[str, Any]]]:
    records: list[Record] = []
    rejected: list[dict[str, Any]] = []
    for index, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if len(records) >= MAX_ROWS:
            raise BadRequest(f"at most {MAX_ROWS} rows per import")
        try:
            value = msgspec.json.decode(line)
        except msgspec.DecodeError as exc:
            rejected.append({"line": index, "reason": f"not JSON: {exc}"})
            continue
        if not isinstance(value, dict):
            rejected.append({"line": index, "reason": "each line must be a JSON object"})
            continue
        records.append((index, value))
    return records, rejected

"""Errors of the knowledge base. Those raised at upload render as problems; those raised by
the ingestion pipeline are recorded on the document by class name and message."""

from __future__ import annotations

from workbench.errors import Unprocessable, WorkbenchError


class PayloadTooLarge(WorkbenchError):
    """The upload is larger than ``max_body_bytes``."""

    status = 413
    title = "Request body too large"
    type_slug = "payload-too-large"


class UnsupportedType(WorkbenchError):
    """The upload is of a media type the knowledge base cannot read."""

    status = 415
    title = "Unsupported media type"
    type_slug = "unsupported-media-type"


class EmptyDocument(Unprocessable):
    """The document has no text to index."""

    type_slug = "empty-document"


class CorruptDocument(Unprocessable):
    """The bytes do not decode as the declared type (a broken PDF, text that is not UTF-8)."""

    type_slug = "corrupt-document"


PERMANENT_FAILURES: tuple[type[Exception], ...] = (UnsupportedType, EmptyDocument, CorruptDocument)
"""Failures that retrying the same bytes cannot fix: the document goes to the dead letters at
once instead of burning its retries."""


class StaleVersion(Exception):
    """A newer version arrived (or the document was deleted) while a job worked on an older
    one; the job's result is dropped and the newer version's job does the work."""

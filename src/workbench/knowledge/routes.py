"""HTTP for the knowledge base: thin handlers that turn requests into ``Knowledge`` calls."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter

from workbench.auth.models import Principal
from workbench.errors import BadRequest
from workbench.knowledge.models import (
    Chunk,
    DeadLetter,
    Document,
    DocumentPage,
    DocumentPatch,
    DocumentText,
    EmbedderDescription,
    EmbedderSwitch,
    Feedback,
    FeedbackCreate,
    IndexInfo,
    IngestReport,
    SearchRequest,
    SearchResponse,
)
from workbench.knowledge.service import Knowledge
from workbench.runtime import Runtime

READ = {"permission": "knowledge.read"}
WRITE = {"permission": "knowledge.write"}
WorkspaceId = FromPath[str]
DocumentId = Annotated[str, PathParameter(max_length=64)]
Caller = NamedDependency[Principal]
Rt = NamedDependency[Runtime]
PageSize = Annotated[int, QueryParameter(ge=1, le=200)]
OptionalText = Annotated[str | None, QueryParameter(max_length=500)]
TextList = Annotated[list[str] | None, QueryParameter()]
JSONL_TYPES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines")
BASE = "/api/v1/workspaces/{workspace_id:str}"


class DocumentCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A document sent as JSON rather than as a file."""

    text: str
    title: str | None = None
    mime_type: str = "text/plain"
    tags: list[str] = []
    metadata: dict[str, Any] = {}
    external_id: str | None = None


def _service(runtime: Runtime, workspace_id: str, principal: Principal) -> Knowledge:
    return Knowledge(runtime, workspace_id, principal.user_id, principal.role)


def _media_type(request: Request[Any, Any, Any]) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _upload(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The document and its fields from a raw body (fields in the query string), a
    multipart form (a ``file`` part plus fields) or a JSON body."""
    media = _media_type(request)
    query = request.query_params
    fields: dict[str, Any] = {
        "title": query.get("title"),
        "tags": [t for value in query.getall("tags", []) for t in value.split(",") if t],
        "external_id": query.get("external_id"),
        "filename": query.get("filename"),
        "metadata": {},
    }
    if media == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise BadRequest("a multipart upload needs a 'file' part")
        fields.update(
            content=await upload.read(),
            media_type=upload.content_type,
            filename=upload.filename or fields["filename"],
        )
        for name in ("title", "external_id"):
            if isinstance(form.get(name), str) and form.get(name):
                fields[name] = form.get(name)
        fields["tags"] += [
            t for v in form.getall("tags", []) if isinstance(v, str) for t in v.split(",") if t
        ]
        if isinstance(form.get("metadata"), str) and form.get("metadata"):
            fields["metadata"] = _json_object(form.get("metadata"))
        return fields
    body = await request.body()
    if media == "application/json":
        try:
            data = msgspec.json.decode(body, type=DocumentCreate)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise BadRequest(f"invalid document: {exc}") from None
        fields.update(
            content=data.text.encode(),
            media_type=data.mime_type,
            title=data.title or fields["title"],
            tags=fields["tags"] + data.tags,
            metadata=data.metadata,
            external_id=data.external_id or fields["external_id"],
        )
        return fields
    fields.update(content=body, media_type=media)
    return fields


def _json_object(raw: Any) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(str(raw))
    except msgspec.DecodeError:
        raise BadRequest("metadata must be a JSON object") from None
    if not isinstance(value, dict):
        raise BadRequest("metadata must be a JSON object")
    return value


def parse_jsonl(content: bytes) -> tuple[list[tuple[int, dict[str, Any]]], list[dict[str, Any]]]:
    """JSON-lines records with their line numbers, and the lines that are not JSON objects."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("JSON lines must be UTF-8") from None
    records: list[tuple[int, dict[str, Any]]] = []
    rejected: list[dict[str, Any]] = []
    # only "\n" ends a record: U+2028 and friends are legal inside JSON strings
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = msgspec.json.decode(line)
        except msgspec.DecodeError as exc:
            rejected.append({"line": number, "reason": f"not JSON: {exc}"})
            continue
        if not isinstance(value, dict):
            rejected.append({"line": number, "reason": "each line must be a JSON object"})
            continue
        records.append((number, value))
    return records, rejected


class DocumentController(Controller):
    path = f"{BASE}/documents"
    tags = ["knowledge"]

    @post("/", opt=WRITE, summary="Add a document (text, Markdown, HTML or PDF)")
    async def add_document(
        self,
        workspace_id: WorkspaceId,
        request: Request[Any, Any, Any],
        principal: Caller,
        runtime: Rt,
    ) -> Response[Document]:
        fields = await _upload(request)

        def run() -> tuple[Document, str]:
            return _service(runtime, workspace_id, principal).add(
                fields["content"],
                media_type=fields["media_type"],
                filename=fields["filename"],
                title=fields["title"],
                tags=fields["tags"],
                metadata=fields["metadata"],
                external_id=fields["external_id"],
            )

        document, outcome = await anyio.to_thread.run_sync(run)
        location = f"{BASE}/documents/{document.id}".replace("{workspace_id:str}", workspace_id)
        headers = {"Location": location, "X-Ingest-Outcome": outcome}
        return Response(document, status_code=201 if outcome == "created" else 200, headers=headers)

    @post(
        "/bulk", opt=WRITE, status_code=200, summary="Add documents from JSON lines (BEIR corpus)"
    )
    async def add_bulk(
        self,
        workspace_id: WorkspaceId,
        request: Request[Any, Any, Any],
        principal: Caller,
        runtime: Rt,
    ) -> IngestReport:
        if _media_type(request) not in JSONL_TYPES:
            raise BadRequest("send JSON lines as application/x-ndjson")
        body = await request.body()

        def run() -> IngestReport:
            records, rejected = parse_jsonl(body)
            report = _service(runtime, workspace_id, principal).add_records(records)
            report.rejected = sorted(rejected + report.rejected, key=lambda r: r["line"])
            return report

        return await anyio.to_thread.run_sync(run)

    @get("/", opt=READ, sync_to_thread=True, summary="List documents")
    def list_documents(
        self,
        workspace_id: WorkspaceId,
        principal: Caller,
        runtime: Rt,
        status: OptionalText = None,
        tag: OptionalText = None,
        cursor: OptionalText = None,
        limit: PageSize = 50,
    ) -> DocumentPage:
        return _service(runtime, workspace_id, principal).list_documents(
            status=status, tag=tag, cursor=cursor, limit=limit
        )

    @get(
        "/{document_id:str}", opt=READ, sync_to_thread=True, summary="Get a document and its status"
    )
    def get_document(
        self, workspace_id: WorkspaceId, document_id: DocumentId, principal: Caller, runtime: Rt
    ) -> Document:
        return _service(runtime, workspace_id, principal).get(document_id)

    @patch(
        "/{document_id:str}", opt=WRITE, sync_to_thread=True, summary="Change title, tags, metadata"
    )
    def patch_document(
        self,
        workspace_id: WorkspaceId,
        document_id: DocumentId,
        data: JSONBody[DocumentPatch],
        principal: Caller,
        runtime: Rt,
    ) -> Document:
        return _service(runtime, workspace_id, principal).update(document_id, data)

    @delete("/{document_id:str}", opt=WRITE, sync_to_thread=True, summary="Delete a document")
    def delete_document(
        self, workspace_id: WorkspaceId, document_id: DocumentId, principal: Caller, runtime: Rt
    ) -> None:
        _service(runtime, workspace_id, principal).delete(document_id)

    @put("/{document_id:str}/content", opt=WRITE, summary="Upload a new version")
    async def replace_content(
        self,
        workspace_id: WorkspaceId,
        document_id: DocumentId,
        request: Request[Any, Any, Any],
        principal: Caller,
        runtime: Rt,
    ) -> Response[Document]:
        fields = await _upload(request)

        def run() -> tuple[Document, str]:
            return _service(runtime, workspace_id, principal).replace_content(
                document_id,
                fields["content"],
                media_type=fields["media_type"],
                filename=fields["filename"],
            )

        document, outcome = await anyio.to_thread.run_sync(run)
        return Response(document, status_code=200, headers={"X-Ingest-Outcome": outcome})

    @get(
        "/{document_id:str}/text",
        opt=READ,
        sync_to_thread=True,
        summary="The text chunk spans point into",
    )
    def document_text(
        self,
        workspace_id: WorkspaceId,
        document_id: DocumentId,
        principal: Caller,
        runtime: Rt,
        version: Annotated[int | None, QueryParameter(ge=1, le=2**62)] = None,
    ) -> DocumentText:
        return _service(runtime, workspace_id, principal).text(document_id, version)

    @get(
        "/{document_id:str}/chunks", opt=READ, sync_to_thread=True, summary="The searchable chunks"
    )
    def document_chunks(
        self, workspace_id: WorkspaceId, document_id: DocumentId, principal: Caller, runtime: Rt
    ) -> list[Chunk]:
        return _service(runtime, workspace_id, principal).chunks(document_id)

    @post(
        "/{document_id:str}/retry",
        opt=WRITE,
        sync_to_thread=True,
        status_code=202,
        summary="Retry ingestion",
    )
    def retry_document(
        self, workspace_id: WorkspaceId, document_id: DocumentId, principal: Caller, runtime: Rt
    ) -> Document:
        return _service(runtime, workspace_id, principal).retry(document_id)


class SearchController(Controller):
    path = f"{BASE}/search"
    tags = ["knowledge"]

    @post("/", opt=READ, sync_to_thread=True, status_code=200, summary="Search the knowledge base")
    def search(
        self,
        workspace_id: WorkspaceId,
        data: JSONBody[SearchRequest],
        principal: Caller,
        runtime: Rt,
    ) -> SearchResponse:
        return _service(runtime, workspace_id, principal).search(data)

    @get("/", opt=READ, sync_to_thread=True, summary="Search the knowledge base (query string)")
    def search_get(
        self,
        workspace_id: WorkspaceId,
        principal: Caller,
        runtime: Rt,
        q: Annotated[str, QueryParameter(min_length=1, max_length=2000)],
        mode: Annotated[str, QueryParameter(max_length=10)] = "hybrid",
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 10,
        tag: TextList = None,
        document_id: TextList = None,
    ) -> SearchResponse:
        raw = {
            "query": q,
            "mode": mode,
            "limit": limit,
            "tags": tag or [],
            "document_ids": document_id or [],
        }
        try:
            request = msgspec.convert(raw, SearchRequest)
        except msgspec.ValidationError as exc:
            raise BadRequest(f"invalid search: {exc}") from None
        return _service(runtime, workspace_id, principal).search(request)

    @post("/feedback", opt=READ, sync_to_thread=True, summary="Say whether a hit helped")
    def add_feedback(
        self,
        workspace_id: WorkspaceId,
        data: JSONBody[FeedbackCreate],
        principal: Caller,
        runtime: Rt,
    ) -> Feedback:
        return _service(runtime, workspace_id, principal).feedback(data)

    @get("/feedback", opt=READ, sync_to_thread=True, summary="Feedback given on hits")
    def list_feedback(
        self,
        workspace_id: WorkspaceId,
        principal: Caller,
        runtime: Rt,
        document_id: OptionalText = None,
        limit: PageSize = 100,
    ) -> list[Feedback]:
        return _service(runtime, workspace_id, principal).feedback_list(
            document_id=document_id, limit=limit
        )


class KnowledgeController(Controller):
    path = f"{BASE}/knowledge"
    tags = ["knowledge"]

    @get(
        "/dead-letters", opt=READ, sync_to_thread=True, summary="Documents whose ingestion gave up"
    )
    def dead_letters(
        self,
        workspace_id: WorkspaceId,
        principal: Caller,
        runtime: Rt,
        include_retried: Annotated[bool, QueryParameter()] = False,
        limit: PageSize = 100,
    ) -> list[DeadLetter]:
        return _service(runtime, workspace_id, principal).dead_letters(
            include_retried=include_retried, limit=limit
        )

    @get("/embedders", opt=READ, sync_to_thread=True, summary="Embedders available")
    def embedders(
        self, workspace_id: WorkspaceId, principal: Caller, runtime: Rt
    ) -> list[EmbedderDescription]:
        return _service(runtime, workspace_id, principal).embedders()

    @get(
        "/indexes",
        opt=READ,
        sync_to_thread=True,
        summary="Vector indexes (active, building, retired)",
    )
    def indexes(self, workspace_id: WorkspaceId, principal: Caller, runtime: Rt) -> list[IndexInfo]:
        return _service(runtime, workspace_id, principal).indexes()

    @put(
        "/embedder", opt=WRITE, sync_to_thread=True, status_code=202, summary="Switch the embedder"
    )
    def switch_embedder(
        self,
        workspace_id: WorkspaceId,
        data: JSONBody[EmbedderSwitch],
        principal: Caller,
        runtime: Rt,
    ) -> IndexInfo:
        return _service(runtime, workspace_id, principal).switch_embedder(data.embedder)

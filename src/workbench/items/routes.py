"""HTTP for work items: thin handlers that turn requests into ``Items`` calls."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody, PathParameter, QueryParameter

from workbench.auth.models import Principal
from workbench.errors import BadRequest
from workbench.items import importer
from workbench.items.models import (
    ActivityEntry,
    Comment,
    CommentCreate,
    FieldDef,
    FieldSchema,
    ImportReport,
    Item,
    ItemCreate,
    ItemPage,
    ItemPatch,
    ItemQuery,
    Transition,
    View,
    ViewCreate,
    ViewPatch,
)
from workbench.items.service import Items, resolve_expected_version
from workbench.runtime import Runtime

READ = {"permission": "items.read"}
WRITE = {"permission": "items.write"}
IfMatch = Annotated[str | None, HeaderParameter(name="If-Match", required=False, max_length=40)]
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(name="Idempotency-Key", required=False, min_length=1, max_length=200),
]
WorkspaceId = FromPath[str]
ItemId = Annotated[str, PathParameter(max_length=64)]
ViewId = Annotated[str, PathParameter(max_length=64)]
Caller = NamedDependency[Principal]
Rt = NamedDependency[Runtime]
After = Annotated[int, QueryParameter(ge=0)]
PageSize = Annotated[int, QueryParameter(ge=1, le=200)]
OptionalText = Annotated[str | None, QueryParameter(max_length=200)]
TextList = Annotated[list[str] | None, QueryParameter()]


def _service(runtime: Runtime, workspace_id: str, principal: Principal) -> Items:
    return Items(runtime, workspace_id, principal.user_id, principal.role)


def _with_etag(item: Item, status_code: int = 200, **headers: str) -> Response[Item]:
    return Response(item, status_code=status_code, headers={"ETag": f'"{item.version}"', **headers})


def parse_if_match(value: str | None) -> int | None:
    """``"3"`` or ``W/"3"`` -> 3. Anything else is a 400: a version we cannot read must not
    be mistaken for no version at all."""
    if value is None:
        return None
    raw = value.strip().removeprefix("W/").strip('"')
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise BadRequest(f'If-Match must be an ETag of this API, like "3"; got {value!r}')
    return int(raw)


class ItemController(Controller):
    path = "/api/v1/workspaces/{workspace_id:str}/items"
    tags = ["items"]

    @post("/", opt=WRITE, sync_to_thread=True, summary="Create an item")
    def create_item(
        self,
        workspace_id: WorkspaceId,
        data: JSONBody[ItemCreate],
        principal: Caller,
        runtime: Rt,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Item]:
        item, replayed = _service(runtime, workspace_id, principal).create(
            data, idempotency_key=idempotency_key
        )
        extra = {"Idempotent-Replayed": "true"} if replayed else {}
        return _with_etag(
            item,
            201,
            Location=f"{self.path}/{item.id}".replace("{workspace_id:str}", workspace_id),
            **extra,
        )

    @get("/", opt=READ, sync_to_thread=True, summary="List items")
    def list_items(
        self,
        workspace_id: WorkspaceId,
        principal: Caller,
        runtime: Rt,
        status: TextList = None,
        assignee: OptionalText = None,
        label: OptionalText = None,
        priority: TextList = None,
        due_after: OptionalText = None,
        due_before: OptionalText = None,
        q: OptionalText = None,
        include_archived: Annotated[bool, QueryParameter()] = False,
        sort: Annotated[str, QueryParameter(max_length=20)] = "created",
        direction: Annotated[str, QueryParameter(max_length=10)] = "desc",
        cursor: Annotated[str | None, QueryParameter(max_length=500)] = None,
        limit: PageSize = 50,
        view: Annotated[str | None, QueryParameter(max_length=64)] = None,
    ) -> ItemPage:
        service = _service(runtime, workspace_id, principal)
        if view is not None:
            query = service.get_view(view).query
        else:
            raw: dict[str, Any] = {
                "status": status or [],
                "assignee": assignee,
                "label": label,
                "priority": priority or [],
                "due_after": due_after,
                "due_before": due_before,
                "q": q,
                "include_archived": include_archived,
                "sort": sort,
                "direction": direction,
            }
            try:
                query = msgspec.convert(raw, ItemQuery)
            except msgspec.ValidationError as exc:
                raise BadRequest(f"invalid filter: {exc}") from None
        return service.list_items(query, cursor=cursor, limit=limit)

    @post("/import", opt=WRITE, summary="Import items from CSV or JSON lines", status_code=200)
    async def import_items(
        self,
        workspace_id: WorkspaceId,
        request: Request[Any, Any, Any],
        principal: Caller,
        runtime: Rt,
    ) -> ImportReport:
        body = await request.body()
        media_type = request.headers.get("content-type", "")

        def run() -> ImportReport:
            records, rejected = importer.parse(body, media_type)
            accepted, refused = _service(runtime, workspace_id, principal).import_rows(records)
            all_rejected = sorted(rejected + refused, key=lambda r: r["line"])
            return ImportReport(accepted=len(accepted), rejected=all_rejected, item_ids=accepted)

        return await anyio.to_thread.run_sync(run)

    @get("/{item_id:str}", opt=READ, sync_to_thread=True, summary="Get an item")
    def get_item(
        self,
        workspace_id: WorkspaceId,
        item_id: ItemId,
        principal: Caller,
        runtime: Rt,
    ) -> Response[Item]:
        return _with_etag(_service(runtime, workspace_id, principal).get(item_id))

    @patch("/{item_id:str}", opt=WRITE, sync_to_thread=True, summary="Change an item")
    def patch_item(
        self,
        workspace_id: WorkspaceId,
        item_id: ItemId,
        data: JSONBody[ItemPatch],
        principal: Caller,
        runtime: Rt,
        if_match: IfMatch = None,
    ) -> Response[Item]:
        item = _service(runtime, workspace_id, principal).update(
            item_id, data, expected_version=parse_if_match(if_match)
        )
        return _with_etag(item)

    @post(
        "/{item_id:str}/transitions",
        opt=WRITE,
        sync_to_thread=True,
        status_code=200,
        summary="Move an item to another state",
    )
    def transition_item(
        self,
        workspace_id: WorkspaceId,
        item_id: ItemId,
        data: JSONBody[Transition],
        principal: Caller,
        runtime: Rt,
        if_match: IfMatch = None,
    ) -> Response[Item]:
        header = parse_if_match(if_match)
        item = _service(runtime, workspace_id, principal).transition(
            item_id, data.to, expected_version=resolve_expected_version(header, data.version)
        )
        return _with_etag(item)

    @get("/{item_id:str}/timeline", opt=READ, sync_to_thread=True, summary="Item activity")
    def item_timeline(
        self,
        workspace_id: WorkspaceId,
        item_id: ItemId,
        principal: Caller,
        runtime: Rt,
        after: After = 0,
        limit: PageSize = 100,
    ) -> list[ActivityEntry]:
        return _service(runtime, workspace_id, principal).timeline(item_id, after, limit)

    @post("/{item_id:str}/comments", opt=WRITE, sync_to_thread=True, summary="Comment")
    def add_comment(
        self,
        workspace_id: WorkspaceId,
        item_id: ItemId,
        data: JSONBody[CommentCreate],
        principal: Caller,
        runtime: Rt,
    ) -> Comment:
        return _service(runtime, workspace_id, principal).comment(item_id, data)

    @get("/{item_id:str}/comments", opt=READ, sync_to_thread=True, summary="List comments")
    def list_comments(
        self,
        workspace_id: WorkspaceId,
        item_id: ItemId,
        principal: Caller,
        runtime: Rt,
        after: After = 0,
        limit: PageSize = 100,
    ) -> list[Comment]:
        return _service(runtime, workspace_id, principal).comments(item_id, after, limit)


class ItemFieldController(Controller):
    path = "/api/v1/workspaces/{workspace_id:str}/item-fields"
    tags = ["items"]

    @get("/", opt=READ, sync_to_thread=True, summary="The custom field schema")
    def get_fields(self, workspace_id: WorkspaceId, principal: Caller, runtime: Rt) -> FieldSchema:
        return FieldSchema(fields=_service(runtime, workspace_id, principal).field_schema())

    @put(
        "/",
        opt={"permission": "workspace.manage"},
        sync_to_thread=True,
        summary="Replace the custom field schema",
    )
    def put_fields(
        self,
        workspace_id: WorkspaceId,
        data: JSONBody[FieldSchema],
        principal: Caller,
        runtime: Rt,
    ) -> FieldSchema:
        defs: list[FieldDef] = _service(runtime, workspace_id, principal).set_field_schema(
            data.fields
        )
        return FieldSchema(fields=defs)


class ViewController(Controller):
    path = "/api/v1/workspaces/{workspace_id:str}/views"
    tags = ["views"]

    @post("/", opt={"permission": "views.write"}, sync_to_thread=True, summary="Save a view")
    def create_view(
        self,
        workspace_id: WorkspaceId,
        data: JSONBody[ViewCreate],
        principal: Caller,
        runtime: Rt,
    ) -> View:
        return _service(runtime, workspace_id, principal).create_view(data)

    @get("/", opt=READ, sync_to_thread=True, summary="My views and shared views")
    def list_views(self, workspace_id: WorkspaceId, principal: Caller, runtime: Rt) -> list[View]:
        return _service(runtime, workspace_id, principal).views()

    @get("/{view_id:str}", opt=READ, sync_to_thread=True, summary="Get a view")
    def get_view(
        self,
        workspace_id: WorkspaceId,
        view_id: ViewId,
        principal: Caller,
        runtime: Rt,
    ) -> View:
        return _service(runtime, workspace_id, principal).get_view(view_id)

    @patch(
        "/{view_id:str}",
        opt={"permission": "views.write"},
        sync_to_thread=True,
        summary="Change a view",
    )
    def patch_view(
        self,
        workspace_id: WorkspaceId,
        view_id: ViewId,
        data: JSONBody[ViewPatch],
        principal: Caller,
        runtime: Rt,
    ) -> View:
        return _service(runtime, workspace_id, principal).update_view(view_id, data)

    @delete(
        "/{view_id:str}",
        opt={"permission": "views.write"},
        sync_to_thread=True,
        summary="Delete a view",
    )
    def delete_view(
        self,
        workspace_id: WorkspaceId,
        view_id: ViewId,
        principal: Caller,
        runtime: Rt,
    ) -> None:
        _service(runtime, workspace_id, principal).delete_view(view_id)

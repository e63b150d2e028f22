"""Export routes: manage exports, run one now, and the exports of a segment.

Every change is a control command (`streams.control.exports`) sent through the API's gateway
and needs the bearer token; reads come from the registry (`state.export_registry`). Secrets
of destinations are always masked ("***"): a PUT may send "***" back to keep a secret.
"""

from __future__ import annotations

from typing import Any

from state import KeySpace, RegistryStore
from state.export_registry import ExportStore

from ..control.exports import export_view
from .api import ApiBase, Page
from .auth import require_token
from .errors import ApiError
from .requests import json_response

__all__ = ["ExportViews", "register"]


class ExportViews:
    def __init__(self, api: ApiBase, store: ExportStore) -> None:
        self.api = api
        self.store = store
        self.registry = RegistryStore(store.redis, KeySpace(api.settings.key_prefix))

    # -- reads ----------------------------------------------------------------------------
    async def list_exports(self, web: Any, request: Any) -> Any:
        require_token(self.api.settings, request, mutation=False)
        found = await self.store.exports()
        return json_response(web, {"exports": [export_view(e) for e in found]})

    async def show(self, web: Any, request: Any, id: str) -> Any:
        require_token(self.api.settings, request, mutation=False)
        export = await self.store.export(id)
        if export is None:
            raise ApiError(404, "not_found", f"no export {id!r}", "export_id")
        body = export_view(export)
        if export.last_job is not None:
            job = await self.registry.job(export.last_job)
            body["last_run"] = None if job is None else {"job_id": job.job_id, "status": job.status}
        return json_response(web, body)

    async def of_segment(self, web: Any, request: Any, id: str) -> Any:
        require_token(self.api.settings, request, mutation=False)
        if await self.api.reads.segment(id) is None:
            raise ApiError(404, "not_found", f"no segment {id!r}", "segment_id")
        containing: list[dict[str, Any]] = []
        not_containing: list[dict[str, Any]] = []
        for export in await self.store.exports():
            (containing if id in export.segment_ids else not_containing).append(export_view(export))
        body = {"segment_id": id, "containing": containing, "not_containing": not_containing}
        return json_response(web, body)

    # -- changes --------------------------------------------------------------------------
    async def create(self, web: Any, request: Any) -> Any:
        body = await self.api.body(request)
        export = body["export"] if isinstance(body.get("export"), dict) else body
        result = await self.api.command(request, {"command": "create_export", "export": export})
        return json_response(web, result, status=201)

    async def update(self, web: Any, request: Any, id: str) -> Any:
        body = await self.api.body(request)
        export = body["export"] if isinstance(body.get("export"), dict) else body
        body_id = export.setdefault("id", id)
        if body_id != id:
            raise ApiError(
                400,
                "id_mismatch",
                f"the definition's id {body_id!r} differs from the URL's {id!r}; an export's "
                "id cannot change: duplicate it under the new id instead",
                "export.id",
            )
        result = await self.api.command(request, {"command": "update_export", "export": export})
        return json_response(web, result)

    async def delete(self, web: Any, request: Any, id: str) -> Any:
        result = await self.api.command(request, {"command": "delete_export", "export_id": id})
        return json_response(web, result)

    async def duplicate(self, web: Any, request: Any, id: str) -> Any:
        body = await self.api.body(request)
        command = {"command": "duplicate_export", "export_id": id, "new_id": body.get("new_id")}
        if body.get("name") is not None:
            command["name"] = body["name"]
        return json_response(web, await self.api.command(request, command), status=201)

    async def run(self, web: Any, request: Any, id: str) -> Any:
        wait = request.query.get("wait", "") in ("1", "true", "yes")
        command = {"command": "export", "export_id": id, "wait": wait}
        return json_response(web, await self.api.command(request, command), status=202)

    async def add_segment(self, web: Any, request: Any, id: str) -> Any:
        body = await self.api.body(request)
        command = {"command": "add_export_segment", "export_id": id,
                   "segment_id": body.get("segment_id")}  # fmt: skip
        return json_response(web, await self.api.command(request, command))

    async def remove_segment(self, web: Any, request: Any, id: str, segment_id: str) -> Any:
        command = {"command": "remove_export_segment", "export_id": id, "segment_id": segment_id}
        return json_response(web, await self.api.command(request, command))


def register(page: Page, api: ApiBase, store: ExportStore) -> ExportViews:
    """Add the routes through `page(path, name, **method_handlers)`."""
    views = ExportViews(api, store)
    page("/exports", "exports", get=views.list_exports, post=views.create)
    page("/exports/{id}", "export", get=views.show, put=views.update, delete=views.delete)
    page("/exports/{id}/duplicate", "export_duplicate", post=views.duplicate)
    page("/exports/{id}/run", "export_run", post=views.run)
    page("/exports/{id}/segments", "export_segments", post=views.add_segment)
    page(
        "/exports/{id}/segments/{segment_id}",
        "export_segment",
        delete=views.remove_segment,
    )
    page("/segments/{id}/exports", "segment_exports", get=views.of_segment)
    return views

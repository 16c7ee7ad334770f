"""HTTP handlers for what hangs off one record: attachments, notes, and lead conversion.

- ``POST /{Module}/{id}/Attachments``: multipart part ``file`` (streamed to disk), or form field / query
  parameter ``attachmentUrl`` (a link; a urlencoded body works too) → 200 ``data[{code: SUCCESS, details:
  {id, Created_Time, ...}, message: "attachment uploaded successfully"}]``. Over 20 MB: 400
  ``FILE_SIZE_MORE_THAN_ALLOWED_SIZE`` [L].
- ``GET /{Module}/{id}/Attachments`` (``page``/``per_page``; ``fields`` optional here [L]) → ``data[]`` + ``info``,
  204 when none. ``GET .../Attachments/{att_id}`` → the bytes, ``Content-Disposition: attachment;
  filename="<ascii>"; filename*=UTF-8''<name>``. ``DELETE .../Attachments/{att_id}``.
- ``POST /{Module}/{id}/Notes`` ``{"data":[{"Note_Title","Note_Content"}]}`` → the insert answer of ``Notes``
  records whose ``Parent_Id`` is that record; ``GET /{Module}/{id}/Notes`` lists them (newest first).
- A parent that does not exist (or is deleted): 400 ``INVALID_DATA`` "the related id given seems to be invalid".
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from infra.simulators.common.requestlog import notes
from infra.simulators.zoho.api import _json_object, _module, _records, _returned, _sim, respond
from infra.simulators.zoho.attachments import MAX_ATTACHMENT_BYTES, Attachment
from infra.simulators.zoho.errors import ZohoApiError, invalid_url, required_param
from infra.simulators.zoho.gate import principal_of
from infra.simulators.zoho.multipart import MultipartError, TooLarge, boundary_of, parse_multipart
from infra.simulators.zoho.reader import MAX_PER_PAGE, _int_param
from infra.simulators.zoho.store import StoredRecord
from infra.simulators.zoho.timefmt import now_ms


def _parent(request: Request) -> StoredRecord:
    module = _module(request)
    record_id = request.path_params["record_id"]
    record = _sim(request).store.get(module.api_name, record_id) if record_id.isdigit() else None
    if record is None:
        raise ZohoApiError(400, "INVALID_DATA", "the related id given seems to be invalid", {"id": record_id})
    return record


def _display(request: Request, record: StoredRecord) -> Any:
    field = _sim(request).modules[record.module].display_field
    return record.data.get(field) if field else None


async def _upload(request: Request, record: StoredRecord) -> Response:
    sim = _sim(request)
    user = principal_of(request.scope).user
    link = request.query_params.get("attachmentUrl")
    content_type = request.headers.get("content-type", "")
    upload_path: Path | None = None
    file_name, size, kind = "", 0, "Attachment"
    if content_type.lower().startswith("multipart/form-data"):
        holder: dict[str, Any] = {}

        def open_sink(part: Any) -> Any:
            if part.name != "file" or "handle" in holder:
                return _Discard()  # only the first part named "file" is the attachment
            holder["handle"] = sim.attachments.temp_file()
            holder["part"] = part
            return holder["handle"]

        try:
            form = await parse_multipart(
                request.stream(), boundary_of(content_type), open_sink, max_file_bytes=MAX_ATTACHMENT_BYTES
            )
        except TooLarge as exc:
            _discard(holder)
            raise ZohoApiError(
                400, "FILE_SIZE_MORE_THAN_ALLOWED_SIZE", "file size exceeds the allowed limit",
                {"limit": MAX_ATTACHMENT_BYTES},
            ) from exc  # fmt: skip
        except MultipartError as exc:
            _discard(holder)
            raise ZohoApiError(400, "INVALID_DATA", f"invalid multipart body: {exc}", {}) from exc
        link = link or form.fields.get("attachmentUrl")
        if "handle" in holder:
            holder["handle"].close()
            upload_path = Path(holder["handle"].name)
            file_name, size = holder["part"].filename or "file", holder["part"].size
    elif content_type.lower().startswith("application/x-www-form-urlencoded"):
        link = link or dict(parse_qsl((await request.body()).decode("utf-8", "replace"))).get("attachmentUrl")
    if upload_path is None:
        if not link:
            raise required_param("file")
        kind, file_name = "Link URL", link
    attachment = Attachment(
        id=sim.store.next_id(), module=record.module, record_id=record.id,
        parent_name=_display(request, record), file_name=file_name, size=size, kind=kind,
        link_url=link if kind == "Link URL" else None,
        content_type=mimetypes.guess_type(file_name)[0] if kind == "Attachment" else None,
        created_ms=now_ms(), created_by=user.ref(), owner=user.owner(),
    )  # fmt: skip
    sim.attachments.add(attachment, upload_path)
    created = sim.clock.format(attachment.created_ms)
    details = {
        "Modified_Time": created, "Modified_By": user.ref(), "Created_Time": created,
        "id": attachment.id, "Created_By": user.ref(),
    }  # fmt: skip
    body = {
        "data": [
            {
                "code": "SUCCESS",
                "details": details,
                "message": "attachment uploaded successfully",
                "status": "success",
            }
        ]
    }
    return JSONResponse(body)


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)


def _discard(holder: dict[str, Any]) -> None:
    handle = holder.get("handle")
    if handle is not None:
        handle.close()
        Path(handle.name).unlink(missing_ok=True)


async def attachments(request: Request) -> Response:
    record = _parent(request)
    sim = _sim(request)
    if request.method == "POST":
        return await _upload(request, record)
    page = _int_param(request.query_params, "page", 1, 1)
    per_page = _int_param(request.query_params, "per_page", MAX_PER_PAGE, 1, MAX_PER_PAGE)
    rows = sim.attachments.list(record.module, record.id, offset=(page - 1) * per_page, limit=per_page + 1)
    fields = sim.reader.parse_fields(request.query_params, required=False)
    data = [a.view(sim.clock) for a in rows[:per_page]]
    if fields:
        data = [{"id": d["id"], **{f: d[f] for f in fields if f in d}} for d in data]
    body = (
        {"data": data, "info": {"per_page": per_page, "count": len(data), "page": page,
                                "more_records": len(rows) > per_page}}
        if data
        else None
    )  # fmt: skip
    _returned(request, body)
    return respond(body)


def content_disposition(file_name: str) -> str:
    fallback = file_name.encode("ascii", "replace").decode("ascii").replace('"', "'").replace("?", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"


async def attachment_item(request: Request) -> Response:
    record = _parent(request)
    sim = _sim(request)
    attachment = sim.attachments.get(record.module, record.id, request.path_params["attachment_id"])
    if attachment is None:
        raise ZohoApiError(400, "INVALID_DATA", "the id given seems to be invalid", {"api_name": "id"})
    if request.method == "DELETE":
        sim.attachments.delete(attachment, now_ms())
        result = {"code": "SUCCESS", "details": {"id": attachment.id}, "message": "record deleted",
                  "status": "success"}  # fmt: skip
        return JSONResponse({"data": [result]})
    if attachment.kind != "Attachment":
        raise ZohoApiError(400, "INVALID_DATA", "a link attachment has no file to download", {"id": attachment.id})
    return FileResponse(
        sim.attachments.path_of(attachment.id),
        media_type=attachment.content_type or "application/octet-stream",
        headers={"Content-Disposition": content_disposition(attachment.file_name)},
    )


async def record_notes(request: Request) -> Response:
    record = _parent(request)
    sim = _sim(request)
    notes_module = sim.modules["Notes"]
    parent = {"id": record.id, "module": {"api_name": record.module}}
    if request.method == "POST":
        _, items = await _records(request)
        rows = [{**item, "Parent_Id": parent} if isinstance(item, dict) else item for item in items]
        outcome = sim.writer.insert(notes_module, rows, principal_of(request.scope).user)
        return respond(outcome.body(), outcome.http_status())
    page = _int_param(request.query_params, "page", 1, 1)
    per_page = _int_param(request.query_params, "per_page", MAX_PER_PAGE, 1, MAX_PER_PAGE)
    fields = sim.reader.parse_fields(request.query_params, required=False)
    mine = [
        n for n in sim.store.iter_live("Notes")
        if isinstance(n.data.get("Parent_Id"), dict) and n.data["Parent_Id"].get("id") == record.id
    ]  # fmt: skip
    mine.sort(key=lambda n: (n.created_ms, n.id), reverse=True)
    start = (page - 1) * per_page
    chosen = mine[start : start + per_page]
    body = (
        {"data": [sim.reader.render(n, fields, request.path_params["version"]) for n in chosen],
         "info": {"per_page": per_page, "count": len(chosen), "page": page,
                  "more_records": len(mine) > start + per_page}}
        if chosen
        else None
    )  # fmt: skip
    _returned(request, body)
    return respond(body)


async def convert_lead(request: Request) -> Response:
    module = _module(request)
    if module.api_name != "Leads":
        raise invalid_url()
    raw = await request.body()
    options: dict[str, Any] = {}
    if raw.strip():
        body = await _json_object(request)
        items = body.get("data")
        if items is not None:
            if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
                raise ZohoApiError(400, "INVALID_DATA", "give exactly one conversion in data", {"api_name": "data"})
            options = items[0]
    notes(request.scope)["records"] = 1
    sim = _sim(request)
    answer = sim.converter.convert(
        request.path_params["record_id"],
        options,
        principal_of(request.scope).user,
        request.path_params["version"],
    )
    return respond(answer)


def related_routes() -> list[Route]:
    base = "/crm/{version}/{module}/{record_id}"
    return [
        Route(f"{base}/Attachments", attachments, methods=["GET", "POST"]),
        Route(f"{base}/Attachments/{{attachment_id}}", attachment_item, methods=["GET", "DELETE"]),
        Route(f"{base}/Notes", record_notes, methods=["GET", "POST"]),
        Route(f"{base}/actions/convert", convert_lead, methods=["POST"]),
    ]

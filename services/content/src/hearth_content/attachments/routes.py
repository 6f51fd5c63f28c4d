"""Attachment routes: upload a file to a post (streamed body), download it like the post."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import StreamingResponse

from hearth_content.attachments import service
from hearth_content.attachments.models import AttachmentPublic
from servicekit.deps import RuntimeDep, UnitOfWorkDep
from servicekit.identity import CurrentPrincipal

router = APIRouter(tags=["attachments"])


@router.post(
    "/posts/{post_id}/attachments",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def upload_attachment(
    post_id: uuid.UUID,
    request: Request,
    uow: UnitOfWorkDep,
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    filename: Annotated[str, Query(min_length=1, max_length=255)],
) -> AttachmentPublic:
    """Upload a file to a post as the raw body; its type comes from its bytes (415 otherwise)."""
    length = request.headers.get("content-length")
    attachment = await service.upload(
        uow=uow,
        runtime=runtime,
        post_id=post_id,
        filename=filename,
        chunks=request.stream(),
        declared_length=int(length) if length and length.isdigit() else None,
        actor=actor,
    )
    return AttachmentPublic.model_validate(attachment, from_attributes=True)


@router.get("/posts/{post_id}/attachments")
async def list_attachments(
    post_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> list[AttachmentPublic]:
    """A post's attachments, for whoever may read the post."""
    rows = await service.list_attachments(uow=uow, post_id=post_id, actor=actor)
    return [AttachmentPublic.model_validate(a, from_attributes=True) for a in rows]


@router.get("/attachments/{attachment_id}", response_class=StreamingResponse)
async def download_attachment(
    attachment_id: uuid.UUID, uow: UnitOfWorkDep, runtime: RuntimeDep, actor: CurrentPrincipal
) -> StreamingResponse:
    """The file, streamed, for whoever may read its post."""
    attachment = await service.get_attachment(uow=uow, attachment_id=attachment_id, actor=actor)
    found = AttachmentPublic.model_validate(attachment, from_attributes=True)
    key = attachment.storage_key
    await uow.session.rollback()  # the connection is not needed while the bytes stream out
    disposition = "inline" if found.kind != "file" else "attachment"
    return StreamingResponse(
        service.storage_of(runtime).stream(key),
        media_type=found.content_type,
        headers={
            "content-length": str(found.size),
            "content-disposition": f"{disposition}; filename*=UTF-8''{quote(found.filename)}",
            # The sniffed type is the only type: browsers must not guess another.
            "x-content-type-options": "nosniff",
            "content-security-policy": "default-src 'none'; sandbox",
        },
    )

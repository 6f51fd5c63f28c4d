"""The attachments table: one stored file of one post."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import String
from sqlmodel import Field

from hearth_content.models import ContentModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import UtcDateTime


class AttachmentKind(StrEnum):
    """The family a file's sniffed type belongs to (each has its own size limit)."""

    image = "image"
    video = "video"
    audio = "audio"
    file = "file"


class Attachment(ContentModel, table=True):
    """A file uploaded to a post; its bytes are in storage under `storage_key`."""

    __tablename__ = "attachments"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    post_id: uuid.UUID = Field(index=True)
    uploader_id: uuid.UUID
    kind: AttachmentKind = Field(sa_type=String(16))
    # Sniffed from the bytes, never the client's claim.
    content_type: str = Field(max_length=100)
    size: int
    filename: str = Field(max_length=255)
    width: int | None = None
    height: int | None = None
    storage_key: str = Field(max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class AttachmentPublic(ContentModel):
    """An attachment as clients see it."""

    id: uuid.UUID
    post_id: uuid.UUID
    uploader_id: uuid.UUID
    kind: AttachmentKind
    content_type: str
    size: int
    filename: str
    width: int | None
    height: int | None
    created_at: datetime

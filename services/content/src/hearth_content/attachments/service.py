"""Attachment use cases: stream an upload to a temp file, sniff it, limit it, clean it, store it."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import filetype
from PIL import Image, ImageOps
from sqlmodel import col, select

from hearth_content import service as posts
from hearth_content.attachments.models import Attachment, AttachmentKind
from hearth_content.attachments.storage import Storage, storage_from
from hearth_content.models import Post
from hearth_content.settings import ContentSettings
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.problems import Problem, forbidden, not_found
from servicekit.runtime import ServiceRuntime

MB = 1024 * 1024
# Types accepted, by the type sniffed from the bytes; everything else is a 415.
ALLOWED: dict[str, AttachmentKind] = {
    "image/jpeg": AttachmentKind.image,
    "image/png": AttachmentKind.image,
    "image/gif": AttachmentKind.image,
    "image/webp": AttachmentKind.image,
    "video/mp4": AttachmentKind.video,
    "video/webm": AttachmentKind.video,
    "video/quicktime": AttachmentKind.video,
    "audio/mpeg": AttachmentKind.audio,
    "audio/ogg": AttachmentKind.audio,
    "audio/x-wav": AttachmentKind.audio,
    "audio/x-flac": AttachmentKind.audio,
    "audio/mp4": AttachmentKind.audio,
    "audio/m4a": AttachmentKind.audio,
    "application/pdf": AttachmentKind.file,
    "application/zip": AttachmentKind.file,
    "application/epub+zip": AttachmentKind.file,
}
LIMITS: dict[AttachmentKind, int] = {
    AttachmentKind.image: 10 * MB,
    AttachmentKind.video: 200 * MB,
    AttachmentKind.audio: 50 * MB,
    AttachmentKind.file: 25 * MB,
}
MAX_ANY = max(LIMITS.values())
# filetype reads at most this many leading bytes.
SNIFF_BYTES = 262
# Decompression bombs: refuse images beyond this many pixels before decoding them.
MAX_PIXELS = 50_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
_REENCODE = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}

_storages: weakref.WeakKeyDictionary[ServiceRuntime, Storage] = weakref.WeakKeyDictionary()


def storage_of(runtime: ServiceRuntime) -> Storage:
    """The runtime's attachment storage (built once per runtime)."""
    found = _storages.get(runtime)
    if found is None:
        settings = runtime.settings
        assert isinstance(settings, ContentSettings)
        found = _storages[runtime] = storage_from(settings)
    return found


@dataclass
class _Received:
    path: Path
    size: int
    content_type: str
    kind: AttachmentKind


def _too_large(kind: AttachmentKind | None) -> Problem:
    limit = LIMITS[kind] if kind else MAX_ANY
    what = f"{kind} attachments" if kind else "attachments"
    return Problem(413, "too-large", "Content Too Large", f"{what} may be at most {limit} bytes")


def _unsupported(detail: str) -> Problem:
    return Problem(415, "unsupported-type", "Unsupported Media Type", detail)


async def receive(chunks: AsyncIterator[bytes], declared_length: int | None) -> _Received:
    """Stream the request body to a temp file, sniffing its type and enforcing its limit."""
    if declared_length is not None and declared_length > MAX_ANY:
        raise _too_large(None)
    handle = tempfile.NamedTemporaryFile(prefix="hearth-upload-", delete=False)
    path = Path(handle.name)
    head = b""
    size = 0
    mime: str | None = None
    kind: AttachmentKind | None = None
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > (LIMITS[kind] if kind else MAX_ANY):
                raise _too_large(kind)
            if mime is None:
                head = (head + chunk)[:SNIFF_BYTES]
                if len(head) >= SNIFF_BYTES:
                    mime, kind = _sniff(head)
                    if size > LIMITS[kind]:
                        raise _too_large(kind)
            await asyncio.to_thread(handle.write, chunk)
        if size == 0:
            raise Problem(422, "empty-upload", "Unprocessable Content", "the upload is empty")
        if mime is None:
            mime, kind = _sniff(head)
        assert kind is not None
        handle.close()
        return _Received(path, size, mime, kind)
    except BaseException:
        handle.close()
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise


def _sniff(head: bytes) -> tuple[str, AttachmentKind]:
    guess = filetype.guess(head)
    if guess is None or guess.mime not in ALLOWED:
        found = guess.mime if guess else "unknown"
        raise _unsupported(f"the file's bytes are {found}, which is not an accepted type")
    return guess.mime, ALLOWED[guess.mime]


def _clean_image(path: Path, mime: str) -> tuple[int, int]:
    """Read an image's dimensions and strip its metadata (EXIF, GPS) by re-encoding it."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise _unsupported("the image has too many pixels")
            fmt = _REENCODE.get(mime)
            if fmt is None:  # GIF: no EXIF to strip; kept as sent
                img.verify()
                return width, height
            # Apply the orientation EXIF asked for, then drop every metadata block.
            upright = ImageOps.exif_transpose(img)
            upright.load()
            width, height = upright.size
            clean = upright.copy()
            clean.info.clear()  # no EXIF, XMP, comments or text chunks carried to the encoder
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise _unsupported(f"the image cannot be read: {exc.__class__.__name__}") from None
    tmp = path.with_suffix(".clean")
    options: dict[str, object] = {"exif": b""}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = 90
    if fmt == "JPEG" and clean.mode not in ("RGB", "L", "CMYK"):
        clean = clean.convert("RGB")
    clean.save(tmp, fmt, **options)
    os.replace(tmp, path)
    return width, height


async def upload(
    *,
    uow: UnitOfWork,
    runtime: ServiceRuntime,
    post_id: uuid.UUID,
    filename: str,
    chunks: AsyncIterator[bytes],
    declared_length: int | None,
    actor: Principal,
) -> Attachment:
    """Attach an uploaded file to a post (its author, staff or the community's admins)."""
    post = await posts.get_post(uow=uow, post_id=post_id, actor=actor)
    if post.deleted_at is not None:
        raise not_found("post", post_id)
    if post.author_id != actor.subject and not await posts._runs_community(uow, post, actor):
        raise forbidden("only the author and staff may attach files to a post")
    # Release the connection while the body streams in: an upload may take minutes.
    await uow.session.rollback()
    received = await receive(chunks, declared_length)
    try:
        width = height = None
        if received.kind == AttachmentKind.image:
            width, height = await asyncio.to_thread(
                _clean_image, received.path, received.content_type
            )
        size = (await asyncio.to_thread(received.path.stat)).st_size
        attachment = Attachment(
            post_id=post_id,
            uploader_id=actor.subject,
            kind=received.kind,
            content_type=received.content_type,
            size=size,
            filename=_safe_name(filename),
            width=width,
            height=height,
            storage_key="",
        )
        attachment.storage_key = f"{post_id}/{attachment.id}"
        await storage_of(runtime).put(attachment.storage_key, received.path, received.content_type)
    finally:
        await asyncio.to_thread(received.path.unlink, missing_ok=True)
    uow.session.add(attachment)
    await uow.commit()
    return attachment


async def get_attachment(
    *, uow: UnitOfWork, attachment_id: uuid.UUID, actor: Principal
) -> Attachment:
    """An attachment whose post the actor may read (else 404, like the post)."""
    attachment = await uow.session.get(Attachment, attachment_id)
    if attachment is None:
        raise not_found("attachment", attachment_id)
    try:
        post: Post = await posts.get_post(uow=uow, post_id=attachment.post_id, actor=actor)
    except Problem as problem:
        if problem.status == 404:
            raise not_found("attachment", attachment_id) from None
        raise
    if post.deleted_at is not None and not actor.is_staff:
        raise not_found("attachment", attachment_id)
    return attachment


def _safe_name(name: str) -> str:
    """A display name only (never a path): the last segment, control characters dropped."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable() and c not in '"')[:255].strip()
    return cleaned or "file"


async def list_attachments(
    *, uow: UnitOfWork, post_id: uuid.UUID, actor: Principal
) -> list[Attachment]:
    """A readable post's attachments, oldest first."""
    await posts.get_post(uow=uow, post_id=post_id, actor=actor)
    stmt = select(Attachment).where(Attachment.post_id == post_id).order_by(col(Attachment.id))
    return list((await uow.session.exec(stmt)).all())

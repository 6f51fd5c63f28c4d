"""Attachments: sniffed types (415), per-type limits (413), EXIF stripped, download like the post,
on local disk and on a real S3-compatible server (moto's, over HTTP) started by the test."""

from __future__ import annotations

import io
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from hearth_content.app import definition
from hearth_content.attachments.service import LIMITS, AttachmentKind
from servicekit.testing.harness import Identities, RunningService

PROBLEM = "application/problem+json"
# A Windows executable's first bytes (the DOS "MZ" stub and PE signature offset), named photo.jpg.
EXECUTABLE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 1024


def _jpeg_with_exif(width: int = 64, height: int = 48) -> bytes:
    img = Image.new("RGB", (width, height), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {2: (51.0, 30.0, 0.0)}  # GPS latitude
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """A real S3-compatible HTTP server (moto's) on a free local port."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


async def _service(launch: Any, kind: str, tmp_path: Path, s3: str | None) -> RunningService:
    if kind == "s3":
        import boto3

        bucket = f"hearth-{uuid.uuid4().hex[:12]}"
        boto3.client(
            "s3", endpoint_url=s3, region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test",
        ).create_bucket(Bucket=bucket)  # fmt: skip
        return await launch(
            definition,
            s3_bucket=bucket,
            s3_endpoint_url=s3,
            s3_access_key_id="test",
            s3_secret_access_key="test",
        )
    return await launch(definition, attachments_dir=str(tmp_path / "attachments"))


async def _chunks(data: bytes, size: int = 8192) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.fixture(params=["local", "s3"])
async def content(request: Any, launch: Any, tmp_path: Path) -> RunningService:
    """Content with its attachments on local disk, or in a bucket of the test's S3 server."""
    s3 = request.getfixturevalue("s3_server") if request.param == "s3" else None
    return await _service(launch, request.param, tmp_path, s3)


async def test_upload_sniffs_limits_strips_and_downloads_like_the_post(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    owner, author, member = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    community = await feed.community(owner=owner)
    await feed.member(community, author)
    await feed.member(community, member)
    r = await content.client.post(
        f"/communities/{community}/posts",
        json={"title": "Photos", "body": "see below", "format": "text"},
        headers=identities.headers(author),
    )
    post = r.json()
    upload = f"/posts/{post['id']}/attachments"

    # An executable named photo.jpg, sent as image/jpeg: refused from its bytes.
    r = await content.client.post(
        upload, params={"filename": "photo.jpg"}, content=EXECUTABLE,
        headers=identities.headers(author) | {"content-type": "image/jpeg"},
    )  # fmt: skip
    assert r.status_code == 415, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["type"] == "urn:hearth:problem:unsupported-type"

    # Only the author (or staff) attaches files.
    jpeg = _jpeg_with_exif()
    r = await content.client.post(
        upload, params={"filename": "x.jpg"}, content=jpeg, headers=identities.headers(member)
    )
    assert r.status_code == 404  # the post is not yet visible to other members
    r = await content.client.post(
        upload, params={"filename": "../../etc/passwd.jpg"}, content=_chunks(jpeg),
        headers=identities.headers(author),
    )  # fmt: skip
    assert r.status_code == 201, r.text
    attachment = r.json()
    assert attachment["kind"] == "image" and attachment["content_type"] == "image/jpeg"
    assert (attachment["width"], attachment["height"]) == (64, 48)
    assert attachment["filename"] == "passwd.jpg"

    # An image beyond the image limit, streamed: 413 while streaming.
    big = jpeg + b"\x00" * (LIMITS[AttachmentKind.image] + 1)
    r = await content.client.post(
        upload, params={"filename": "big.jpg"}, content=_chunks(big, 1 << 20),
        headers=identities.headers(author),
    )  # fmt: skip
    assert r.status_code == 413, r.text

    # Download: the author reads it back without EXIF; a member may not until it is published.
    url = f"/attachments/{attachment['id']}"
    r = await content.client.get(url, headers=identities.headers(author))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["x-content-type-options"] == "nosniff"
    with Image.open(io.BytesIO(r.content)) as img:
        assert img.size == (64, 48)
        assert not img.getexif() and b"SecretCam" not in r.content
    r = await content.client.get(url, headers=identities.headers(member))
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    r = await content.client.get(url, headers=identities.headers(uuid.uuid4()))
    assert r.status_code == 404
    assert await feed.verdict(post["id"], "approved")
    r = await content.client.get(url, headers=identities.headers(member))
    assert r.status_code == 200 and r.content.startswith(b"\xff\xd8")
    r = await content.client.get(
        f"/posts/{post['id']}/attachments", headers=identities.headers(member)
    )
    assert [a["id"] for a in r.json()] == [attachment["id"]]
    # A member who is not the author cannot attach to a published post either.
    r = await content.client.post(
        upload, params={"filename": "x.jpg"}, content=jpeg, headers=identities.headers(member)
    )
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    # Once the post is deleted its files are gone for members, kept for moderation.
    r = await content.client.delete(f"/posts/{post['id']}", headers=identities.headers(author))
    assert r.status_code == 204
    r = await content.client.get(url, headers=identities.headers(member))
    assert r.status_code == 404
    r = await content.client.get(url, headers=identities.headers(None, "operator"))
    assert r.status_code == 200

    # A PDF is a "file"; an empty upload is refused.
    pdf = b"%PDF-1.4\n" + b"1 0 obj<<>>endobj\n" * 20 + b"%%EOF\n"
    r = await content.client.post(
        f"/communities/{community}/posts",
        json={"title": "Doc", "body": "x", "format": "text"},
        headers=identities.headers(author),
    )
    second = f"/posts/{r.json()['id']}/attachments"
    r = await content.client.post(
        second, params={"filename": "a.pdf"}, content=pdf, headers=identities.headers(author)
    )
    assert r.status_code == 201 and r.json()["kind"] == "file", r.text
    r = await content.client.post(
        second, params={"filename": "a.pdf"}, content=b"", headers=identities.headers(author)
    )
    assert r.status_code == 422

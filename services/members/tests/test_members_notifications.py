"""Notifications: the inbox (per user), and the webhook adapter against a real HTTP receiver."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from hearth_members.app import definition
from hearth_members.notifications import notify
from hearth_members.notifications.delivery import SIGNATURE_HEADER, verify_signature
from members_testkit import publish, took
from servicekit.deps import UnitOfWork
from servicekit.ids import utcnow
from servicekit.testing.harness import Identities, RunningService, eventually

PROBLEM = "application/problem+json"
REMINDER = "hearth.events.registration.reminder_due.v1"


async def _notify(service: RunningService, user: uuid.UUID, n: int = 1, commit: bool = True):
    async with service.runtime.db.session() as session:
        uow = UnitOfWork(session, service.runtime)
        made = [
            await notify(uow=uow, user_id=user, kind="test", title=f"t{i}", body=f"body {i}")
            for i in range(n)
        ]
        if commit:
            await uow.commit()
        else:
            await session.rollback()
        return made


async def test_inbox_lists_counts_and_marks_read_per_user(
    members: RunningService, identities: Identities
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    await _notify(members, alice, 5)
    [bobs] = await _notify(members, bob)
    h = identities.headers(alice)
    r = await members.client.get("/me/notifications?limit=2", headers=h)
    assert r.status_code == 200, r.text
    page = r.json()
    assert [n["title"] for n in page["items"]] == ["t4", "t3"] and page["next_cursor"]
    seen = [n["title"] for n in page["items"]]
    while page["next_cursor"]:
        page = (
            await members.client.get(
                f"/me/notifications?limit=2&cursor={page['next_cursor']}", headers=h
            )
        ).json()
        seen += [n["title"] for n in page["items"]]
    assert seen == ["t4", "t3", "t2", "t1", "t0"]
    r = await members.client.get("/me/notifications/unread-count", headers=h)
    assert r.json() == {"unread": 5}
    first = (await members.client.get("/me/notifications", headers=h)).json()["items"][0]
    r = await members.client.post(f"/me/notifications/{first['id']}/read", headers=h)
    assert r.status_code == 200 and r.json()["read_at"]
    assert (await members.client.get("/me/notifications/unread-count", headers=h)).json() == {
        "unread": 4
    }
    r = await members.client.get("/me/notifications?unread=true", headers=h)
    assert len(r.json()["items"]) == 4
    # Refused: someone else's notification is not found (not 403: its existence is private).
    r = await members.client.post(f"/me/notifications/{bobs.id}/read", headers=h)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    r = await members.client.post("/me/notifications/read-all", headers=h)
    assert r.json() == {"marked": 4}
    bob_count = await members.client.get(
        "/me/notifications/unread-count", headers=identities.headers(bob)
    )
    assert bob_count.json() == {"unread": 1}  # alice's read-all did not touch bob's
    # Refused: no identity; bad input.
    assert (await members.client.get("/me/notifications")).status_code == 401
    r = await members.client.get("/me/notifications?cursor=%%%", headers=h)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    r = await members.client.post("/me/notifications/nope/read", headers=h)
    assert r.status_code == 422


async def test_rolled_back_notification_is_neither_stored_nor_published(
    members: RunningService, identities: Identities
) -> None:
    user = uuid.uuid4()
    await _notify(members, user, commit=False)
    r = await members.client.get("/me/notifications", headers=identities.headers(user))
    assert r.json()["items"] == []


class _Receiver:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(503)
                else:
                    receiver.requests.append(
                        ({k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    r = _Receiver()
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    yield r
    r.server.shutdown()


async def test_webhook_adapter_posts_signed_json_after_commit_with_retry(
    launch, receiver: _Receiver
) -> None:
    secret = "s3cret-for-the-test"
    service = await launch(
        definition, notify_webhook_url=receiver.url, notify_webhook_secret=secret
    )
    user = uuid.uuid4()
    receiver.fail_first = 1  # the first attempt fails: the adapter retries
    [made] = await _notify(service, user)
    await _notify(service, user, commit=False)  # rolled back: never delivered

    async def delivered() -> bool:
        return len(receiver.requests) >= 1

    await eventually(delivered)
    headers, body = receiver.requests[0]
    assert verify_signature(secret.encode(), headers[SIGNATURE_HEADER], body)
    assert not verify_signature(b"wrong", headers[SIGNATURE_HEADER], body)
    assert not verify_signature(secret.encode(), headers[SIGNATURE_HEADER], body + b" ")
    assert headers["x-hearth-notification-id"] == str(made.id)
    assert b'"title":"t0"' in body
    import asyncio

    await asyncio.sleep(0.5)
    assert len(receiver.requests) == 1  # the rolled-back one never left


class _SmtpSink:
    """A minimal SMTP server (enough of RFC 5321 for smtplib) that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle(self, reader: Any, writer: Any) -> None:
        def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")

        say("220 sink ESMTP")
        sender, rcpts = "", []
        while line := (await reader.readline()).decode().rstrip("\r\n"):
            verb = line[:4].upper()
            if verb in ("EHLO", "HELO"):
                say("250 sink")
            elif verb == "MAIL":
                sender, rcpts = line.split(":", 1)[1].strip(" <>"), []
                say("250 ok")
            elif verb == "RCPT":
                rcpts.append(line.split(":", 1)[1].strip(" <>"))
                say("250 ok")
            elif verb == "DATA":
                say("354 go ahead")
                body = b""
                while (chunk := await reader.readline()) != b".\r\n":
                    body += chunk
                self.messages.append((sender, rcpts, body))
                say("250 queued")
            elif verb == "QUIT":
                say("221 bye")
                await writer.drain()
                break
            else:
                say("250 ok")
            await writer.drain()
        writer.close()


async def test_smtp_adapter_mails_the_decrypted_address_of_the_member(
    launch: Any, pii_settings: dict, identities: Identities
) -> None:
    import asyncio

    sink = _SmtpSink()
    server = await asyncio.start_server(sink.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        service = await launch(
            definition,
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_from="hearth@example.org",
            **pii_settings,
        )
        user, nobody = uuid.uuid4(), uuid.uuid4()
        r = await service.client.put(
            "/me/profile", json={"email": "mail.me@example.com"}, headers=identities.headers(user)
        )
        assert r.status_code == 200
        await _notify(service, nobody)  # no e-mail on file: inbox only, nothing mailed
        await _notify(service, user)

        async def mailed() -> bool:
            return len(sink.messages) >= 1

        await eventually(mailed)
        sender, rcpts, body = sink.messages[0]
        assert sender == "hearth@example.org" and rcpts == ["mail.me@example.com"]
        assert b"Subject: t0" in body and b"body 0" in body
        await asyncio.sleep(0.3)
        assert len(sink.messages) == 1
    finally:
        server.close()
        await server.wait_closed()


async def test_an_event_reminder_reaches_the_inbox_once_even_when_delivered_twice(
    members: RunningService, identities: Identities, nats_client: Any, subject_prefix: str
) -> None:
    user, activity = uuid.uuid4(), uuid.uuid4()
    community = uuid.uuid4()
    starts = datetime(2031, 5, 4, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    reminder = await publish(
        nats_client,
        subject_prefix,
        REMINDER,
        {
            "registration_id": str(uuid.uuid4()),
            "activity_id": str(activity),
            "community_id": str(community),
            "user_id": str(user),
            "title": "Product tasting",
            "starts_at": starts.isoformat(),
            "online_url": "https://meet.example.com/tasting",
            "due_at": utcnow().isoformat(),
        },
        subject=str(activity),
    )
    # The same event again (a redelivery, or the producer retrying past the dedupe window).
    await publish(nats_client, subject_prefix, REMINDER, reminder.data, envelope=reminder)
    await eventually(took(members, "members__reminders", 2))
    r = await members.client.get("/me/notifications", headers=identities.headers(user))
    [note] = [n for n in r.json()["items"] if n["kind"] == "event.reminder"]
    assert note["title"] == "Reminder: Product tasting"
    assert note["community_id"] == str(community)
    assert note["body"] == (
        "Product tasting starts at 2031-05-04 01:30 UTC, https://meet.example.com/tasting."
    )
    assert note["data"]["activity_id"] == str(activity)
    assert note["data"]["starts_at"] == "2031-05-04T01:30:00+00:00"
    [running] = [c for c in members.runtime.consumers if c.consumer.name == "members__reminders"]
    assert running.stats["handled"] == 1 and running.stats["duplicates"] == 1
    r = await members.client.get("/me/notifications/unread-count", headers=identities.headers(user))
    assert r.json() == {"unread": 1}

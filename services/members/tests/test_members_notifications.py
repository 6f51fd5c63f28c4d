"""Notifications: the inbox (per user), and the webhook and SMTP channels against real receivers
(the durable queue's retries, leases and replicas are in test_members_notification_delivery.py).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlmodel import col, select

from hearth_members.app import definition
from hearth_members.notifications import notify
from hearth_members.notifications.delivery import (
    NOTIFICATION_ID_HEADER,
    SIGNATURE_HEADER,
    verify_signature,
)
from hearth_members.notifications.models import DeliveryStatus, NotificationDelivery
from hearth_members.notifications.sender import run_deliveries
from members_testkit import SmtpSink, WebhookReceiver, publish, took
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


async def _deliveries(service: RunningService, user: uuid.UUID) -> list[NotificationDelivery]:
    async with service.runtime.db.session() as session:
        stmt = (
            select(NotificationDelivery)
            .where(NotificationDelivery.user_id == user)
            .order_by(col(NotificationDelivery.id))
        )
        return list((await session.exec(stmt)).all())


async def test_webhook_posts_signed_json_at_once_after_commit_and_never_for_a_rollback(
    launch: Any, receiver: WebhookReceiver
) -> None:
    secret = "s3cret-for-the-test"
    # An hour between ticks: only the wake-up after the commit can deliver within the test.
    service = await launch(
        definition,
        notify_webhook_url=receiver.url,
        notify_webhook_secret=secret,
        notify_delivery_tick_seconds=3600,
    )
    user = uuid.uuid4()
    await _notify(service, user, commit=False)  # rolled back: no inbox row, no delivery row
    [made] = await _notify(service, user)

    async def delivered() -> bool:
        return len(receiver.accepted) >= 1

    await eventually(delivered, timeout=5)
    headers, body = receiver.accepted[0]
    assert verify_signature(secret.encode(), headers[SIGNATURE_HEADER], body)
    assert not verify_signature(b"wrong", headers[SIGNATURE_HEADER], body)
    assert not verify_signature(secret.encode(), headers[SIGNATURE_HEADER], body + b" ")
    assert headers[NOTIFICATION_ID_HEADER] == str(made.id)
    assert b'"title":"t0"' in body

    async def recorded() -> list[NotificationDelivery]:
        rows = await _deliveries(service, user)
        return rows if rows and rows[0].status == DeliveryStatus.delivered else []

    [row] = await eventually(recorded)  # one row: the rolled-back notification queued nothing
    assert (row.notification_id, row.channel, row.attempts) == (made.id, "webhook", 1)
    assert row.delivered_at is not None and row.next_attempt_at is None
    # The sender's loop has run by now and sleeps for an hour: only the commit wakes it.
    [again] = await _notify(service, user)

    async def both() -> bool:
        return len(receiver.accepted) >= 2

    await eventually(both, timeout=5)
    assert receiver.accepted_ids() == [str(made.id), str(again.id)]
    await asyncio.sleep(0.3)
    assert len(receiver.requests) == 2


async def test_smtp_mails_the_address_on_file_at_send_time_and_drops_a_member_without_one(
    launch: Any, pii_settings: dict, identities: Identities, smtp_sink: SmtpSink
) -> None:
    service = await launch(
        definition,
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        smtp_from="hearth@example.org",
        notify_delivery_tick_seconds=3600,
        notify_delivery_backoff_seconds=3600,  # a failed attempt waits for the test's clock
        **pii_settings,
    )
    user, nobody = uuid.uuid4(), uuid.uuid4()
    h = identities.headers(user)
    r = await service.client.put("/me/profile", json={"email": "old.me@example.com"}, headers=h)
    assert r.status_code == 200
    await _notify(service, nobody)  # no e-mail on file: inbox only, nothing mailed

    async def settled(who: uuid.UUID, status: DeliveryStatus, attempts: int = 1) -> Any:
        async def check() -> NotificationDelivery | None:
            rows = await _deliveries(service, who)
            done = rows and rows[0].status == status and rows[0].attempts == attempts
            return rows[0] if done else None

        return await eventually(check)

    dropped = await settled(nobody, DeliveryStatus.dropped)
    assert (dropped.channel, dropped.last_error) == ("smtp", "no e-mail address on file")
    # The relay is away for the first attempt; the member changes their address meanwhile.
    smtp_sink.refuse = True
    await _notify(service, user)
    waiting = await settled(user, DeliveryStatus.pending)
    assert waiting.attempts == 1 and waiting.last_error == "SMTP 451 (SMTPSenderRefused)"
    r = await service.client.put("/me/profile", json={"email": "new.me@example.com"}, headers=h)
    assert r.status_code == 200
    smtp_sink.refuse = False
    done = await run_deliveries(runtime=service.runtime, now=utcnow() + timedelta(hours=2))
    assert done.delivered == 1
    [(sender, rcpts, body)] = smtp_sink.messages
    assert sender == "hearth@example.org" and rcpts == ["new.me@example.com"]
    assert b"Subject: t0" in body and b"body 0" in body
    assert (await settled(user, DeliveryStatus.delivered, attempts=2)).delivered_at is not None


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

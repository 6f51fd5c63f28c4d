"""The durable delivery queue: retries with back-off, leases after a stopped sender, replicas,
giving up after max attempts, the operators' list, and deletion requests (real receivers)."""

from __future__ import annotations

import asyncio
import random
import smtplib
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from sqlmodel import col, select

from hearth_members.app import definition
from hearth_members.notifications import notify
from hearth_members.notifications.delivery import Undeliverable, error_summary
from hearth_members.notifications.models import DeliveryStatus, NotificationDelivery
from hearth_members.notifications.sender import claim_due, retry_delay, run_deliveries
from hearth_members.settings import MembersSettings
from members_testkit import PROBLEM, SmtpSink, WebhookReceiver
from servicekit.deps import UnitOfWork
from servicekit.ids import utcnow
from servicekit.runtime import ServiceRuntime
from servicekit.testing.harness import Identities, RunningService, eventually

# Retries within the test's patience: the first after 25-50 ms, capped at 100-200 ms.
FAST = {
    "notify_delivery_tick_seconds": 0.05,
    "notify_delivery_backoff_seconds": 0.05,
    "notify_delivery_backoff_max_seconds": 0.2,
}
# Nothing but the test (or a commit's wake-up) runs a pass.
IDLE = {"notify_delivery_tick_seconds": 3600}


async def _notify(runtime: ServiceRuntime, user: uuid.UUID, n: int = 1) -> list[uuid.UUID]:
    async with runtime.db.session() as session:
        uow = UnitOfWork(session, runtime)
        made = [
            await notify(uow=uow, user_id=user, kind="test", title=f"t{i}", body=f"body {i}")
            for i in range(n)
        ]
        await uow.commit()
    return [m.id for m in made]


async def _rows(runtime: ServiceRuntime) -> list[NotificationDelivery]:
    async with runtime.db.session() as session:
        stmt = select(NotificationDelivery).order_by(col(NotificationDelivery.id))
        return list((await session.exec(stmt)).all())


def _all(runtime: ServiceRuntime, status: DeliveryStatus, n: int) -> Any:
    """An `eventually` check: n rows, every one of them in `status`."""

    async def check() -> list[NotificationDelivery]:
        rows = await _rows(runtime)
        return rows if len(rows) == n and all(r.status == status for r in rows) else []

    return check


async def test_a_receiver_failing_then_recovering_gets_each_notification_once(
    launch: Any, receiver: WebhookReceiver
) -> None:
    service = await launch(definition, notify_webhook_url=receiver.url, **FAST)
    receiver.fail_first = 3  # the receiver is down (500) for its first three requests
    made = await _notify(service.runtime, uuid.uuid4(), n=2)
    rows = await eventually(_all(service.runtime, DeliveryStatus.delivered, 2))
    # Each notification accepted exactly once; every failed attempt was counted and retried.
    assert sorted(receiver.accepted_ids()) == sorted(str(m) for m in made)
    assert sum(r.attempts for r in rows) == len(receiver.requests) == 3 + 2
    assert [status for _, _, status in receiver.requests[:3]] == [500, 500, 500]
    retried = [r for r in rows if r.attempts > 1]
    assert retried and all(r.last_error == "HTTP 500" for r in retried)
    assert all(r.delivered_at is not None and r.next_attempt_at is None for r in rows)
    await asyncio.sleep(0.3)  # more ticks: nothing is sent again
    assert len(receiver.requests) == 5


async def test_a_claim_left_by_a_stopped_sender_is_delivered_by_another_after_its_lease(
    launch: Any, receiver: WebhookReceiver
) -> None:
    service = await launch(definition, notify_webhook_url=receiver.url, **IDLE)
    # A replica writes a notification, claims its delivery, and stops before sending it (its
    # process died): the row stays `sending` with a lease, and the receiver has nothing.
    crashed = ServiceRuntime(definition, service.runtime.settings)
    try:
        [made] = await _notify(crashed, uuid.uuid4())
        [claim] = await claim_due(runtime=crashed, now=utcnow(), batch=10, channels=["webhook"])
    finally:
        await crashed.db.dispose()
    [row] = await _rows(service.runtime)
    assert (row.status, row.attempts, claim.notification_id) == ("sending", 1, made)
    # While the lease runs, nobody else takes it.
    assert (await run_deliveries(runtime=service.runtime)).claimed == 0
    assert receiver.requests == []
    # Once it has run out, the next pass anywhere delivers it.
    lease = service.runtime.settings.notify_delivery_lease_seconds
    later = utcnow() + timedelta(seconds=lease + 1)
    done = await run_deliveries(runtime=service.runtime, now=later)
    assert (done.claimed, done.delivered) == (1, 1)
    assert receiver.accepted_ids() == [str(made)]
    [row] = await _rows(service.runtime)
    assert (row.status, row.attempts) == ("delivered", 2)


async def test_two_replicas_running_the_pass_at_once_deliver_each_notification_once(
    launch: Any, receiver: WebhookReceiver
) -> None:
    service = await launch(definition, notify_webhook_url=receiver.url, **IDLE)
    replica = ServiceRuntime(definition, service.runtime.settings)  # own engine and pool
    receiver.delay = 0.02  # slow enough that the passes overlap
    try:
        # Written through the replica, so the service's own loop is not woken to take them.
        made = await _notify(replica, uuid.uuid4(), n=12)
        results = await asyncio.gather(
            run_deliveries(runtime=service.runtime, batch=3),
            run_deliveries(runtime=replica, batch=3),
            run_deliveries(runtime=replica, batch=3),
        )
    finally:
        await replica.db.dispose()
    assert sum(r.delivered for r in results) == sum(r.claimed for r in results) == 12
    assert Counter(receiver.accepted_ids()) == {str(m): 1 for m in made}
    rows = await _rows(service.runtime)
    assert [(r.status, r.attempts) for r in rows] == [("delivered", 1)] * 12


async def test_after_max_attempts_a_delivery_fails_and_operators_see_it(
    launch: Any, receiver: WebhookReceiver, identities: Identities
) -> None:
    service = await launch(
        definition, notify_webhook_url=receiver.url, notify_delivery_max_attempts=3, **FAST
    )
    receiver.fail_first = 10**6  # never recovers
    made = await _notify(service.runtime, uuid.uuid4(), n=2)
    rows = await eventually(_all(service.runtime, DeliveryStatus.failed, 2))
    assert [(r.attempts, r.last_error, r.next_attempt_at) for r in rows] == [
        (3, "HTTP 500", None)
    ] * 2
    await asyncio.sleep(0.3)  # no attempt after the last
    assert len(receiver.requests) == 6 and receiver.accepted == []
    c, staff = service.client, identities.headers(uuid.uuid4(), "operator")
    r = await c.get("/admin/notification-deliveries?status=failed&limit=1", headers=staff)
    assert r.status_code == 200, r.text
    first = r.json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    r = await c.get(
        f"/admin/notification-deliveries?status=failed&limit=1&cursor={first['next_cursor']}",
        headers=staff,
    )
    second = r.json()
    assert second["next_cursor"] is None
    listed = first["items"] + second["items"]
    assert sorted(d["notification_id"] for d in listed) == sorted(str(m) for m in made)
    assert {(d["status"], d["attempts"], d["channel"]) for d in listed} == {
        ("failed", 3, "webhook")
    }
    assert "title" not in listed[0] and "body" not in listed[0]
    r = await c.get("/admin/notification-deliveries?status=delivered", headers=staff)
    assert r.json()["items"] == []
    # The backlog is on /metrics too (as of the sender's last pass).
    scraped = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families((await c.get("/metrics")).text)
        for sample in family.samples
    }
    svc = ("service", "members")

    def sample(name: str, **labels: str) -> float | None:
        return scraped.get((name, tuple(sorted([svc, *labels.items()]))))

    assert sample("hearth_notification_deliveries", status="failed") == 2
    assert sample("hearth_notification_deliveries", status="pending") == 0
    attempts = "hearth_notification_delivery_attempts_total"
    assert sample(attempts, channel="webhook", outcome="failed") == 2
    assert sample(attempts, channel="webhook", outcome="retried") == 4


async def test_operators_retry_a_failed_delivery_once_the_receiver_is_fixed(
    launch: Any, receiver: WebhookReceiver, identities: Identities
) -> None:
    service = await launch(
        definition, notify_webhook_url=receiver.url, notify_delivery_max_attempts=2, **FAST
    )
    receiver.fail_first = 2  # down for exactly the attempt budget
    [made] = await _notify(service.runtime, uuid.uuid4())
    [row] = await eventually(_all(service.runtime, DeliveryStatus.failed, 1))
    c, staff = service.client, identities.headers(uuid.uuid4(), "operator")
    path = f"/admin/notification-deliveries/{row.id}/retry"
    # Refused: no identity, a member, a delivery that is not failed, one that does not exist.
    assert (await c.post(path)).status_code == 401
    r = await c.post(path, headers=identities.headers(uuid.uuid4(), "member"))
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    missing = f"/admin/notification-deliveries/{uuid.uuid4()}/retry"
    assert (await c.post(missing, headers=staff)).status_code == 404
    r = await c.post(path, headers=staff)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["attempts"]) == ("pending", 0)
    [done] = await eventually(_all(service.runtime, DeliveryStatus.delivered, 1))
    assert done.attempts == 1 and receiver.accepted_ids() == [str(made)]
    r = await c.post(path, headers=staff)  # delivered now: nothing to retry
    assert r.status_code == 409 and r.json()["type"].endswith("delivery-not-failed")
    await asyncio.sleep(0.3)
    assert receiver.accepted_ids() == [str(made)]  # sent once after the retry, never again
    assert len(receiver.requests) == 3  # two failed attempts, one after the retry
    audit = await c.get("/audit", headers=staff)
    [entry] = [a for a in audit.json()["items"] if a["action"] == "notification_delivery.retried"]
    assert entry["target_id"] == str(row.id)


async def test_the_delivery_list_is_for_platform_staff_only(
    members: RunningService, identities: Identities
) -> None:
    c, path = members.client, "/admin/notification-deliveries"
    assert (await c.get(path)).status_code == 401
    for roles in (("member",), ("service",)):
        r = await c.get(path, headers=identities.headers(uuid.uuid4(), *roles))
        assert r.status_code == 403 and r.headers["content-type"] == PROBLEM, roles
    for role in ("admin", "operator"):
        r = await c.get(path, headers=identities.headers(uuid.uuid4(), role))
        assert r.status_code == 200 and r.json() == {"items": [], "next_cursor": None}, role
    staff = identities.headers(uuid.uuid4(), "admin")
    assert (await c.get(path + "?status=lost", headers=staff)).status_code == 422
    r = await c.get(path + "?cursor=WyJub3QtYS11dWlkIl0", headers=staff)  # ["not-a-uuid"]
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM


async def test_a_deleted_members_unsent_email_is_dropped_and_never_mailed(
    launch: Any, pii_settings: dict, identities: Identities, smtp_sink: SmtpSink
) -> None:
    service = await launch(
        definition,
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        notify_delivery_backoff_seconds=3600,  # the retry waits for the test's clock
        **IDLE,
        **pii_settings,
    )
    user = uuid.uuid4()
    h = identities.headers(user)
    r = await service.client.put("/me/profile", json={"email": "gone.soon@example.com"}, headers=h)
    assert r.status_code == 200
    smtp_sink.refuse = True  # the first attempt meets a relay that is away
    await _notify(service.runtime, user)

    async def attempted() -> list[NotificationDelivery]:
        rows = await _rows(service.runtime)
        return rows if rows and rows[0].attempts == 1 and rows[0].status == "pending" else []

    [row] = await eventually(attempted)
    assert smtp_sink.refused == 1 and "gone.soon" not in (row.last_error or "")
    r = await service.client.delete("/me", headers=h)
    assert r.status_code == 204
    [row] = await _rows(service.runtime)
    assert (row.status, row.last_error) == ("dropped", "recipient's data deleted")
    smtp_sink.refuse = False
    done = await run_deliveries(runtime=service.runtime, now=utcnow() + timedelta(days=1))
    assert done.claimed == 0 and smtp_sink.messages == []
    # A notification written after the deletion finds no address at send time: dropped too.
    await _notify(service.runtime, user)
    rows = await eventually(_all(service.runtime, DeliveryStatus.dropped, 2))
    assert rows[1].last_error == "no e-mail address on file" and smtp_sink.messages == []


def test_retry_delays_grow_exponentially_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(7)
    for attempts, ceiling in ((1, 10), (2, 20), (3, 40), (4, 80), (9, 600), (60, 600)):
        for _ in range(50):
            delay = retry_delay(attempts=attempts, base=10, cap=600, rand=rng.random)
            assert ceiling / 2 <= delay <= ceiling, (attempts, delay)
    assert retry_delay(attempts=3, base=10, cap=600, rand=lambda: 0.0) == 20
    assert retry_delay(attempts=3, base=10, cap=600, rand=lambda: 1.0) == 40


def test_recorded_errors_never_carry_the_address_or_the_url() -> None:
    refused = smtplib.SMTPRecipientsRefused({"who@example.com": (550, b"no such user")})
    assert error_summary(refused) == "SMTPRecipientsRefused"
    bounced = smtplib.SMTPDataError(554, b"rejected for who@example.com")
    assert error_summary(bounced) == "SMTP 554 (SMTPDataError)"
    request = httpx.Request("POST", "https://hooks.example.com/t0k3n")
    response = httpx.Response(503, request=request)
    failed = httpx.HTTPStatusError(
        "503 for https://hooks.example.com/t0k3n", request=request, response=response
    )
    assert error_summary(failed) == "HTTP 503"
    assert error_summary(httpx.ConnectError("to https://hooks.example.com/t0k3n")) == "ConnectError"
    assert error_summary(Undeliverable("no e-mail address on file")) == "no e-mail address on file"


def test_a_lease_shorter_than_a_send_is_refused() -> None:
    with pytest.raises(ValidationError, match="LEASE_SECONDS"):
        MembersSettings(environment="test", notify_delivery_lease_seconds=15)
    assert MembersSettings(environment="test").notify_delivery_lease_seconds == 60

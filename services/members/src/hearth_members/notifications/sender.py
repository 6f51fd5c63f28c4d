"""The sender: drains `notification_deliveries`, safely across replicas, at least once.

One pass: claim due rows in a short transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite
has one writer at a time, `BEGIN IMMEDIATE`) by marking them `sending` with a lease
(`next_attempt_at = now + lease`) and counting the attempt; commit; deliver outside any
transaction; then record each outcome in its own short transaction, conditional on the row still
being this sender's claim. A sender that stops mid-pass leaves `sending` rows whose lease runs
out, and the next pass anywhere takes them again, so a receiver may see a notification twice
(it dedupes on `x-hearth-notification-id`); nothing is lost. Failures retry with capped,
jittered exponential back-off until `notify_delivery_max_attempts`, then the row is `failed`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select

from hearth_members.notifications.delivery import (
    AddressLookup,
    Delivery,
    DeliveryAdapter,
    Undeliverable,
    configured_adapters,
    error_summary,
)
from hearth_members.notifications.models import (
    OPEN_DELIVERY_STATUSES,
    DeliveryStatus,
    Notification,
    NotificationDelivery,
)
from hearth_members.settings import MembersSettings
from servicekit import backoff
from servicekit.db import affected_rows
from servicekit.ids import utcnow
from servicekit.periodic import periodic
from servicekit.runtime import Key, ServiceRuntime, extension, settings_of

log = logging.getLogger(__name__)

MAX_ROUNDS = 10  # full batches one pass takes before it yields to the next tick or wake
STOPPED_SENDER = "no outcome recorded before the lease ended (sender stopped)"


@dataclass
class SenderState:
    """Per-runtime sender state: the wake-up event and what the metrics report."""

    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # (channel, outcome) -> count, outcomes: delivered, retried, failed, dropped.
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Rows per status (pending, sending, failed) and the oldest open row's age, as of the
    # last pass; None before the first.
    backlog: dict[str, int] | None = None
    oldest_open_age_seconds: float = 0.0


SENDER_STATE: Key[SenderState] = Key("members.sender")


def state_of(runtime: ServiceRuntime) -> SenderState:
    """The runtime's sender state (made on first use)."""
    return extension(runtime, SENDER_STATE, SenderState)


def wake_event(runtime: ServiceRuntime) -> asyncio.Event:
    """Set to run the sender pass now (after a commit that queued deliveries)."""
    return state_of(runtime).wake


def retry_delay(*, attempts: int, base: float, cap: float, rand: Any = random.random) -> float:
    """Seconds before the next attempt after `attempts` failed ones: capped, half jittered."""
    # Half fixed, half random: replicas and receivers recovering together do not retry in
    # lockstep, and a retry never comes immediately.
    return backoff.delay(attempts, base=base, cap=cap, low=0.5, rand=rand)


@dataclass(frozen=True)
class Claim:
    """A row this sender owns until its lease ends: which attempt it is making."""

    id: uuid.UUID
    notification_id: uuid.UUID
    channel: str
    attempts: int
    claimed_at: float = field(default_factory=time.monotonic)


@dataclass
class PassResult:
    """What one sender pass did."""

    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    dropped: int = 0
    released: int = 0

    def add(self, other: PassResult) -> None:
        """Sum another round's counts into this one."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _settings(runtime: ServiceRuntime) -> MembersSettings:
    return settings_of(runtime, MembersSettings)


async def claim_due(
    *, runtime: ServiceRuntime, now: datetime, batch: int, channels: list[str]
) -> list[Claim]:
    """Claim up to `batch` due rows of these channels (mark `sending`, lease, count the attempt)."""
    s = _settings(runtime)
    lease_ends = now + timedelta(seconds=s.notify_delivery_lease_seconds)
    async with runtime.db.session() as session:
        due = (
            select(NotificationDelivery)
            .where(
                col(NotificationDelivery.status).in_(OPEN_DELIVERY_STATUSES),
                col(NotificationDelivery.next_attempt_at) <= now,
                # A channel this replica has no adapter for stays queued (and visible) rather
                # than failing: it may be a replica of an older or misconfigured release.
                col(NotificationDelivery.channel).in_(channels),
            )
            .order_by(col(NotificationDelivery.next_attempt_at), col(NotificationDelivery.id))
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        claims = []
        for row in (await session.exec(due)).all():
            row.updated_at = now
            if (
                row.status == DeliveryStatus.sending
                and row.attempts >= s.notify_delivery_max_attempts
            ):
                # The last attempt's sender stopped: give up rather than attempt forever (a
                # notification that crashes its sender would otherwise loop).
                row.status, row.next_attempt_at = DeliveryStatus.failed, None
                row.last_error = STOPPED_SENDER
            else:
                row.status, row.next_attempt_at = DeliveryStatus.sending, lease_ends
                row.attempts += 1
                claims.append(Claim(row.id, row.notification_id, row.channel, row.attempts))
            session.add(row)
        await session.commit()
    return claims


async def _record(
    runtime: ServiceRuntime, claim: Claim, *, same_attempt: bool, **values: Any
) -> bool:
    """Write an outcome if the row is still this sender's claim; False when it is not."""
    stmt = update(NotificationDelivery).where(
        col(NotificationDelivery.id) == claim.id,
        col(NotificationDelivery.status) == DeliveryStatus.sending,
    )
    if same_attempt:
        # Retries and releases only for the attempt we made: after our lease ran out another
        # sender may own the row now, and its outcome is its to record.
        stmt = stmt.where(col(NotificationDelivery.attempts) == claim.attempts)
    async with runtime.db.session() as session:
        result = await session.exec(
            stmt.values(**values).execution_options(synchronize_session=False)
        )
        await session.commit()
    return affected_rows(result) == 1


async def _deliver_one(
    runtime: ServiceRuntime,
    claim: Claim,
    notification: Notification | None,
    adapter: DeliveryAdapter,
    clock: Callable[[], datetime],
) -> str:
    """Attempt one claimed delivery and record its outcome; returns the outcome's name."""
    s = _settings(runtime)
    longest_send = max(s.notify_webhook_timeout_seconds, s.smtp_timeout_seconds)
    if time.monotonic() - claim.claimed_at > s.notify_delivery_lease_seconds - longest_send:
        # Too little of the lease is left to finish a send: hand the row back untouched, so
        # another sender never sends it while this one still might.
        await _record(
            runtime,
            claim,
            same_attempt=True,
            status=DeliveryStatus.pending,
            attempts=claim.attempts - 1,
            next_attempt_at=clock(),
            updated_at=clock(),
        )
        return "released"
    if notification is None:  # cannot happen through the FK; never an attempt at nothing
        await _record(
            runtime,
            claim,
            same_attempt=False,
            status=DeliveryStatus.dropped,
            next_attempt_at=None,
            last_error="notification not found",
            updated_at=clock(),
        )
        return "dropped"
    try:
        await adapter.deliver(Delivery.model_validate(notification, from_attributes=True))
    except Undeliverable as exc:
        await _record(
            runtime,
            claim,
            same_attempt=False,
            status=DeliveryStatus.dropped,
            next_attempt_at=None,
            last_error=error_summary(exc),
            updated_at=clock(),
        )
        return "dropped"
    except Exception as exc:  # any failure of the channel: retry later, or give up
        error = error_summary(exc)
        now = clock()
        if claim.attempts >= s.notify_delivery_max_attempts:
            log.warning(
                "notification %s: %s delivery failed for good after %d attempts: %s",
                claim.notification_id,
                claim.channel,
                claim.attempts,
                error,
            )
            await _record(
                runtime,
                claim,
                same_attempt=True,
                status=DeliveryStatus.failed,
                next_attempt_at=None,
                last_error=error,
                updated_at=now,
            )
            return "failed"
        delay = retry_delay(
            attempts=claim.attempts,
            base=s.notify_delivery_backoff_seconds,
            cap=s.notify_delivery_backoff_max_seconds,
        )
        log.info(
            "notification %s: %s attempt %d failed (%s); retrying in %.1f s",
            claim.notification_id,
            claim.channel,
            claim.attempts,
            error,
            delay,
        )
        await _record(
            runtime,
            claim,
            same_attempt=True,
            status=DeliveryStatus.pending,
            next_attempt_at=now + timedelta(seconds=delay),
            last_error=error,
            updated_at=now,
        )
        return "retried"
    now = clock()
    # Not tied to the attempt: if our lease ran out and another sender took the row, the
    # receiver has it all the same (and dedupes the second copy).
    await _record(
        runtime,
        claim,
        same_attempt=False,
        status=DeliveryStatus.delivered,
        next_attempt_at=None,
        delivered_at=now,
        updated_at=now,
    )
    return "delivered"


AddressBook = Callable[[ServiceRuntime, uuid.UUID], Awaitable[str | None]]
"""Where a recipient's e-mail address comes from (profiles holds it, encrypted)."""
_ADDRESS_BOOK: list[AddressBook] = []


def use_address_book(book: AddressBook) -> None:
    """Wire the address book (app.py): notifications never imports profiles."""
    _ADDRESS_BOOK[:] = [book]


def _address_lookup(runtime: ServiceRuntime) -> AddressLookup:
    if not _ADDRESS_BOOK:
        raise RuntimeError("no address book wired: app.py calls use_address_book()")
    book = _ADDRESS_BOOK[0]

    async def lookup(user_id: uuid.UUID) -> str | None:
        return await book(runtime, user_id)

    return lookup


async def _round(
    runtime: ServiceRuntime, adapters: dict[str, DeliveryAdapter], now: datetime, batch: int
) -> PassResult:
    started = time.monotonic()

    def clock() -> datetime:  # the pass's clock: `now` (injectable) plus the time spent since
        return now + timedelta(seconds=time.monotonic() - started)

    claims = await claim_due(runtime=runtime, now=now, batch=batch, channels=sorted(adapters))
    result = PassResult(claimed=len(claims))
    if not claims:
        return result
    # The notification is read now, not copied when it was written: after a deletion request
    # its text is blanked (the request also dropped the row; one claimed just before it goes
    # out with the blanked text, and SMTP finds no address).
    async with runtime.db.session() as session:
        ids = {c.notification_id for c in claims}
        found = await session.exec(select(Notification).where(col(Notification.id).in_(ids)))
        notifications = {n.id: n for n in found.all()}
    limit = asyncio.Semaphore(_settings(runtime).notify_delivery_concurrency)

    async def attempt(claim: Claim) -> str:
        async with limit:
            return await _deliver_one(
                runtime,
                claim,
                notifications.get(claim.notification_id),
                adapters[claim.channel],
                clock,
            )

    outcomes = await asyncio.gather(*(attempt(c) for c in claims), return_exceptions=True)
    stats = state_of(runtime).outcomes
    for claim, outcome in zip(claims, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            # Recording failed (the database went away): the row is still `sending` and comes
            # back after its lease. Re-raised below so the loop logs the pass as failed.
            continue
        setattr(result, outcome, getattr(result, outcome) + 1)
        if outcome != "released":
            stats[(claim.channel, outcome)] += 1
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    if errors:
        raise errors[0]
    return result


async def refresh_backlog(*, runtime: ServiceRuntime, now: datetime) -> dict[str, int]:
    """Count open and failed rows (for the metrics) and note the oldest open row's age."""
    watched = (*OPEN_DELIVERY_STATUSES, DeliveryStatus.failed)
    stmt = (
        select(
            NotificationDelivery.status,
            func.count(),
            func.min(NotificationDelivery.created_at),
        )
        .where(col(NotificationDelivery.status).in_(watched))
        .group_by(col(NotificationDelivery.status))
    )
    async with runtime.db.session() as session:
        rows = (await session.exec(stmt)).all()
    counts = {str(s): 0 for s in watched}
    oldest: datetime | None = None
    for status, count, first in rows:
        counts[str(status)] = int(count)
        if status in OPEN_DELIVERY_STATUSES and first is not None:
            oldest = first if oldest is None else min(oldest, first)
    state = state_of(runtime)
    state.backlog = counts
    state.oldest_open_age_seconds = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
    return counts


async def run_deliveries(
    *, runtime: ServiceRuntime, now: datetime | None = None, batch: int | None = None
) -> PassResult:
    """One sender pass: deliver every due row (batch after batch), then refresh the backlog."""
    s = _settings(runtime)
    batch = batch or s.notify_delivery_batch
    adapters = configured_adapters(s, _address_lookup(runtime))
    total = PassResult()
    at = now or utcnow()
    if adapters:
        for _ in range(MAX_ROUNDS):
            done = await _round(runtime, adapters, at, batch)
            total.add(done)
            if done.claimed < batch:
                break
            at = now or utcnow()  # a real clock moves on between rounds; an injected one stays
    await refresh_backlog(runtime=runtime, now=at)
    return total


async def _sender_pass(runtime: ServiceRuntime) -> str | None:
    done = await run_deliveries(runtime=runtime)
    if not done.claimed:
        return None
    return (
        f"{done.delivered} delivered, {done.retried} to retry, {done.failed} failed, "
        f"{done.dropped} dropped, {done.released} handed back"
    )


notification_sender = periodic(
    "notification_sender",
    _sender_pass,
    interval=lambda rt: settings_of(rt, MembersSettings).notify_delivery_tick_seconds,
    wake=wake_event,
)

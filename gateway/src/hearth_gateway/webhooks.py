"""Webhooks for business systems that do not speak NATS.

Events arrive through the kernel's durable consumer (servicekit.consumer, `gateway__webhooks`,
one catch-all handler per context stream), so nothing is lost across gateway or broker
restarts: a message is acked only after the deliveries it creates are committed, and the
(subscription, event) unique key makes redelivery harmless (no inbox row needed). A failing
ingest is retried with back-off, never dead-lettered. Events for a disabled subscription are
recorded too, as `held` deliveries that are not attempted, so re-enabling it delivers
everything it missed, in order. A dispatcher then
POSTs each pending delivery, signed with HMAC-SHA256 over
`<timestamp>.<body>` (`Hearth-Signature: t=<unix>,v1=<hex>`), retries failures with
exponential back-off, keeps the log, and disables a subscription after persistent failure —
publishing `gateway.webhook.disabled.v1` from the same transaction (outbox), so members can tell
the admin who created it.

Secrets are stored encrypted (servicekit.crypto, associated data = the subscription id) and
decrypted only to sign. Targets must be public addresses (hearth_gateway.webhook_targets) unless
`webhook_allow_private_targets` is on.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import fnmatch
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import and_, case, delete, or_, select, update
from yarl import URL

from hearth_gateway.events import WebhookDisabled
from hearth_gateway.models import webhook_deliveries, webhook_subscriptions
from hearth_gateway.webhook_targets import PublicOnlyResolver, TargetRefused, literal_refusal
from servicekit import backoff, signing
from servicekit.consumer import UNLIMITED, EventConsumer
from servicekit.crypto import DecryptionError, Keyring
from servicekit.db import Database, affected_rows, on_commit, upsert_insert
from servicekit.events import CE_TYPE_PREFIX, Envelope
from servicekit.ids import utcnow, uuid7
from servicekit.outbox import Outbox

log = logging.getLogger(__name__)

# The durable's name on every context stream: kept, so deployments keep their position.
CONSUMER = "gateway__webhooks"
# Short, like the kernel's consumers: a batch in flight when NATS died comes back within
# seconds of its return. Ingest is one insert a message, far inside it.
INGEST_ACK_WAIT_SECONDS = 5.0
SIGNATURE_HEADER = "Hearth-Signature"


def sign(secret: str, timestamp: int, body: bytes, *, also: Sequence[str] = ()) -> str:
    """The Hearth-Signature header value: one `v1=` per secret (`also`: a rolled-over one)."""
    return signing.sign([secret, *also], body, timestamp)


def verify_signature(secret: str, header: str, body: bytes, *, tolerance: int = 300) -> bool:
    """What a receiver does (servicekit.signing.verify): any v1, constant time, recent t."""
    return signing.verify(header, body, [secret], tolerance=tolerance)


def new_secret() -> str:
    """A fresh signing secret (256 random bits)."""
    return "whsec_" + secrets.token_urlsafe(32)


def url_origin(url: str) -> str:
    """scheme://host[:port] of a URL: no credentials, path or query (they may hold tokens)."""
    try:
        return str(URL(url).origin())
    except ValueError:
        return "(invalid URL)"


def matches(patterns: list[str], ce_type: str) -> bool:
    """True when the event type (with or without the `hearth.` prefix) matches a filter."""
    short = ce_type.removeprefix(CE_TYPE_PREFIX)
    return any(fnmatch.fnmatchcase(short, p.removeprefix(CE_TYPE_PREFIX)) for p in patterns)


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    """Retry and disable rules."""

    max_attempts: int
    backoff_base_seconds: float
    backoff_cap_seconds: float
    disable_after_failures: int
    timeout_seconds: float
    poll_seconds: float
    batch_size: int = 100
    allow_private_targets: bool = False

    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt: exponential, capped, with +-20% jitter."""
        return backoff.delay(
            attempts,
            base=self.backoff_base_seconds,
            cap=self.backoff_cap_seconds,
            low=0.8,
            high=1.2,
        )


SECRET_COLUMNS = ("secret_encrypted", "previous_secret_encrypted")

# Delivery states: `pending` (due at next_attempt_at), `sending` (claimed by one dispatcher until
# next_attempt_at, its lease), `held` (its subscription is disabled: kept, not attempted, released
# in order on re-enable), `delivered`, `failed` (attempts exhausted; replay requeues it).
PENDING, SENDING, HELD = "pending", "sending", "held"


def _waiting_status(subscription_id: Any) -> Any:
    """`pending` while the subscription is active, else `held` (SQL, read in the statement)."""
    subs = webhook_subscriptions
    active = select(subs.c.status).where(subs.c.id == subscription_id).scalar_subquery()
    return case((active == "active", PENDING), else_=HELD)


def _without_secrets(row: Any) -> dict[str, Any]:
    return {k: v for k, v in dict(row).items() if k not in SECRET_COLUMNS}


def _previous_context(subscription_id: uuid.UUID) -> str:
    # Its own associated data, so the two ciphertexts of a row cannot be swapped either.
    return f"{subscription_id}:previous"


class WebhookStore:
    """Subscriptions and the delivery log in the gateway database."""

    def __init__(self, db: Database, keyring: Keyring) -> None:
        self.db = db
        self.keyring = keyring

    def _encrypt(self, subscription_id: uuid.UUID, secret: str) -> str:
        return self.keyring.encrypt(secret, context=str(subscription_id))

    def signing_secrets(self, row: dict[str, Any], now: datetime) -> list[str]:
        """The secrets a delivery is signed with: the current one, then a rolled-over one
        until it expires. Raises DecryptionError when the keyring cannot open them."""
        subscription_id = row["subscription_id"] if "subscription_id" in row else row["id"]
        found = [self.keyring.decrypt(row["secret_encrypted"], context=str(subscription_id))]
        previous = row.get("previous_secret_encrypted")
        until = row.get("previous_secret_expires_at")
        if previous and until is not None and until > now:
            found.append(self.keyring.decrypt(previous, context=_previous_context(subscription_id)))
        return found

    async def create(
        self, *, url: str, event_types: list[str], secret: str | None, created_by: uuid.UUID
    ) -> dict[str, Any]:
        """A new active subscription (its secret is generated unless given); the row returned
        carries the plaintext `secret` this once, the database only its ciphertext."""
        now = utcnow()
        subscription_id = uuid7()
        plaintext = secret or new_secret()
        row = {
            "id": subscription_id,
            "url": url,
            "event_types": event_types,
            "secret_encrypted": self._encrypt(subscription_id, plaintext),
            "previous_secret_encrypted": None,
            "previous_secret_expires_at": None,
            "status": "active",
            "disabled_reason": None,
            "failure_streak": 0,
            "created_by": created_by,
            "created_at": now,
            "updated_at": now,
        }
        async with self.db.session() as session:
            await session.execute(webhook_subscriptions.insert().values(**row))
            await session.commit()
        return {**_without_secrets(row), "secret": plaintext}

    async def roll_secret(
        self, subscription_id: uuid.UUID, *, secret: str | None, previous_valid_seconds: int
    ) -> tuple[str, datetime | None] | None:
        """Replace the signing secret; the old one keeps signing alongside for the grace period.

        Returns (new plaintext secret, when the old one stops signing), or None if no such
        subscription. An old secret the keyring cannot decrypt any more is dropped.
        """
        plaintext = secret or new_secret()
        subs = webhook_subscriptions
        async with self.db.session() as session:
            current = (
                await session.execute(
                    select(subs.c.secret_encrypted).where(subs.c.id == subscription_id)
                )
            ).scalar_one_or_none()
            if current is None:
                return None
            previous: str | None = None
            until: datetime | None = None
            if previous_valid_seconds > 0:
                try:
                    old = self.keyring.decrypt(current, context=str(subscription_id))
                    previous = self.keyring.encrypt(old, context=_previous_context(subscription_id))
                    until = utcnow() + timedelta(seconds=previous_valid_seconds)
                except DecryptionError:
                    log.warning("webhook %s: old secret unreadable, not kept", subscription_id)
            await session.execute(
                update(subs)
                .where(subs.c.id == subscription_id)
                .values(
                    secret_encrypted=self._encrypt(subscription_id, plaintext),
                    previous_secret_encrypted=previous,
                    previous_secret_expires_at=until,
                    updated_at=utcnow(),
                )
            )
            await session.commit()
        return plaintext, until

    async def reencrypt(self) -> dict[str, int]:
        """Re-encrypt every secret under the keyring's active key (and drop expired previous
        secrets); `unreadable` counts secrets under keys the keyring no longer holds."""
        subs = webhook_subscriptions
        now = utcnow()
        rewritten = unreadable = 0
        async with self.db.session() as session:
            rows = (
                await session.execute(
                    select(
                        subs.c.id,
                        subs.c.secret_encrypted,
                        subs.c.previous_secret_encrypted,
                        subs.c.previous_secret_expires_at,
                    )
                )
            ).all()
            for row in rows:
                values: dict[str, Any] = {}
                rekeyed = False
                if not self.keyring.is_current(row.secret_encrypted):
                    try:
                        values["secret_encrypted"] = self._encrypt(
                            row.id,
                            self.keyring.decrypt(row.secret_encrypted, context=str(row.id)),
                        )
                        rekeyed = True
                    except DecryptionError:
                        unreadable += 1
                previous = row.previous_secret_encrypted
                if previous is not None:
                    expired = row.previous_secret_expires_at is None or (
                        row.previous_secret_expires_at <= now
                    )
                    if expired:
                        values.update(
                            previous_secret_encrypted=None, previous_secret_expires_at=None
                        )
                    elif not self.keyring.is_current(previous):
                        context = _previous_context(row.id)
                        try:
                            values["previous_secret_encrypted"] = self.keyring.encrypt(
                                self.keyring.decrypt(previous, context=context), context=context
                            )
                            rekeyed = True
                        except DecryptionError:
                            values.update(
                                previous_secret_encrypted=None, previous_secret_expires_at=None
                            )
                if not values:
                    continue
                # Compare-and-set on the ciphertext read, so a concurrent roll is not undone.
                result = await session.execute(
                    update(subs)
                    .where(subs.c.id == row.id, subs.c.secret_encrypted == row.secret_encrypted)
                    .values(**values)
                )
                rewritten += int(rekeyed and affected_rows(result) == 1)
            await session.commit()
        return {"rewritten": rewritten, "unreadable": unreadable}

    async def list(
        self, *, limit: int, after: uuid.UUID | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Up to `limit` subscriptions newest first, from after `after` (never their secrets)."""
        subs = webhook_subscriptions
        # UUIDv7 ids: id order is creation order, and unique, so a stable one-column cursor.
        query = select(subs).order_by(subs.c.id.desc()).limit(limit)
        if after is not None:
            query = query.where(subs.c.id < after)
        async with self.db.session() as session:
            rows = await session.execute(query)
            return [_without_secrets(r) for r in rows.mappings()]

    async def get(self, subscription_id: uuid.UUID) -> dict[str, Any] | None:
        """One subscription (never its secrets)."""
        async with self.db.session() as session:
            row = (
                (
                    await session.execute(
                        select(webhook_subscriptions).where(
                            webhook_subscriptions.c.id == subscription_id
                        )
                    )
                )
                .mappings()
                .first()
            )
        return _without_secrets(row) if row else None

    async def update(self, subscription_id: uuid.UUID, **values: Any) -> dict[str, Any] | None:
        """Change url, filters or status; disabling holds the queued deliveries, re-enabling
        releases them, due now (and resets the failure streak)."""
        if values.get("status") == "active":
            values.update(failure_streak=0, disabled_reason=None)
        async with self.db.session() as session:
            await session.execute(
                update(webhook_subscriptions)
                .where(webhook_subscriptions.c.id == subscription_id)
                .values(**values, updated_at=utcnow())
            )
            if values.get("status") == "active":
                await release_held(session, subscription_id)
            elif values.get("status") == "disabled":
                await hold_pending(session, subscription_id)
            await session.commit()
        return await self.get(subscription_id)

    async def delete(self, subscription_id: uuid.UUID) -> bool:
        """Remove a subscription and its log."""
        async with self.db.session() as session:
            await session.execute(
                delete(webhook_deliveries).where(
                    webhook_deliveries.c.subscription_id == subscription_id
                )
            )
            result = await session.execute(
                delete(webhook_subscriptions).where(webhook_subscriptions.c.id == subscription_id)
            )
            await session.commit()
        return bool(affected_rows(result))

    async def deliveries(
        self,
        subscription_id: uuid.UUID,
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """Up to `limit` log entries, newest event first, from after (event_time, id) `after`."""
        entries = webhook_deliveries
        query = select(entries).where(entries.c.subscription_id == subscription_id)
        if after is not None:
            # The id breaks ties: events published in one batch can share an event time, and a
            # cursor on the time alone would skip the rest of them at a page boundary.
            at, ident = after
            query = query.where(
                or_(
                    entries.c.event_time < at,
                    and_(entries.c.event_time == at, entries.c.id < ident),
                )
            )
        query = query.order_by(entries.c.event_time.desc(), entries.c.id.desc()).limit(limit)
        async with self.db.session() as session:
            return [dict(r) for r in (await session.execute(query)).mappings()]

    async def replay(self, subscription_id: uuid.UUID, since: datetime, until: datetime) -> int:
        """Queue every logged event of [since, until) for delivery again: held ones too, and
        for a disabled subscription as held (sent on re-enable). One being sent is left to
        finish (requeuing it would send it twice at once)."""
        async with self.db.session() as session:
            result = await session.execute(
                update(webhook_deliveries)
                .where(
                    webhook_deliveries.c.subscription_id == subscription_id,
                    webhook_deliveries.c.event_time >= since,
                    webhook_deliveries.c.event_time < until,
                    webhook_deliveries.c.status != SENDING,
                )
                .values(
                    status=_waiting_status(subscription_id),
                    attempts=0,
                    next_attempt_at=utcnow(),
                    last_error=None,
                )
            )
            await session.commit()
        return affected_rows(result)

    async def ingest(self, envelope: Envelope) -> int:
        """`ingest_in` in a transaction of its own, committed. Returns how many are due now."""
        async with self.db.session() as session:
            due = await ingest_in(session, envelope)
            await session.commit()
        return due


async def ingest_in(session: Any, envelope: Envelope) -> int:
    """One delivery per matching subscription, `held` for disabled ones (sent when
    re-enabled), in the caller's transaction (not committed); idempotent per (subscription,
    event). Returns how many are due now."""
    subs_table = webhook_subscriptions
    subs = (
        await session.execute(
            select(subs_table.c.id, subs_table.c.event_types, subs_table.c.status)
        )
    ).all()
    wanted = {
        s.id: PENDING if s.status == "active" else HELD
        for s in subs
        if matches(list(s.event_types), envelope.type)
    }
    if not wanted:
        return 0
    payload = json.dumps(
        {
            "id": str(envelope.id),
            "type": envelope.type,
            "source": envelope.source,
            "time": envelope.time.isoformat(),
            "subject": envelope.subject,
            "specversion": envelope.specversion,
            "data": envelope.data,
        },
        separators=(",", ":"),
        default=str,
    )
    now = utcnow()
    rows = [
        {
            "id": uuid7(),
            "subscription_id": sub_id,
            "event_id": envelope.id,
            "event_type": envelope.type,
            "event_time": envelope.time,
            "payload": payload,
            "status": status,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for sub_id, status in wanted.items()
    ]
    statement = upsert_insert(session, webhook_deliveries).values(rows)
    await session.execute(statement.on_conflict_do_nothing())
    return sum(status == PENDING for status in wanted.values())


async def hold_pending(session: Any, subscription_id: Any) -> None:
    """Park a subscription's waiting deliveries when it is disabled (ones being sent finish)."""
    await session.execute(
        update(webhook_deliveries)
        .where(
            webhook_deliveries.c.subscription_id == subscription_id,
            webhook_deliveries.c.status == PENDING,
        )
        .values(status=HELD)
    )


async def release_held(session: Any, subscription_id: Any) -> None:
    """On re-enable: every held or waiting delivery is due now, so they go out in event order
    (not newest first while older ones sit out a back-off). Claimed ones keep their lease."""
    await session.execute(
        update(webhook_deliveries)
        .where(
            webhook_deliveries.c.subscription_id == subscription_id,
            webhook_deliveries.c.status.in_((PENDING, HELD)),
        )
        .values(status=PENDING, next_attempt_at=utcnow())
    )


def ingest_consumer(contexts: Sequence[str], wake: Callable[[], None]) -> EventConsumer:
    """The kernel consumer that turns every event of these contexts into deliveries.

    No inbox row (the deliveries' unique key makes a redelivery harmless) and no dead letter:
    a failing ingest (the database away) is retried with back-off until it succeeds, so no
    event is ever set aside. `wake` runs once the new deliveries are committed.
    """
    consumer = EventConsumer(
        CONSUMER, inbox=False, ack_wait=INGEST_ACK_WAIT_SECONDS, max_deliver=UNLIMITED
    )

    async def ingest(session: Any, envelope: Envelope) -> None:
        if await ingest_in(session, envelope):
            on_commit(session, wake)

    for context in contexts:
        consumer.handles_context(context)(ingest)
    return consumer


class WebhookDispatcher:
    """Delivers, retries and disables; `consumer` (run by the gateway's EventWiring) feeds it."""

    def __init__(
        self,
        store: WebhookStore,
        policy: WebhookPolicy,
        *,
        outbox: Outbox,
        contexts: list[str],
    ) -> None:
        self.store = store
        self.policy = policy
        self.outbox = outbox
        self.contexts = contexts
        self.consumer = ingest_consumer(contexts, self.wake)
        self._tasks: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None
        self._wake = asyncio.Event()
        self.stopping = False
        self.requests_sent = 0  # POSTs this dispatcher made (replica tests compare them)

    def wake(self) -> None:
        """Look for due deliveries now (after an ingest, a replay or a re-enable)."""
        self._wake.set()

    async def start(self) -> None:
        """Start the sender loop (the ingest consumer is started by the gateway's wiring)."""
        resolver = None if self.policy.allow_private_targets else PublicOnlyResolver()
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=resolver, ttl_dns_cache=10),
            timeout=aiohttp.ClientTimeout(total=self.policy.timeout_seconds),
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,  # never through an environment proxy: the target check must hold
        )
        self._tasks.append(asyncio.create_task(self._send_loop()))

    async def close(self, grace_seconds: float = 5.0) -> None:
        """Stop the sender: the delivery being sent finishes for up to `grace_seconds`, then
        it is cancelled (a delivery cut short is retried after its lease)."""
        self.stopping = True
        self._wake.set()
        if self._tasks:
            _, unfinished = await asyncio.wait(self._tasks, timeout=grace_seconds)
            for task in unfinished:
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._http is not None:
            await self._http.close()

    async def _send_loop(self) -> None:
        while not self.stopping:
            try:
                sent = await self.send_due()
            except Exception as exc:
                log.warning("webhook dispatch failed: %r", exc)
                sent = 0
            if sent == 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.policy.poll_seconds):
                        await self._wake.wait()
                self._wake.clear()

    async def send_due(self) -> int:
        """Claim and send every due delivery of active subscriptions; the number attempted."""
        now = utcnow()
        lease = now + timedelta(seconds=self.policy.timeout_seconds + 30)
        db = self.store.db
        async with db.session() as session:
            rows = (
                (
                    await session.execute(
                        select(
                            webhook_deliveries,
                            webhook_subscriptions.c.url,
                            webhook_subscriptions.c.secret_encrypted,
                            webhook_subscriptions.c.previous_secret_encrypted,
                            webhook_subscriptions.c.previous_secret_expires_at,
                            webhook_subscriptions.c.created_by,
                        )
                        .join(
                            webhook_subscriptions,
                            webhook_subscriptions.c.id == webhook_deliveries.c.subscription_id,
                        )
                        .where(
                            and_(
                                # `sending` past its lease: its dispatcher died mid-send.
                                webhook_deliveries.c.status.in_((PENDING, SENDING)),
                                webhook_deliveries.c.next_attempt_at <= now,
                                webhook_subscriptions.c.status == "active",
                            )
                        )
                        .order_by(webhook_deliveries.c.event_time, webhook_deliveries.c.id)
                        .limit(self.policy.batch_size)
                    )
                )
                .mappings()
                .all()
            )
            claimed = []
            for row in rows:  # compare-and-set claim, so two gateway replicas never both send
                result = await session.execute(
                    update(webhook_deliveries)
                    .where(
                        webhook_deliveries.c.id == row["id"],
                        webhook_deliveries.c.status == row["status"],
                        webhook_deliveries.c.next_attempt_at == row["next_attempt_at"],
                    )
                    .values(status=SENDING, next_attempt_at=lease)
                )
                if affected_rows(result) == 1:
                    claimed.append(dict(row))
            await session.commit()
        by_subscription: dict[uuid.UUID, list[dict[str, Any]]] = {}
        for delivery in claimed:
            by_subscription.setdefault(delivery["subscription_id"], []).append(delivery)
        await asyncio.gather(*(self._send_in_order(rows) for rows in by_subscription.values()))
        return len(claimed)

    async def _send_in_order(self, rows: list[dict[str, Any]]) -> None:
        for index, row in enumerate(rows):
            if self.stopping:  # shutting down: hand the rest back, due now, to any replica
                await self._defer(rows[index:], utcnow())
                return
            retry_at = await self._send(row)
            if retry_at is not None:
                # The receiver is failing: its other deliveries wait for the same retry time
                # (no attempt counted), so a down receiver gets one request per back-off step
                # and events stay roughly in order.
                await self._defer(rows[index + 1 :], retry_at)
                return

    async def _defer(self, rows: list[dict[str, Any]], until: datetime) -> None:
        if not rows:
            return
        async with self.store.db.session() as session:
            await session.execute(
                update(webhook_deliveries)
                .where(
                    webhook_deliveries.c.id.in_([r["id"] for r in rows]),
                    webhook_deliveries.c.status == SENDING,
                )
                .values(status=_waiting_status(rows[0]["subscription_id"]), next_attempt_at=until)
            )
            await session.commit()

    async def _send(self, row: dict[str, Any]) -> datetime | None:
        """POST one delivery; None when delivered, else when to try the subscription again."""
        assert self._http is not None
        body = row["payload"].encode()
        attempt = row["attempts"] + 1
        try:
            refusal = None if self.policy.allow_private_targets else literal_refusal(row["url"])
            signing = self.store.signing_secrets(row, utcnow())
        except TargetRefused as exc:
            refusal = str(exc)
        except DecryptionError as exc:
            # Its key left the keyring: no delivery can be signed until the secret is rolled.
            failure = f"signing secret unreadable: {exc}"
            return await self._record(row, attempt, False, None, failure, failure)
        if refusal is not None:
            failure = f"webhook target refused: {refusal}"
            return await self._record(row, attempt, False, None, failure, "target refused")
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(signing[0], int(time.time()), body, also=signing[1:]),
            "Hearth-Event-Id": str(row["event_id"]),
            "Hearth-Event-Type": row["event_type"],
            "Hearth-Delivery-Id": str(row["id"]),
            "Hearth-Delivery-Attempt": str(attempt),
            "User-Agent": "Hearth-Webhooks/1",
        }
        status_code: int | None = None
        error: str | None = None
        summary: str | None = None
        self.requests_sent += 1
        try:
            async with self._http.post(
                row["url"], data=body, headers=headers, allow_redirects=False
            ) as response:
                status_code = response.status
                await response.read()
                ok = 200 <= response.status < 300
                if not ok:
                    error = summary = f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            ok, error, summary = False, repr(exc)[:500], type(exc).__name__
        return await self._record(row, attempt, ok, status_code, error, summary)

    async def _record(
        self,
        row: dict[str, Any],
        attempt: int,
        ok: bool,
        status_code: int | None,
        error: str | None,
        summary: str | None = None,
    ) -> datetime | None:
        now = utcnow()
        subs = webhook_subscriptions
        retry_at = None if ok else now + timedelta(seconds=self.policy.backoff(attempt))
        async with self.store.db.session() as session:
            if ok:
                values: dict[str, Any] = {"status": "delivered", "delivered_at": now}
            else:
                exhausted = attempt >= self.policy.max_attempts
                values = {
                    "status": "failed" if exhausted else _waiting_status(row["subscription_id"]),
                    "next_attempt_at": retry_at,
                }
            await session.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id == row["id"])
                .values(attempts=attempt, last_status_code=status_code, last_error=error, **values)
            )
            if ok:
                await session.execute(
                    update(subs).where(subs.c.id == row["subscription_id"]).values(failure_streak=0)
                )
            else:
                await session.execute(
                    update(subs)
                    .where(subs.c.id == row["subscription_id"])
                    .values(failure_streak=subs.c.failure_streak + 1)
                )
                streak = (
                    await session.execute(
                        select(subs.c.failure_streak).where(subs.c.id == row["subscription_id"])
                    )
                ).scalar_one()
                if streak >= self.policy.disable_after_failures:
                    await self._disable(session, row, streak, summary, now)
            await session.commit()
        return retry_at

    async def _disable(
        self,
        session: Any,
        row: dict[str, Any],
        streak: int,
        summary: str | None,
        now: datetime,
    ) -> None:
        """Disable the subscription and, in the same transaction, record the event that gets
        its creator notified (members consumes it); deliveries are held for a re-enable."""
        subs = webhook_subscriptions
        reason = f"{streak} consecutive failed deliveries" + (
            f" (last: {summary})" if summary else ""
        )
        result = await session.execute(
            update(subs)
            .where(subs.c.id == row["subscription_id"], subs.c.status == "active")
            .values(status="disabled", updated_at=now, disabled_reason=reason[:200])
        )
        if affected_rows(result) != 1:  # another replica (or an admin) disabled it first
            return
        await hold_pending(session, row["subscription_id"])
        origin = url_origin(row["url"])
        await self.outbox.record(
            session,
            WebhookDisabled(
                subscription_id=row["subscription_id"],
                created_by=row["created_by"],
                url_origin=origin,
                reason=reason,
                failure_streak=streak,
                disabled_at=now,
            ),
            subject=str(row["subscription_id"]),
        )
        # Also an error-level line for log-based alerting (origin only: the path may hold a
        # token).
        log.error(
            "webhook subscription %s disabled after %d consecutive failures (%s)",
            row["subscription_id"],
            streak,
            origin,
        )

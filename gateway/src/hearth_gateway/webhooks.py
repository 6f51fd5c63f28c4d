"""Webhooks for business systems that do not speak NATS.

Events arrive through one durable JetStream pull consumer per context stream
(`gateway__webhooks`), so nothing is lost across restarts: a message is acked only after the
deliveries it creates are committed, and the (subscription, event) unique key makes redelivery
harmless. A dispatcher then POSTs each pending delivery, signed with HMAC-SHA256 over
`<timestamp>.<body>` (`Hearth-Signature: t=<unix>,v1=<hex>`), retries failures with
exponential back-off, keeps the log, and disables a subscription after persistent failure.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import fnmatch
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import and_, delete, select, update

from hearth_gateway.models import webhook_deliveries, webhook_subscriptions
from servicekit.db import Database, upsert_insert
from servicekit.events import CE_TYPE_PREFIX, Envelope, stream_name
from servicekit.ids import utcnow, uuid7

log = logging.getLogger(__name__)

CONSUMER = "gateway__webhooks"
SIGNATURE_HEADER = "Hearth-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The Hearth-Signature header value for a body sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(secret: str, header: str, body: bytes, *, tolerance: int = 300) -> bool:
    """What a receiver does: recompute, compare in constant time, refuse stale timestamps."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), f"t={timestamp},v1={parts.get('v1')}")


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

    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt: exponential, capped, with +-20% jitter."""
        delay = min(self.backoff_cap_seconds, self.backoff_base_seconds * 2 ** (attempts - 1))
        return delay * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not a secret


class WebhookStore:
    """Subscriptions and the delivery log in the gateway database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self, *, url: str, event_types: list[str], secret: str | None, created_by: uuid.UUID
    ) -> dict[str, Any]:
        """A new active subscription (its secret is generated unless given)."""
        now = utcnow()
        row = {
            "id": uuid7(),
            "url": url,
            "event_types": event_types,
            "secret": secret or "whsec_" + secrets.token_urlsafe(32),
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
        return row

    async def list(self) -> builtins.list[dict[str, Any]]:
        """Every subscription, newest first."""
        async with self.db.session() as session:
            rows = await session.execute(
                select(webhook_subscriptions).order_by(webhook_subscriptions.c.created_at.desc())
            )
            return [dict(r) for r in rows.mappings()]

    async def get(self, subscription_id: uuid.UUID) -> dict[str, Any] | None:
        """One subscription."""
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
        return dict(row) if row else None

    async def update(self, subscription_id: uuid.UUID, **values: Any) -> dict[str, Any] | None:
        """Change url, filters or status (re-enabling resets the failure streak)."""
        if values.get("status") == "active":
            values.update(failure_streak=0, disabled_reason=None)
        async with self.db.session() as session:
            await session.execute(
                update(webhook_subscriptions)
                .where(webhook_subscriptions.c.id == subscription_id)
                .values(**values, updated_at=utcnow())
            )
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
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def deliveries(
        self, subscription_id: uuid.UUID, *, limit: int, before: datetime | None = None
    ) -> builtins.list[dict[str, Any]]:
        """The delivery log, newest event first."""
        query = select(webhook_deliveries).where(
            webhook_deliveries.c.subscription_id == subscription_id
        )
        if before is not None:
            query = query.where(webhook_deliveries.c.event_time < before)
        query = query.order_by(webhook_deliveries.c.event_time.desc()).limit(limit)
        async with self.db.session() as session:
            return [dict(r) for r in (await session.execute(query)).mappings()]

    async def replay(self, subscription_id: uuid.UUID, since: datetime, until: datetime) -> int:
        """Queue every logged event of [since, until) for delivery again."""
        async with self.db.session() as session:
            result = await session.execute(
                update(webhook_deliveries)
                .where(
                    webhook_deliveries.c.subscription_id == subscription_id,
                    webhook_deliveries.c.event_time >= since,
                    webhook_deliveries.c.event_time < until,
                )
                .values(status="pending", attempts=0, next_attempt_at=utcnow(), last_error=None)
            )
            await session.commit()
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def ingest(self, envelope: Envelope) -> int:
        """One delivery per matching active subscription; idempotent per (subscription, event)."""
        async with self.db.session() as session:
            subs = (
                await session.execute(
                    select(webhook_subscriptions.c.id, webhook_subscriptions.c.event_types).where(
                        webhook_subscriptions.c.status == "active"
                    )
                )
            ).all()
            wanted = [s.id for s in subs if matches(list(s.event_types), envelope.type)]
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
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for sub_id in wanted
            ]
            statement = upsert_insert(session, webhook_deliveries).values(rows)
            await session.execute(statement.on_conflict_do_nothing())
            await session.commit()
        return len(wanted)


class WebhookDispatcher:
    """Consumes the context streams and delivers, retries and disables."""

    def __init__(
        self,
        store: WebhookStore,
        policy: WebhookPolicy,
        *,
        nats_url: str,
        prefix: str,
        contexts: list[str],
    ) -> None:
        self.store = store
        self.policy = policy
        self.nats_url = nats_url
        self.prefix = prefix
        self.contexts = contexts
        self._tasks: list[asyncio.Task[None]] = []
        self._nc: Any = None
        self._http: aiohttp.ClientSession | None = None
        self._wake = asyncio.Event()
        self.stopping = False

    def wake(self) -> None:
        """Look for due deliveries now (after a replay or re-enable)."""
        self._wake.set()

    async def start(self) -> None:
        """Connect to NATS and start one consumer loop per context plus the sender loop."""
        import nats

        self._nc = await nats.connect(self.nats_url, max_reconnect_attempts=-1)
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.policy.timeout_seconds),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        for context in self.contexts:
            self._tasks.append(asyncio.create_task(self._consume(context)))
        self._tasks.append(asyncio.create_task(self._send_loop()))

    async def close(self) -> None:
        """Stop the loops (unacked messages are redelivered to the next run)."""
        self.stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._http is not None:
            await self._http.close()
        if self._nc is not None:
            await self._nc.close()

    async def _bind(self, context: str) -> Any:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        js = self._nc.jetstream()
        stream = stream_name(self.prefix, context)
        await js.stream_info(stream)  # the producer owns the stream; wait until it exists
        config = ConsumerConfig(
            durable_name=CONSUMER,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=30,
            max_deliver=-1,  # never drop an event: failures are retried in the delivery table
            max_ack_pending=1000,
            filter_subject=f"{self.prefix}.{context}.>",
        )
        with contextlib.suppress(Exception):  # exists already (possibly older config)
            await js.add_consumer(stream, config)
        return await js.pull_subscribe_bind(CONSUMER, stream)

    async def _consume(self, context: str) -> None:
        import nats.errors

        while not self.stopping:
            try:
                sub = await self._bind(context)
            except Exception:  # stream not created yet, or NATS down: try again shortly
                await asyncio.sleep(1.0)
                continue
            while not self.stopping:
                try:
                    messages = await sub.fetch(50, timeout=1.0)
                except (nats.errors.TimeoutError, TimeoutError):
                    continue
                except Exception as exc:  # e.g. consumer deleted, server restarted: rebind
                    log.warning("webhook consumer on %s: %r; rebinding", context, exc)
                    await asyncio.sleep(0.5)
                    break
                for msg in messages:
                    try:
                        envelope = Envelope.from_message(msg.headers, msg.data)
                    except ValueError:
                        await msg.term()  # not a CloudEvent: never deliverable
                        continue
                    try:
                        created = await self.store.ingest(envelope)
                    except Exception as exc:
                        log.warning("webhook ingest failed, will retry: %r", exc)
                        await msg.nak(delay=1.0)
                        continue
                    await msg.ack()
                    if created:
                        self._wake.set()

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
                            webhook_subscriptions.c.secret,
                        )
                        .join(
                            webhook_subscriptions,
                            webhook_subscriptions.c.id == webhook_deliveries.c.subscription_id,
                        )
                        .where(
                            and_(
                                webhook_deliveries.c.status == "pending",
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
                        webhook_deliveries.c.status == "pending",
                        webhook_deliveries.c.next_attempt_at == row["next_attempt_at"],
                    )
                    .values(next_attempt_at=lease)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(dict(row))
            await session.commit()
        by_subscription: dict[uuid.UUID, list[dict[str, Any]]] = {}
        for row in claimed:
            by_subscription.setdefault(row["subscription_id"], []).append(row)
        await asyncio.gather(*(self._send_in_order(rows) for rows in by_subscription.values()))
        return len(claimed)

    async def _send_in_order(self, rows: list[dict[str, Any]]) -> None:
        for index, row in enumerate(rows):
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
                .where(webhook_deliveries.c.id.in_([r["id"] for r in rows]))
                .values(next_attempt_at=until)
            )
            await session.commit()

    async def _send(self, row: dict[str, Any]) -> datetime | None:
        """POST one delivery; None when delivered, else when to try the subscription again."""
        assert self._http is not None
        body = row["payload"].encode()
        attempt = row["attempts"] + 1
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(row["secret"], int(time.time()), body),
            "Hearth-Event-Id": str(row["event_id"]),
            "Hearth-Event-Type": row["event_type"],
            "Hearth-Delivery-Id": str(row["id"]),
            "Hearth-Delivery-Attempt": str(attempt),
            "User-Agent": "Hearth-Webhooks/1",
        }
        status_code: int | None = None
        error: str | None = None
        try:
            async with self._http.post(
                row["url"], data=body, headers=headers, allow_redirects=False
            ) as response:
                status_code = response.status
                await response.read()
                ok = 200 <= response.status < 300
                if not ok:
                    error = f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            ok, error = False, repr(exc)[:500]
        return await self._record(row, attempt, ok, status_code, error)

    async def _record(
        self,
        row: dict[str, Any],
        attempt: int,
        ok: bool,
        status_code: int | None,
        error: str | None,
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
                    "status": "failed" if exhausted else "pending",
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
                    await session.execute(
                        update(subs)
                        .where(subs.c.id == row["subscription_id"], subs.c.status == "active")
                        .values(
                            status="disabled",
                            updated_at=now,
                            disabled_reason=f"{streak} consecutive failed deliveries",
                        )
                    )
                    # The notification: an error-level log line that alerting picks up, and the
                    # reason on the subscription that admins see; deliveries stay queued and
                    # resume when an admin re-enables it.
                    log.error(
                        "webhook subscription %s disabled after %d consecutive failures (%s)",
                        row["subscription_id"],
                        streak,
                        row["url"],
                    )
            await session.commit()
        return retry_at

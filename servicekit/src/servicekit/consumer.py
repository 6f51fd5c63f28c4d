"""Durable JetStream pull consumers with an inbox (idempotent handling) and dead letters."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

import nats.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError, ServerError
from opentelemetry import propagate, trace
from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from servicekit.backoff import delay as backoff_delay
from servicekit.db import Database
from servicekit.events import Envelope, context_of, nats_subject, stream_name
from servicekit.ids import utcnow, uuid7
from servicekit.messaging import NatsConnection, ensure_stream, stream_config
from servicekit.tables import KitTables

log = logging.getLogger(__name__)

# How long a busy loop's batch fetch may linger for more messages. It was 50 ms: a message
# published just after the no_wait probe waited those 50 ms on every hop of a busy pipeline
# (post → screening → verdict is two hops). 5 ms keeps the batches and costs a hop at most that.
BUSY_FETCH_SECONDS = 0.005
tracer = trace.get_tracer("servicekit.consumer")

# `EventConsumer(max_deliver=UNLIMITED)`: retry a failing handler forever, never dead-letter.
UNLIMITED = -1

Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]
P = TypeVar("P", bound=BaseModel)
# A handler registered with `handles(type, payload=Model)`: it gets the parsed payload too.
PayloadHandler = Callable[[AsyncSession, Envelope, P], Awaitable[None]]


class EventConsumer:
    """A named durable consumer (`<service>__<purpose>`) and the event types it handles.

    Declared at import time by a service; `start()` binds it to the running service. One
    JetStream consumer is created per producing context's stream, all with the same name.

    `inbox=False` skips the inbox row: only for handlers idempotent by their own unique key,
    which would otherwise pay one inbox row per event (a catch-all over every stream).
    `ack_wait` and `max_deliver` override the process's settings for this consumer;
    `max_deliver=UNLIMITED` never dead-letters a failing handler (it is retried with back-off
    until it succeeds), for consumers that must not set an event aside.
    """

    def __init__(
        self,
        name: str,
        *,
        batch: int = 50,
        inbox: bool = True,
        ack_wait: float | None = None,
        max_deliver: int | None = None,
    ) -> None:
        if "__" not in name:
            raise ValueError("consumer names are <consuming-service>__<purpose>")
        if max_deliver is not None and max_deliver != UNLIMITED and max_deliver < 1:
            raise ValueError("max_deliver is at least 1, or UNLIMITED")
        self.name = name
        self.batch = batch
        self.inbox = inbox
        self.ack_wait = ack_wait
        self.max_deliver = max_deliver
        self.handlers: dict[str, Handler] = {}
        # Catch-all handlers: every event type of a context (filter `<prefix>.<ctx>.>`).
        self.context_handlers: dict[str, Handler] = {}

    @overload
    def handles(self, ce_type: str) -> Callable[[Handler], Handler]: ...

    @overload
    def handles(
        self, ce_type: str, *, payload: type[P]
    ) -> Callable[[PayloadHandler[P]], PayloadHandler[P]]: ...

    def handles(self, ce_type: str, *, payload: type[BaseModel] | None = None) -> Any:
        """Register the handler of one event type (CloudEvents type, e.g. hearth.members...v1).

        With `payload=Model` the handler also gets the data parsed as that (consumer's own,
        tolerant) model: `async def on_x(session, envelope, data: Model)`.
        """

        def register(handler: Any) -> Any:
            if ce_type in self.handlers:
                raise ValueError(f"{self.name} already handles {ce_type}")
            if payload is None:
                self.handlers[ce_type] = handler
            else:
                self.handlers[ce_type] = _parsing(handler, payload)
            return handler

        return register

    def handles_context(self, context: str) -> Callable[[Handler], Handler]:
        """Register a handler of every event type of one context (types with their own
        `handles` handler go there instead); call once per context to read several streams."""

        def register(handler: Handler) -> Handler:
            if context in self.context_handlers:
                raise ValueError(f"{self.name} already handles every event of {context}")
            self.context_handlers[context] = handler
            return handler

        return register

    def handler_for(self, ce_type: str) -> Handler | None:
        """The handler of an event type: its own, else its context's catch-all, else None."""
        return self.handlers.get(ce_type) or self.context_handlers.get(context_of(ce_type))

    @property
    def contexts(self) -> list[str]:
        """The producing contexts whose streams this consumer reads."""
        return sorted({context_of(t) for t in self.handlers} | set(self.context_handlers))

    def start(
        self,
        *,
        db: Database,
        tables: KitTables,
        nats: NatsConnection,
        subject_prefix: str,
        max_deliver: int,
        ack_wait: float,
        backoff: list[float],
        stream_max_age_days: float,
        stream_replicas: int,
        drain_seconds: float = 30.0,
    ) -> ConsumerRuntime:
        """Start one pull loop per producing stream; the declaration itself stays stateless."""
        runtime = ConsumerRuntime(
            self,
            db,
            tables,
            nats,
            subject_prefix,
            self.max_deliver if self.max_deliver is not None else max_deliver,
            self.ack_wait if self.ack_wait is not None else ack_wait,
            backoff,
            stream_max_age_days,
            stream_replicas,
            drain_seconds,
        )
        runtime.start()
        return runtime

    async def handle(self, db: Database, tables: KitTables, envelope: Envelope) -> bool:
        """Apply one event exactly once in effect; False if the inbox had it already."""
        handler = self.handler_for(envelope.type)
        if handler is None:
            return False
        async with db.session() as session:
            if not self.inbox:  # idempotent by its own key: a redelivery changes nothing
                await handler(session, envelope)
                await session.commit()
                return True
            try:
                await session.execute(
                    tables.inbox.insert().values(
                        consumer=self.name,
                        event_id=envelope.id,
                        event_type=envelope.type,
                        handled_at=utcnow(),
                    )
                )
                await handler(session, envelope)
                await session.commit()
            except IntegrityError:
                await session.rollback()
                if await _seen(session, tables, self.name, envelope):
                    return False
                raise
        return True


def _parsing(handler: PayloadHandler[Any], model: type[BaseModel]) -> Handler:
    async def parse_then_handle(session: AsyncSession, envelope: Envelope) -> None:
        # Invalid data raises here, inside the handler's transaction: retried, then dead-lettered.
        await handler(session, envelope, envelope.payload(model))

    parse_then_handle.__name__ = getattr(handler, "__name__", "handler")
    parse_then_handle.__doc__ = handler.__doc__
    return parse_then_handle


async def _seen(session: AsyncSession, tables: KitTables, consumer: str, env: Envelope) -> bool:
    row = await session.execute(
        select(tables.inbox.c.event_id).where(
            tables.inbox.c.consumer == consumer, tables.inbox.c.event_id == env.id
        )
    )
    found = row.first() is not None
    await session.rollback()
    return found


class ConsumerRuntime:
    """The running loops of one consumer in one process."""

    def __init__(
        self,
        consumer: EventConsumer,
        db: Database,
        tables: KitTables,
        nats: NatsConnection,
        prefix: str,
        max_deliver: int,
        ack_wait: float,
        backoff: list[float],
        stream_max_age_days: float,
        stream_replicas: int,
        drain_seconds: float = 30.0,
    ) -> None:
        self.consumer = consumer
        self.db = db
        self.tables = tables
        self.nats = nats
        self.prefix = prefix
        self.max_deliver = max_deliver
        self.ack_wait = ack_wait
        self.drain_seconds = drain_seconds
        self.backoff = backoff or [1.0]
        self.stream_max_age_days = stream_max_age_days
        self.stream_replicas = stream_replicas
        self.tasks: list[asyncio.Task[None]] = []
        self.rebind: dict[str, bool] = {}
        self.stopping = False
        self._busy: set[asyncio.Task[Any]] = set()  # loops in the middle of a message
        self.stats = {"handled": 0, "duplicates": 0, "retried": 0, "dead_lettered": 0}
        # Failures outside the handler (dead-letter write, ack/nak/term, a bug in the loop):
        # each one is logged, the batch is handed back and the loop starts over.
        self.loop_errors = 0
        nats.on_reconnect.append(self._on_reconnect)

    def start(self) -> None:
        """Start a pull loop per producing stream."""
        for context in self.consumer.contexts:
            self.rebind[context] = True
            self.tasks.append(
                asyncio.create_task(self._loop(context), name=f"{self.consumer.name}:{context}")
            )

    async def stop(self) -> None:
        """Finish the message in hand and stop every loop."""
        self.stopping = True
        # Idle loops (waiting in fetch) stop at once; a loop in the middle of a message gets
        # up to drain_seconds to commit and ack it. The heartbeat keeps the message ours that
        # long (ack_wait alone is short); the inbox absorbs a redelivery if we are cut off.
        busy = [t for t in self.tasks if t in self._busy]
        for task in self.tasks:
            if task not in self._busy:
                task.cancel()
        if busy:
            _, late = await asyncio.wait(busy, timeout=self.drain_seconds)
            for task in late:
                task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._on_reconnect in self.nats.on_reconnect:
            self.nats.on_reconnect.remove(self._on_reconnect)

    async def _on_reconnect(self) -> None:
        # nats.py pull subscriptions may not resume after a server restart (nats.py #504):
        # rebuild stream, consumer and subscription whenever the connection comes back.
        for context in self.rebind:
            self.rebind[context] = True

    def _filter(self, context: str) -> str:
        types = [t for t in self.consumer.handlers if context_of(t) == context]
        if context in self.consumer.context_handlers:
            return f"{self.prefix}.{context}.>"
        # One exact subject when we can; a context wildcard otherwise (filter_subjects needs
        # NATS 2.10, and 2.9 servers are still common). Unhandled types are acked and skipped.
        return (
            nats_subject(self.prefix, types[0]) if len(types) == 1 else f"{self.prefix}.{context}.>"
        )

    def stream_config(self, context: str) -> StreamConfig:
        """The producing context's stream as this consumer creates it if it is missing."""
        return stream_config(
            self.prefix,
            context,
            max_age_days=self.stream_max_age_days,
            replicas=self.stream_replicas,
        )

    async def _bind(self, context: str) -> Any:
        js = self.nats.js
        assert js is not None
        await ensure_stream(js, self.stream_config(context))
        stream = stream_name(self.prefix, context)
        config = ConsumerConfig(
            durable_name=self.consumer.name,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            # Unlimited on the server: this process counts deliveries and dead-letters at
            # max_deliver. A server-side cap would drop a message for good whenever its last
            # delivery could not be dead-lettered (the database away): it must come back.
            max_deliver=-1,
            max_ack_pending=1000,
            filter_subject=self._filter(context),
        )
        try:
            # Create or update: editable fields (ack_wait, max_ack_pending) of an existing
            # durable take the new values, so a deployment picks up a changed ack_wait.
            await js.add_consumer(stream, config)
        except (BadRequestError, ServerError) as exc:  # a field that cannot change (10012)
            log.warning(
                "consumer %s on %s kept its configuration: %s", self.consumer.name, stream, exc
            )
        return await js.pull_subscribe_bind(self.consumer.name, stream)

    async def _loop(self, context: str) -> None:
        failures = 0
        while not self.stopping:
            if not self.nats.connected or self.nats.js is None:
                await asyncio.sleep(0.2)
                continue
            try:
                sub = await self._bind(context)
            except Exception as exc:
                log.warning("consumer %s cannot bind to %s: %s", self.consumer.name, context, exc)
                failures += 1
                await asyncio.sleep(backoff_delay(failures, base=0.2, cap=5.0, low=1.0))
                continue
            failures = 0
            self.rebind[context] = False
            try:
                await self._pull(context, sub)
            except Exception:
                # Never let the task die: a dead loop consumes nothing and says nothing.
                self.loop_errors += 1
                log.exception(
                    "consumer %s failed outside its handler on %s; rebinding",
                    self.consumer.name,
                    context,
                )
                self.rebind[context] = True
                if not self.stopping:
                    await asyncio.sleep(1.0)
            finally:
                # Also when stop() cancels us: nats.py's fetch() takes messages off the queue
                # without task_done(), so a subscription left behind makes drain() wait out
                # its whole timeout on shutdown.
                try:
                    await sub.unsubscribe()
                except Exception:
                    pass

    async def _pull(self, context: str, sub: Any) -> None:
        # nats.py's fetch(n) returns on the first message only when messages are already
        # waiting; otherwise it lingers until all n arrive or the timeout ends, which would
        # add up to a second to every idle hop. So: idle, wait for one; busy, take batches,
        # with a short timeout: its first request (no_wait) takes whatever is waiting, and a
        # message arriving during the lingering rest would wait out the whole timeout.
        idle = 0
        busy = False
        while not self.stopping and not self.rebind[context]:
            try:
                if busy:
                    messages = await sub.fetch(self.consumer.batch, timeout=BUSY_FETCH_SECONDS)
                else:
                    messages = await sub.fetch(1, timeout=1.0)
            except (nats.errors.TimeoutError, TimeoutError):
                if busy:
                    busy = False
                    continue
                idle += 1
                # A pull on a deleted durable just times out, so look for it now and then
                # (one cheap API call every few idle seconds) and rebind if it has vanished.
                if idle % 3 == 0 and not await self._consumer_exists(context):
                    return
                continue
            except Exception as exc:
                log.warning("consumer %s fetch failed on %s: %s", self.consumer.name, context, exc)
                await asyncio.sleep(0.5)
                return
            idle = 0
            busy = True
            task = asyncio.current_task()
            assert task is not None
            self._busy.add(task)
            # The whole batch is ours from the fetch: messages waiting behind a slow handler
            # would otherwise pass their short ack_wait and be redelivered to another process.
            unsettled = list(messages)
            heartbeat = asyncio.create_task(self._heartbeat(unsettled))
            try:
                for i, message in enumerate(messages):
                    if self.stopping:
                        # Hand the rest of the batch back now rather than after ack_wait.
                        for rest in messages[i:]:
                            await rest.nak()
                        return
                    try:
                        await self._process(message)
                        unsettled.remove(message)
                    except Exception:
                        # Whatever failed (dead-letter write, ack), this message and the rest
                        # of the batch come back after a pause instead of after ack_wait.
                        await self._hand_back(messages[i:])
                        raise
            finally:
                heartbeat.cancel()
                self._busy.discard(task)

    async def _heartbeat(self, unsettled: list[Msg]) -> None:
        # +WPI resets the server's ack_wait timer; twice per ack_wait leaves room for one lost.
        interval = max(self.ack_wait / 2, 0.05)
        while unsettled:
            await asyncio.sleep(interval)
            for message in list(unsettled):
                try:
                    await message.in_progress()
                except Exception:  # NATS away: nothing to extend; the inbox absorbs a redelivery
                    pass

    async def _hand_back(self, messages: list[Msg]) -> None:
        for message in messages:
            try:
                await message.nak(delay=self._delay(message.metadata.num_delivered or 1))
            except Exception:  # NATS away too: ack_wait redelivers it
                pass

    def _delay(self, delivered: int) -> float:
        return self.backoff[min(delivered - 1, len(self.backoff) - 1)]

    async def _consumer_exists(self, context: str) -> bool:
        try:
            assert self.nats.js is not None
            await self.nats.js.consumer_info(stream_name(self.prefix, context), self.consumer.name)
            return True
        except NotFoundError:
            log.warning("consumer %s vanished from %s; rebinding", self.consumer.name, context)
            return False
        except Exception:
            return True

    async def _process(self, message: Msg) -> None:
        delivered = message.metadata.num_delivered or 1
        try:
            envelope = Envelope.from_message(message.headers, message.data)
        except ValueError as exc:
            await self._dead_letter(message, None, f"unparseable: {exc}", delivered)
            return
        if self.consumer.handler_for(envelope.type) is None:
            await message.ack()
            return
        parent = propagate.extract(message.headers or {})
        with tracer.start_as_current_span(
            f"consume {envelope.type}",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.consumer.group.name": self.consumer.name,
            },
        ):
            try:
                applied = await self.consumer.handle(self.db, self.tables, envelope)
            except Exception as exc:
                if self.max_deliver != UNLIMITED and delivered >= self.max_deliver:
                    log.error(
                        "consumer %s: %s dead-lettered after %d deliveries: %s",
                        self.consumer.name,
                        envelope.id,
                        delivered,
                        exc,
                    )
                    await self._dead_letter(message, envelope, repr(exc), delivered)
                else:
                    self.stats["retried"] += 1
                    await message.nak(delay=self._delay(delivered))
                return
        self.stats["handled" if applied else "duplicates"] += 1
        await message.ack()

    async def _dead_letter(
        self, message: Msg, envelope: Envelope | None, error: str, delivered: int
    ) -> None:
        async with self.db.session() as session:
            await session.execute(
                self.tables.dead_letters.insert().values(
                    id=uuid7(),
                    consumer=self.consumer.name,
                    event_id=envelope.id if envelope else None,
                    event_type=envelope.type if envelope else None,
                    nats_subject=message.subject,
                    headers=dict(message.headers or {}),
                    body=message.data.decode("utf-8", "replace"),
                    error=error[:4000],
                    deliveries=delivered,
                    created_at=utcnow(),
                )
            )
            await session.commit()
        self.stats["dead_lettered"] += 1
        await message.term()


async def replay_dead_letter(
    consumer: EventConsumer, db: Database, tables: KitTables, dead_letter_id: Any
) -> bool:
    """Run a dead letter through its consumer's handler again; marks it replayed on success."""
    async with db.session() as session:
        row = (
            await session.execute(
                select(tables.dead_letters).where(tables.dead_letters.c.id == dead_letter_id)
            )
        ).first()
        await session.commit()
    if row is None:
        return False
    envelope = Envelope.from_message(row.headers, row.body.encode())
    await consumer.handle(db, tables, envelope)
    async with db.session() as session:
        await session.execute(
            update(tables.dead_letters)
            .where(tables.dead_letters.c.id == dead_letter_id)
            .values(replayed_at=utcnow())
        )
        await session.commit()
    return True

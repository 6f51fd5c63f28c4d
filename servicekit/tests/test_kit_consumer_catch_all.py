"""A catch-all consumer: every event type of several contexts, without inbox rows, its own
ack_wait, never dead-lettering, and commit hooks that run only for a committed handler."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from servicekit.consumer import UNLIMITED, EventConsumer
from servicekit.db import on_commit
from servicekit.events import Envelope
from servicekit.testing.harness import Broker, eventually, relay_envelope

ACK_WAIT = 1.5
FAILURES = 4  # more than the process's consumer_max_deliver (2 below)


def test_declaration_rules() -> None:
    consumer = EventConsumer("kittest__all")

    @consumer.handles("hearth.kitone.special.thing.v1")
    async def special(session: Any, envelope: Envelope) -> None: ...

    @consumer.handles_context("kitone")
    async def every(session: Any, envelope: Envelope) -> None: ...

    assert consumer.contexts == ["kitone"]
    assert consumer.handler_for("hearth.kitone.special.thing.v1") is special
    assert consumer.handler_for("hearth.kitone.other.thing.v1") is every
    assert consumer.handler_for("hearth.kittwo.other.thing.v1") is None
    with pytest.raises(ValueError):
        consumer.handles_context("kitone")(every)
    with pytest.raises(ValueError):
        EventConsumer("kittest__bad", max_deliver=0)


async def test_a_catch_all_reads_every_type_of_each_context_once_without_inbox_rows(
    any_database_url: str, nats_url: str, subject_prefix: str, start_kit, nats_client
) -> None:
    consumer = EventConsumer(
        "kittest__everything", inbox=False, ack_wait=ACK_WAIT, max_deliver=UNLIMITED
    )
    attempts: dict[str, int] = {}
    committed: list[str] = []

    async def record(session: Any, envelope: Envelope) -> None:
        key = str(envelope.id)
        attempts[key] = attempts.get(key, 0) + 1
        on_commit(session, lambda: committed.append(key))
        if envelope.data.get("fail") and attempts[key] <= FAILURES:
            raise RuntimeError("not yet")  # rolled back: its commit hook must not run

    for context in ("kitone", "kittwo"):
        consumer.handles_context(context)(record)

    broker = Broker(nats_client, subject_prefix)
    events = [
        relay_envelope("hearth.kitone.thing.made.v1", n=1),
        relay_envelope("hearth.kitone.other.changed.v2", n=2),
        relay_envelope("hearth.kittwo.thing.made.v1", n=3),
        relay_envelope("hearth.kittwo.thing.made.v1", fail=True),
    ]
    async with start_kit(
        any_database_url, nats_url, subject_prefix, consumer_max_deliver=2
    ) as runtime:
        running = runtime.wiring.start_consumer(consumer)
        for envelope in events:
            await broker.publish(envelope)
        # A redelivery (same event, new message) is applied again: the handler's own key
        # would absorb it; the kernel writes no inbox row to tell.
        await broker.publish(events[0], msg_id=str(uuid.uuid4()))

        async def all_committed() -> bool:
            return len(committed) == len(events) + 1

        await eventually(all_committed, timeout=20)
        assert sorted(committed) == sorted([str(e.id) for e in events] + [str(events[0].id)])
        assert attempts[str(events[3].id)] == FAILURES + 1  # retried past max_deliver
        assert running.stats["dead_lettered"] == 0 and running.stats["retried"] == FAILURES
        async with runtime.db.session() as session:
            tables = runtime.tables
            inbox = (
                await session.execute(
                    select(func.count())
                    .select_from(tables.inbox)
                    .where(tables.inbox.c.consumer == consumer.name)
                )
            ).scalar_one()
            dead = (
                await session.execute(select(func.count()).select_from(tables.dead_letters))
            ).scalar_one()
        assert inbox == 0 and dead == 0
        js = nats_client.jetstream()
        for context in ("kitone", "kittwo"):
            info = await js.consumer_info(
                f"{subject_prefix.upper()}_{context.upper()}", consumer.name
            )
            assert info.config.ack_wait == ACK_WAIT  # the consumer's own, not the process's 5 s
            assert info.config.filter_subject == f"{subject_prefix}.{context}.>"

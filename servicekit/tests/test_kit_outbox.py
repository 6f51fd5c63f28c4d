"""Outbox atomicity, ordered relay, and no loss across a NATS outage."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import nats
import nats.js.errors
import pytest
from sqlalchemy import func, select

import kitapp
from servicekit.events import Envelope
from servicekit.testing.backends import free_port, start_nats_server
from servicekit.testing.harness import eventually


async def _write(runtime, text: str, *, commit: bool = True, poison: bool = False) -> uuid.UUID:
    note_id = uuid.uuid4()
    async with runtime.db.session() as session:
        session.add(kitapp.Note(id=note_id, text=text))
        await runtime.outbox.record(
            session,
            kitapp.NoteWritten(note_id=note_id, text=text, poison=poison),
            subject=str(note_id),
        )
        if commit:
            await session.commit()
        else:
            await session.rollback()
    return note_id


async def seen(runtime, note_id: uuid.UUID | None = None) -> int:
    """The consumer's effect count, read in a fresh short transaction."""
    async with runtime.db.session() as session:
        return await kitapp.seen_count(session, note_id)


async def test_rolled_back_transaction_leaves_neither_state_nor_event(
    any_database_url: str, nats_url: str, subject_prefix: str, start_kit
) -> None:
    async with start_kit(any_database_url, nats_url, subject_prefix) as runtime:
        note_id = await _write(runtime, "never happened", commit=False)
        kept = await _write(runtime, "kept")
        async with runtime.db.session() as session:
            assert await session.get(kitapp.Note, note_id) is None
            outbox = runtime.tables.outbox
            ids = (await session.execute(select(outbox.c.event_id, outbox.c.data))).all()
        assert [row.data["note_id"] for row in ids] == [str(kept)]
        await eventually(lambda: seen(runtime, kept))
        assert await seen(runtime, note_id) == 0


async def test_relay_publishes_cloudevents_in_order_with_dedupe_id(
    any_database_url: str, nats_url: str, subject_prefix: str, start_kit, nats_client
) -> None:
    async with start_kit(any_database_url, nats_url, subject_prefix) as runtime:
        written = [await _write(runtime, f"n{i}") for i in range(20)]
        js = nats_client.jetstream()

        async def subscribed():  # the relay creates the stream on its first publish
            try:
                return await js.subscribe(
                    f"{subject_prefix}.kittest.note.written.v1", ordered_consumer=True
                )
            except nats.js.errors.NotFoundError:
                return None

        sub = await eventually(subscribed)
        received: list[Envelope] = []
        headers: list[dict] = []
        while len(received) < 20:
            msg = await sub.next_msg(timeout=10)
            headers.append(msg.headers)
            received.append(Envelope.from_message(msg.headers, msg.data))
        assert [uuid.UUID(e.data["note_id"]) for e in received] == written
        assert all(h["Nats-Msg-Id"] == h["ce-id"] for h in headers)
        assert all(
            e.type == "hearth.kittest.note.written.v1" and e.id.version == 7 for e in received
        )
        # Marking rows published follows the PubAcks; the subscriber may be faster.
        assert await eventually(lambda: _drained(runtime))


async def _drained(runtime) -> bool:
    pending, age = await runtime.relay.backlog()
    return pending == 0 and age is None


async def test_nats_down_then_back_loses_nothing_and_duplicates_nothing(
    any_database_url: str, subject_prefix: str, start_kit, tmp_path: Path
) -> None:
    port = free_port()
    store = tmp_path / "js"
    proc, url = start_nats_server(store, port)
    try:
        async with start_kit(any_database_url, url, subject_prefix) as runtime:
            first = await _write(runtime, "before the outage")
            await eventually(lambda: seen(runtime, first))
            proc.terminate()
            proc.wait(10)
            notes = [await _write(runtime, f"during {i}") for i in range(100)]
            pending, age = await runtime.relay.backlog()
            assert pending == 100 and age is not None  # held safely in the outbox
            await asyncio.sleep(1.0)
            proc, _ = start_nats_server(store, port)  # same port and store: NATS is back

            async def all_seen() -> bool:
                return await seen(runtime) == 101

            await eventually(all_seen, timeout=60)
            async with runtime.db.session() as session:
                for note_id in notes:
                    assert await kitapp.seen_count(session, note_id) == 1
                inbox = runtime.tables.inbox
                assert (
                    await session.execute(select(func.count()).select_from(inbox))
                ).scalar_one() == 101
            assert (await runtime.relay.backlog())[0] == 0
            nc = await nats.connect(url)
            info = await nc.jetstream().stream_info(f"{subject_prefix.upper()}_KITTEST")
            assert info.state.messages == 101  # every event published exactly once
            await nc.close()
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("copies", [2])
async def test_same_event_twice_has_one_effect(
    any_database_url: str, nats_url: str, subject_prefix: str, start_kit, nats_client, copies: int
) -> None:
    async with start_kit(any_database_url, nats_url, subject_prefix) as runtime:
        note_id = await _write(runtime, "once")
        await eventually(lambda: seen(runtime, note_id))
        async with runtime.db.session() as session:
            outbox = runtime.tables.outbox
            row = (
                await session.execute(
                    select(outbox).where(outbox.c.data["note_id"].as_string() == str(note_id))
                )
            ).one()
        # Redeliver the very same event outside JetStream's duplicate window logic: strip
        # Nats-Msg-Id so the server accepts it again, as a redelivery after the window would.
        envelope = Envelope(
            id=row.event_id,
            source=row.source,
            type=row.event_type,
            time=row.occurred_at,
            subject=row.ce_subject,
            data=row.data,
        )
        headers = {k: v for k, v in envelope.headers().items() if k != "Nats-Msg-Id"}
        js = nats_client.jetstream()
        for _ in range(copies):
            await js.publish(row.nats_subject, envelope.body(), headers=headers)
        await asyncio.sleep(1.0)

        async def handled_all() -> bool:
            return sum(c.stats["duplicates"] for c in runtime.consumers) >= copies

        await eventually(handled_all)
        assert await seen(runtime, note_id) == 1


async def test_poison_event_is_dead_lettered_and_consumer_keeps_going(
    any_database_url: str, nats_url: str, subject_prefix: str, start_kit
) -> None:
    async with start_kit(
        any_database_url, nats_url, subject_prefix, consumer_max_deliver=3
    ) as runtime:
        poison = await _write(runtime, "bad", poison=True)
        after = await _write(runtime, "good after bad")
        await eventually(lambda: seen(runtime, after))
        dead = runtime.tables.dead_letters

        async def dead_lettered():
            async with runtime.db.session() as session:
                return (await session.execute(select(dead))).all()

        rows = await eventually(dead_lettered)
        assert len(rows) == 1
        assert rows[0].event_id is not None and rows[0].deliveries == 3
        assert "poison note" in rows[0].error
        assert rows[0].headers["ce-type"] == "hearth.kittest.note.written.v1"
        assert str(poison) in rows[0].body
        assert sum(c.stats["retried"] for c in runtime.consumers) == 2
        # The consumer is still alive and handling new events.
        later = await _write(runtime, "still going")
        await eventually(lambda: seen(runtime, later))


async def _ddl(runtime, sql: str) -> None:
    async with runtime.db.engine.begin() as conn:
        await conn.exec_driver_sql(sql)


async def test_a_failed_dead_letter_write_neither_stops_the_consumer_nor_loses_the_message(
    any_database_url: str,
    nats_url: str,
    subject_prefix: str,
    start_kit,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with start_kit(
        any_database_url, nats_url, subject_prefix, consumer_max_deliver=2
    ) as runtime:
        (consumer,) = runtime.consumers
        # The database refuses the dead-letter write (as in an outage), and only that write:
        # the loop fails outside the handler, where nothing used to catch it.
        await _ddl(runtime, "ALTER TABLE dead_letters RENAME TO dead_letters_away")
        poison = await _write(runtime, "bad", poison=True)

        async def failed_outside_the_handler() -> bool:
            return consumer.loop_errors >= 1

        await eventually(failed_outside_the_handler)
        await _ddl(runtime, "ALTER TABLE dead_letters_away RENAME TO dead_letters")

        async def dead_lettered():
            async with runtime.db.session() as session:
                return (await session.execute(select(runtime.tables.dead_letters))).all()

        rows = await eventually(dead_lettered, timeout=30)
        assert len(rows) == 1 and str(poison) in rows[0].body
        # Delivered again after the failed write, although past max_deliver: not dropped.
        assert rows[0].deliveries > 2
        assert consumer.stats["dead_lettered"] == 1
        # The same loop is still consuming.
        later = await _write(runtime, "still going")
        await eventually(lambda: seen(runtime, later))
        assert all(not task.done() for task in consumer.tasks)
    failures = [r for r in caplog.records if "failed outside its handler" in r.getMessage()]
    assert failures and failures[0].exc_info is not None  # logged with the exception


async def test_consumer_rebinds_when_its_durable_disappears(
    any_database_url: str, nats_url: str, subject_prefix: str, start_kit, nats_client
) -> None:
    async with start_kit(any_database_url, nats_url, subject_prefix) as runtime:
        first = await _write(runtime, "before")
        await eventually(lambda: seen(runtime, first))
        # As after a server that lost its state: the durable consumer is gone.
        await nats_client.jetstream().delete_consumer(
            f"{subject_prefix.upper()}_KITTEST", "kittest__notes"
        )
        after = await _write(runtime, "after the consumer vanished")
        await eventually(lambda: seen(runtime, after), timeout=30)
        assert await seen(runtime, first) == 1

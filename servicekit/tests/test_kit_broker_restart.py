"""Recovery after a broker crash: consumers catch up within seconds, long handlers are kept."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from pathlib import Path

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import func, select

import kitapp
from servicekit.settings import ServiceSettings
from servicekit.testing.backends import free_port, start_nats_server
from servicekit.testing.harness import eventually

DEFAULT_ACK_WAIT = ServiceSettings.model_fields["consumer_ack_wait_seconds"].default
ROUNDS = 10
CATCH_UP_BOUND_SECONDS = 5.0


async def _write(runtime, text: str, pause_seconds: float = 0.0) -> uuid.UUID:
    note_id = uuid.uuid4()
    async with runtime.db.session() as session:
        session.add(kitapp.Note(id=note_id, text=text))
        await runtime.outbox.record(
            session,
            kitapp.NoteWritten(note_id=note_id, text=text, pause_seconds=pause_seconds),
            subject=str(note_id),
        )
        await session.commit()
    return note_id


async def _effects(runtime) -> tuple[int, int, int]:
    """(effect rows, distinct notes with an effect, inbox rows) from the consumer's own data."""
    async with runtime.db.session() as session:
        seen = kitapp.NoteSeen
        rows, distinct = (
            await session.execute(select(func.count(), func.count(func.distinct(seen.note_id))))
        ).one()
        inbox = runtime.tables.inbox
        handled = (await session.execute(select(func.count()).select_from(inbox))).scalar_one()
        await session.commit()
    return int(rows), int(distinct), int(handled)


async def _writer(runtime, written: list[uuid.UUID], stop: asyncio.Event) -> None:
    while not stop.is_set():
        written.append(await _write(runtime, f"n{len(written)}"))
        await asyncio.sleep(0.01)


async def test_consumers_catch_up_within_seconds_after_a_sigkilled_broker_returns(
    any_database_url: str, subject_prefix: str, start_kit, tmp_path: Path
) -> None:
    port = free_port()
    store = tmp_path / "js"
    proc, url = start_nats_server(store, port)
    catch_up: list[float] = []
    written: list[uuid.UUID] = []
    try:
        async with start_kit(
            any_database_url, url, subject_prefix, consumer_ack_wait_seconds=DEFAULT_ACK_WAIT
        ) as runtime:
            for _ in range(ROUNDS):
                stop = asyncio.Event()
                writer = asyncio.create_task(_writer(runtime, written, stop))
                await asyncio.sleep(0.4)  # mid-stream: relay publishing, consumer handling
                proc.kill()  # SIGKILL: no flush, no goodbye to the clients
                proc.wait(10)
                await asyncio.sleep(0.3)  # the stream goes on into the outbox
                stop.set()
                await writer
                proc, _ = start_nats_server(store, port)  # same port and store
                back = time.monotonic()
                total = len(written)
                while await _effects(runtime) != (total, total, total):
                    assert time.monotonic() - back < 60, await _effects(runtime)
                    await asyncio.sleep(0.02)
                catch_up.append(time.monotonic() - back)
            duplicates = sum(c.stats["duplicates"] for c in runtime.consumers)
            async with runtime.db.session() as session:
                ids = set((await session.execute(select(kitapp.NoteSeen.note_id))).scalars())
            assert ids == set(written)  # none lost, none counted twice (effects == distinct)
    finally:
        proc.kill()
        proc.wait(10)
    cuts = statistics.quantiles(catch_up, n=100, method="inclusive")
    p50, p99 = statistics.median(catch_up), cuts[98]
    print(
        f"\nbroker SIGKILL x{ROUNDS}, ack_wait={DEFAULT_ACK_WAIT}s, {len(written)} events: "
        f"catch-up after NATS is back p50={p50:.2f}s p99={p99:.2f}s max={max(catch_up):.2f}s "
        f"(redeliveries absorbed by the inbox: {duplicates})"
    )
    assert p99 <= CATCH_UP_BOUND_SECONDS, catch_up


async def test_a_handler_longer_than_ack_wait_is_not_redelivered(
    any_database_url: str, nats_url: str, subject_prefix: str, start_kit, nats_client
) -> None:
    ack_wait = 1.0
    async with start_kit(
        any_database_url, nats_url, subject_prefix, consumer_ack_wait_seconds=ack_wait
    ) as runtime:
        # The idle loop fetches one message, then batches: the slow one and the one behind it
        # arrive together, so the one behind also waits longer than ack_wait before its turn.
        first = await _write(runtime, "first")
        slow = await _write(runtime, "slow", pause_seconds=2.5 * ack_wait)
        behind = await _write(runtime, "waits in the same batch behind the slow one")

        async def both_handled() -> bool:
            return (await _effects(runtime))[2] == 3

        await eventually(both_handled, timeout=20)
        await asyncio.sleep(1.5 * ack_wait)  # a redelivery would have arrived by now
        info = await nats_client.jetstream().consumer_info(
            f"{subject_prefix.upper()}_KITTEST", "kittest__notes"
        )
        assert info.config.ack_wait == ack_wait
        assert info.num_redelivered == 0 and info.num_ack_pending == 0
        assert info.delivered.consumer_seq == 3  # deliveries == messages: each delivered once
        (consumer,) = runtime.consumers
        assert consumer.stats == {"handled": 3, "duplicates": 0, "retried": 0, "dead_lettered": 0}
        assert await _effects(runtime) == (3, 3, 3)
        assert {first, slow, behind} == set(await _seen_ids(runtime))


async def _seen_ids(runtime) -> list[uuid.UUID]:
    async with runtime.db.session() as session:
        return list((await session.execute(select(kitapp.NoteSeen.note_id))).scalars())


async def test_an_existing_durable_takes_the_new_ack_wait(
    any_database_url: str, nats_url: str, subject_prefix: str, start_kit, nats_client
) -> None:
    js = nats_client.jetstream()
    stream = f"{subject_prefix.upper()}_KITTEST"
    await js.add_stream(name=stream, subjects=[f"{subject_prefix}.kittest.>"])
    # As deployed before: the same durable with the old 30 s ack_wait.
    await js.add_consumer(
        stream,
        ConsumerConfig(
            durable_name="kittest__notes",
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=30,
            max_deliver=-1,
            max_ack_pending=1000,
            filter_subject=f"{subject_prefix}.kittest.note.written.v1",
        ),
    )
    async with start_kit(
        any_database_url, nats_url, subject_prefix, consumer_ack_wait_seconds=DEFAULT_ACK_WAIT
    ) as runtime:
        note = await _write(runtime, "after the upgrade")
        await eventually(lambda: _seen_ids(runtime))
        info = await js.consumer_info(stream, "kittest__notes")
        assert info.config.ack_wait == DEFAULT_ACK_WAIT != 30
        assert await _seen_ids(runtime) == [note]

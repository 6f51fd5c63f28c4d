"""The audit log: every recorded event is chained in its own transaction, concurrent appends do
not fork the chain, one changed byte anywhere is named by `verify`, the head is announced."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from hearth_moderation.app import definition
from hearth_moderation.audit.cli import verify_command
from hearth_moderation.audit.models import AuditChainHead, AuditRecord
from hearth_moderation.audit.service import publish_head, verify_chain
from hearth_moderation.consumers import screening
from hearth_moderation.events import RuleSetPublished
from servicekit.deps import UnitOfWork
from servicekit.ids import utcnow, uuid7
from servicekit.testing.contracts import producer_envelope
from servicekit.testing.harness import Identities, RunningService

HEAD = "hearth.moderation.audit.chain_head.v1"


async def _submit(service: RunningService, community: uuid.UUID, body: str) -> uuid.UUID:
    post_id = uuid7()
    envelope = producer_envelope(
        "hearth.content.post.submitted.v1",
        {
            "post_id": str(post_id),
            "community_id": str(community),
            "author_id": str(uuid7()),
            "title": "Hello",
            "body": body,
            "format": "text",
            "submitted_at": utcnow().isoformat(),
        },
    )
    assert await screening.handle(service.runtime.db, service.runtime.tables, envelope)
    return post_id


async def _records(service: RunningService) -> list[AuditRecord]:
    async with service.runtime.db.session() as session:
        rows = await session.execute(select(AuditRecord).order_by(AuditRecord.seq))  # type: ignore[arg-type]
        return list(rows.scalars())


async def _verify(service: RunningService):  # type: ignore[no-untyped-def]
    async with service.runtime.db.session() as session:
        return await verify_chain(session)


def _rule_set_event(community: uuid.UUID) -> RuleSetPublished:
    return RuleSetPublished(
        rule_set_id=uuid7(),
        community_id=community,
        version=1,
        words=0,
        regexes=0,
        detectors=[],
        published_at=utcnow(),
    )


async def _fill(service: RunningService, identities: Identities) -> uuid.UUID:
    community = uuid7()
    for body in ("fine", "click here 加微信", "also fine"):
        await _submit(service, community, body)
    r = await service.client.put(
        f"/communities/{community}/rules",
        json={"rules": {"words": [{"term": "spam", "action": "flag"}]}},
        headers=identities.headers(None, "operator"),
    )
    assert r.status_code == 201, r.text
    return community


async def test_every_recorded_event_is_audited_in_its_transaction(
    moderation: RunningService, identities: Identities
) -> None:
    community = await _fill(moderation, identities)
    outbox = definition.tables.outbox
    async with moderation.runtime.db.session() as session:
        events = (await session.execute(select(outbox.c.event_id).order_by(outbox.c.seq))).all()
    records = await _records(moderation)
    assert [r.event_id for r in records] == [e.event_id for e in events]
    assert [r.seq for r in records] == [1, 2, 3, 4]
    assert records[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    first = records[0]
    assert first.event_type == "hearth.moderation.screening.completed.v1"
    assert first.community_id == community and first.item_type == "post"
    assert records[-1].event_type == "hearth.moderation.rule_set.published.v1"
    result = await _verify(moderation)
    assert result.ok and result.records == 4 and result.head_hash == records[-1].hash

    # A transaction that rolls back leaves neither event nor record.
    async with moderation.runtime.db.session() as session:
        await UnitOfWork(session, moderation.runtime).record(_rule_set_event(community))
        await session.rollback()
    assert len(await _records(moderation)) == 4

    staff = identities.headers(None, "admin")
    r = await moderation.client.get("/audit/verify", headers=staff)
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    r = await moderation.client.get(
        "/audit/records", params={"community_id": str(community), "limit": 2}, headers=staff
    )
    assert r.status_code == 200, r.text
    assert [x["seq"] for x in r.json()["items"]] == [4, 3]
    r2 = await moderation.client.get(
        "/audit/records",
        params={"community_id": str(community), "cursor": r.json()["next_cursor"]},
        headers=staff,
    )
    assert [x["seq"] for x in r2.json()["items"]] == [2, 1], r2.text
    for path in ("/audit/verify", "/audit/records", f"/communities/{community}/audit"):
        r = await moderation.client.get(path, headers=identities.headers(uuid7()))
        assert r.status_code == 403, (path, r.text)
        assert r.headers["content-type"] == "application/problem+json"


async def _disable_append_only(service: RunningService) -> None:
    """What only the table's owner or a superuser can do: switch the refusing triggers off."""
    async with service.runtime.db.session() as session:
        if service.runtime.db.is_sqlite:
            await session.execute(text("DROP TRIGGER audit_records_no_update"))
            await session.execute(text("DROP TRIGGER audit_records_no_delete"))
        else:
            await session.execute(
                text("ALTER TABLE audit_records DISABLE TRIGGER audit_records_no_update_delete")
            )
        await session.commit()


async def test_the_database_refuses_to_update_or_delete_an_audit_record(
    moderation: RunningService, identities: Identities
) -> None:
    await _fill(moderation, identities)
    before = [(r.seq, r.hash, r.body) for r in await _records(moderation)]
    db = moderation.runtime.db
    statements = [
        "UPDATE audit_records SET body = 'x' WHERE seq = 2",
        "UPDATE audit_records SET recorded_at = recorded_at",  # even a no-op change
        "DELETE FROM audit_records WHERE seq = 4",
        "DELETE FROM audit_records",
    ]
    if not db.is_sqlite:
        statements.append("TRUNCATE audit_records")
    for statement in statements:
        async with db.session() as session:
            with pytest.raises(DBAPIError, match="append-only"):
                await session.execute(text(statement))
            await session.rollback()
    assert [(r.seq, r.hash, r.body) for r in await _records(moderation)] == before
    assert (await _verify(moderation)).ok
    # Appending goes on as before.
    async with db.session() as session:
        await UnitOfWork(session, moderation.runtime).record(_rule_set_event(uuid7()))
        await session.commit()
    assert len(await _records(moderation)) == len(before) + 1
    assert (await _verify(moderation)).ok


def _one_byte(value: str) -> str:
    """The same string with one character (in the middle) changed."""
    i = len(value) // 2
    while value[i] in '-:"{},':  # keep UUIDs and JSON well-formed: change content, not syntax
        i += 1
    return value[:i] + ("0" if value[i] != "0" else "1") + value[i + 1 :]


async def test_changing_one_byte_of_any_record_is_named_by_verify(
    moderation: RunningService, identities: Identities, capsys: pytest.CaptureFixture[str]
) -> None:
    await _fill(moderation, identities)
    records = await _records(moderation)
    assert len(records) == 4
    db = moderation.runtime.db
    # The attacker here has the rights of the table's owner or a superuser: they switch the
    # append-only triggers off first (ordinary roles cannot; see the test below).
    await _disable_append_only(moderation)
    for target in records:
        row = {
            "body": target.body,
            "hash": target.hash,
            "prev_hash": target.prev_hash,
            "event_type": target.event_type,
            "event_id": str(target.event_id),
            "community_id": str(target.community_id),
            "item_type": target.item_type,
            "item_id": str(target.item_id),
        }
        for column, original in row.items():
            if original in (None, "None"):
                continue
            changed = _one_byte(original)
            async with db.session() as session:
                await session.execute(
                    text(f"UPDATE audit_records SET {column} = :v WHERE seq = :s"),
                    {"v": changed, "s": target.seq},
                )
                await session.commit()
            result = await _verify(moderation)
            assert not result.ok, (column, target.seq)
            assert result.broken is not None and result.broken.seq == target.seq, (
                column,
                target.seq,
                result.broken,
            )
            async with db.session() as session:
                await session.execute(
                    text(f"UPDATE audit_records SET {column} = :v WHERE seq = :s"),
                    {"v": original, "s": target.seq},
                )
                await session.commit()
            assert (await _verify(moderation)).ok, (column, target.seq)
        # Its sequence number moved out of place: the record is missing where it was.
        async with db.session() as session:
            await session.execute(
                text("UPDATE audit_records SET seq = :v WHERE seq = :s"),
                {"v": target.seq + 1000, "s": target.seq},
            )
            await session.commit()
        broken = (await _verify(moderation)).broken
        assert broken is not None and broken.seq == target.seq, broken
        async with db.session() as session:
            await session.execute(
                text("UPDATE audit_records SET seq = :v WHERE seq = :s"),
                {"v": target.seq, "s": target.seq + 1000},
            )
            await session.commit()
        # The time it was recorded, one microsecond off.
        async with db.session() as session:
            await session.execute(
                text("UPDATE audit_records SET recorded_at = :v WHERE seq = :s"),
                {"v": target.recorded_at + timedelta(microseconds=1), "s": target.seq},
            )
            await session.commit()
        broken = (await _verify(moderation)).broken
        assert broken is not None and broken.seq == target.seq
        async with db.session() as session:
            await session.execute(
                text("UPDATE audit_records SET recorded_at = :v WHERE seq = :s"),
                {"v": target.recorded_at, "s": target.seq},
            )
            await session.commit()

    # A deleted record is named too (as missing where it was).
    async with db.session() as session:
        await session.execute(text("DELETE FROM audit_records WHERE seq = 2"))
        await session.commit()
    broken = (await _verify(moderation)).broken
    assert broken is not None and broken.seq == 2 and "missing" in broken.reason

    # The CLI says the same and exits 1.
    with pytest.raises(SystemExit) as exit_info:
        await verify_command.run(moderation.runtime, argparse.Namespace())
    assert exit_info.value.code == 1
    assert "broken at record 2" in capsys.readouterr().err
    r = await moderation.client.get("/audit/verify", headers=identities.headers(None, "operator"))
    assert r.json()["ok"] is False and r.json()["broken"]["seq"] == 2, r.text


async def test_concurrent_appends_never_fork_the_chain(moderation: RunningService) -> None:
    runtime = moderation.runtime
    community = uuid7()
    start = asyncio.Event()

    async def append(n: int) -> None:
        async with runtime.db.session() as session:
            uow = UnitOfWork(session, runtime)
            await uow.record(_rule_set_event(community))
            await start.wait()  # every transaction holds an outbox row before any commits
            await uow.record(_rule_set_event(community))
            await uow.commit()

    tasks = [asyncio.create_task(append(n)) for n in range(12)]
    await asyncio.sleep(0.3)
    start.set()
    await asyncio.gather(*tasks)
    records = await _records(moderation)
    assert [r.seq for r in records] == list(range(1, 25))
    assert len({r.prev_hash for r in records}) == 24  # no two records share a predecessor
    result = await _verify(moderation)
    assert result.ok and result.head_seq == 24, result


async def test_the_head_is_announced_once_per_interval_when_it_moved(
    moderation: RunningService, identities: Identities
) -> None:
    runtime = moderation.runtime

    async def announce(interval: float = 60.0):  # type: ignore[no-untyped-def]
        async with runtime.db.session() as session:
            return await publish_head(UnitOfWork(session, runtime), interval=interval)

    assert await announce() is None  # an empty chain: nothing to announce
    await _fill(moderation, identities)
    records = await _records(moderation)
    event = await announce()
    assert event is not None and (event.seq, event.hash) == (4, records[-1].hash)
    assert await announce() is None  # the head did not move
    await _submit(moderation, uuid7(), "more")
    assert await announce() is None  # it moved, but was announced during this interval
    async with runtime.db.session() as session:
        head = await session.get(AuditChainHead, 1)
        assert head is not None
        head.published_at = utcnow() - timedelta(seconds=120)
        await session.commit()
    again = await announce()
    assert again is not None and (again.seq, again.previous_seq) == (5, 4)
    # Announcements are not audited (else each would move the head), and the chain still holds.
    outbox = definition.tables.outbox
    async with runtime.db.session() as session:
        announced = (
            await session.execute(select(func.count()).where(outbox.c.event_type == HEAD))
        ).scalar_one()
    assert announced == 2
    assert len(await _records(moderation)) == 5
    assert (await _verify(moderation)).ok


async def test_replicas_announcing_at_once_announce_once(
    moderation: RunningService, identities: Identities
) -> None:
    runtime = moderation.runtime
    await _fill(moderation, identities)

    async def announce():  # type: ignore[no-untyped-def]
        async with runtime.db.session() as session:
            return await publish_head(UnitOfWork(session, runtime), interval=60.0)

    # Two replicas' passes at the same moment: the head row's lock lets one decide at a time.
    results = await asyncio.gather(*(announce() for _ in range(4)), return_exceptions=True)
    announced = [r for r in results if r is not None and not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(announced) == 1, results
    # SQLite may refuse a racing writer outright ("database is locked"); the loop retries it.
    assert not failed or runtime.db.is_sqlite, failed
    outbox = definition.tables.outbox
    async with runtime.db.session() as session:
        count = (
            await session.execute(select(func.count()).where(outbox.c.event_type == HEAD))
        ).scalar_one()
    assert count == 1

"""The audit log's use cases: verify the chain, read records, publish the chain head."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_moderation.audit.chain import digest, references
from hearth_moderation.audit.events import AuditChainHeadPublished
from hearth_moderation.audit.models import (
    GENESIS,
    HEAD_ID,
    AuditChainHead,
    AuditRecord,
    AuditRecordPublic,
    AuditVerification,
    BrokenRecord,
)
from servicekit.deps import UnitOfWork
from servicekit.ids import utcnow
from servicekit.pagination import PageParams, invalid_cursor

_BATCH = 1000


def _check(record: AuditRecord, prev_hash: str) -> str | None:
    """Why this record breaks the chain, or None if it holds."""
    if digest(record.body) != record.hash:
        return "its hash is not the SHA-256 of its content (the record was changed)"
    try:
        fields = json.loads(record.body)
    except ValueError:
        return "its content is not JSON"
    if not isinstance(fields, dict):
        return "its content is not a JSON object"
    if fields.get("prev_hash") != record.prev_hash:
        return "its previous-record hash differs from the one its content holds"
    if record.prev_hash != prev_hash:
        return "it does not link to the previous record's hash"
    columns: dict[str, Any] = {
        "seq": record.seq,
        "event_id": str(record.event_id),
        "event_type": record.event_type,
        "community_id": None if record.community_id is None else str(record.community_id),
        "item_type": record.item_type,
        "item_id": None if record.item_id is None else str(record.item_id),
    }
    for name, value in columns.items():
        if fields.get(name) != value:
            return f"its column {name} differs from its content"
    try:
        recorded = datetime.fromisoformat(fields.get("recorded_at", ""))
    except (TypeError, ValueError):
        return "its content has no valid recorded_at"
    if recorded != record.recorded_at:
        return "its column recorded_at differs from its content"
    data = fields.get("data")
    if not isinstance(data, dict) or references(data) != {
        k: fields.get(k) for k in ("community_id", "item_type", "item_id", "user_id", "actor_id")
    }:
        return "its references differ from its event's payload"
    return None


async def verify_chain(session: AsyncSession) -> AuditVerification:
    """Walk the chain from its first record and name the first one that does not hold."""
    head = await session.get(AuditChainHead, HEAD_ID)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    expected, prev, checked = 1, GENESIS, 0
    while True:
        batch = (
            await session.exec(
                select(AuditRecord)
                .where(col(AuditRecord.seq) >= expected, col(AuditRecord.seq) <= head_seq)
                .order_by(col(AuditRecord.seq))
                .limit(_BATCH)
            )
        ).all()
        for record in batch:
            if record.seq != expected:  # a deleted record, or one whose seq was changed
                first = BrokenRecord(
                    seq=expected,
                    event_id=None,
                    reason=f"record {expected} is missing (the next one found is {record.seq})",
                )
                return AuditVerification(
                    ok=False, records=checked, head_seq=head_seq, head_hash=head_hash, broken=first
                )
            reason = _check(record, prev)
            if reason is not None:
                first = BrokenRecord(seq=record.seq, event_id=record.event_id, reason=reason)
                return AuditVerification(
                    ok=False, records=checked, head_seq=head_seq, head_hash=head_hash, broken=first
                )
            checked += 1
            expected, prev = record.seq + 1, record.hash
        if len(batch) < _BATCH:
            break
    broken: BrokenRecord | None = None
    if expected - 1 != head_seq:
        broken = BrokenRecord(
            seq=expected, event_id=None, reason=f"the head names record {head_seq}: it is missing"
        )
    elif prev != head_hash:
        broken = BrokenRecord(
            seq=head_seq, event_id=None, reason="the head's hash is not the last record's"
        )
    return AuditVerification(
        ok=broken is None, records=checked, head_seq=head_seq, head_hash=head_hash, broken=broken
    )


def public(record: AuditRecord) -> AuditRecordPublic:
    """A record as staff read it."""
    return AuditRecordPublic(
        seq=record.seq,
        event_id=record.event_id,
        event_type=record.event_type,
        community_id=record.community_id,
        item_type=record.item_type,
        item_id=record.item_id,
        recorded_at=record.recorded_at,
        prev_hash=record.prev_hash,
        hash=record.hash,
        fields=json.loads(record.body),
    )


async def list_records(
    session: AsyncSession,
    *,
    page: PageParams,
    community_id: uuid.UUID | None = None,
    item_type: str | None = None,
    item_id: uuid.UUID | None = None,
) -> list[AuditRecord]:
    """Audit records, newest first, optionally of one community or one item."""
    stmt = select(AuditRecord)
    if community_id is not None:
        stmt = stmt.where(AuditRecord.community_id == community_id)
    if item_type is not None:
        stmt = stmt.where(AuditRecord.item_type == item_type)
    if item_id is not None:
        stmt = stmt.where(AuditRecord.item_id == item_id)
    if page.after is not None:
        try:
            stmt = stmt.where(col(AuditRecord.seq) < int(page.after[0]))
        except (ValueError, IndexError, TypeError):
            raise invalid_cursor() from None
    stmt = stmt.order_by(col(AuditRecord.seq).desc()).limit(page.limit + 1)
    return list((await session.exec(stmt)).all())


async def records_about(
    session: AsyncSession, *, item_type: str, item_id: uuid.UUID
) -> list[AuditRecord]:
    """Every audit record that names one item, oldest first."""
    stmt = (
        select(AuditRecord)
        .where(AuditRecord.item_type == item_type, AuditRecord.item_id == item_id)
        .order_by(col(AuditRecord.seq))
    )
    return list((await session.exec(stmt)).all())


async def publish_head(uow: UnitOfWork, *, interval: float) -> AuditChainHeadPublished | None:
    """Announce the chain head if it moved since the last announcement, at most once per
    interval across replicas (the head row is locked while deciding); None if not due."""
    head = (
        await uow.session.exec(
            select(AuditChainHead).where(AuditChainHead.id == HEAD_ID).with_for_update()
        )
    ).first()
    now = utcnow()
    if head is None or head.seq == head.published_seq:
        return None
    if head.published_at is not None and now - head.published_at < timedelta(
        seconds=interval * 0.9
    ):
        return None  # another replica announced it during this interval
    event = AuditChainHeadPublished(
        seq=head.seq,
        hash=head.hash,
        previous_seq=head.published_seq,
        published_at=now,
    )
    head.published_seq, head.published_at = head.seq, now
    uow.session.add(head)
    await uow.record(event, subject=str(head.seq))
    await uow.commit()
    return event

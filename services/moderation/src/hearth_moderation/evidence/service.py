"""Evidence's use cases: read evidence, set retention, place and release legal holds, purge
what retention allows, export a case as one signed bundle.

A case bundle is made of named sections; `register_section` adds one (the reports, decisions
and appeals of the review queue register theirs at wiring time), so a bundle grows without
its format changing: a receiver reads the sections it knows and keeps the rest.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, or_, true
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_moderation.audit import service as audit
from hearth_moderation.audit.models import HEAD_ID, AuditChainHead
from hearth_moderation.evidence import signing
from hearth_moderation.evidence.capture import canonical, sha256
from hearth_moderation.evidence.events import (
    CaseExported,
    EvidencePurged,
    EvidenceRetentionSet,
    LegalHoldPlaced,
    LegalHoldReleased,
)
from hearth_moderation.evidence.models import (
    CaseExport,
    Evidence,
    EvidencePublic,
    LegalHold,
    LegalHoldCreate,
    LegalHoldPublic,
    RetentionPolicy,
    RetentionPublic,
)
from hearth_moderation.items.models import ItemPublic
from hearth_moderation.items.service import item_of
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.pagination import PageParams, after_id
from servicekit.problems import Problem, not_found

BUNDLE_FORMAT = "hearth.moderation.case-bundle.v1"


@dataclass(frozen=True)
class CaseRef:
    """The item a case is about."""

    community_id: uuid.UUID
    item_type: str
    item_id: uuid.UUID


Section = Callable[[AsyncSession, CaseRef], Awaitable[Any]]
SECTIONS: dict[str, Section] = {}


def register_section(name: str, provider: Section) -> None:
    """Add a named section to every case bundle (its value must be JSON-serializable)."""
    SECTIONS[name] = provider


def public(evidence: Evidence) -> EvidencePublic:
    """A piece of evidence as moderators see it."""
    return EvidencePublic(
        id=evidence.id,
        item_type=evidence.item_type,
        item_id=evidence.item_id,
        community_id=evidence.community_id,
        author_id=evidence.author_id,
        action=evidence.action,
        event_id=evidence.event_id,
        audit_seq=evidence.audit_seq,
        item_known=evidence.item_known,
        captured_at=evidence.captured_at,
        sha256=evidence.sha256,
        snapshot=json.loads(evidence.snapshot),
    )


async def list_evidence(
    session: AsyncSession,
    *,
    community_id: uuid.UUID,
    page: PageParams,
    item_type: str | None = None,
    item_id: uuid.UUID | None = None,
) -> list[Evidence]:
    """A community's evidence, newest first, optionally of one item."""
    stmt = select(Evidence).where(Evidence.community_id == community_id)
    if item_type is not None:
        stmt = stmt.where(Evidence.item_type == item_type)
    if item_id is not None:
        stmt = stmt.where(Evidence.item_id == item_id)
    if page.after is not None:
        stmt = stmt.where(col(Evidence.id) < after_id(page))
    stmt = stmt.order_by(col(Evidence.id).desc()).limit(page.limit + 1)
    return list((await session.exec(stmt)).all())


async def evidence_of(
    session: AsyncSession, *, item_type: str, item_id: uuid.UUID
) -> list[Evidence]:
    """Every snapshot of one item, oldest first."""
    stmt = (
        select(Evidence)
        .where(Evidence.item_type == item_type, Evidence.item_id == item_id)
        .order_by(col(Evidence.captured_at), col(Evidence.id))
    )
    return list((await session.exec(stmt)).all())


async def retention_of(
    session: AsyncSession, *, community_id: uuid.UUID, default_days: int
) -> RetentionPublic:
    """A community's evidence retention (the platform's default without a policy)."""
    policy = await session.get(RetentionPolicy, community_id)
    if policy is None:
        return RetentionPublic(community_id=community_id, days=default_days, default=True)
    return RetentionPublic(community_id=community_id, days=policy.days, default=False)


async def set_retention(
    uow: UnitOfWork, *, community_id: uuid.UUID, days: int, actor: Principal
) -> RetentionPublic:
    """Set how many days the community keeps evidence."""
    policy = await uow.session.get(RetentionPolicy, community_id, with_for_update=True)
    now = utcnow()
    if policy is None:
        policy = RetentionPolicy(community_id=community_id, days=days)
    policy.days, policy.updated_by, policy.updated_at = days, actor.subject, now
    uow.session.add(policy)
    await uow.record(
        EvidenceRetentionSet(
            community_id=community_id, days=days, actor_id=actor.subject, set_at=now
        ),
        subject=str(community_id),
    )
    await uow.commit()
    return RetentionPublic(community_id=community_id, days=days, default=False)


async def _known_in(session: AsyncSession, ref: CaseRef) -> bool:
    item = await item_of(session, item_type=ref.item_type, item_id=ref.item_id)
    if item is not None:
        return item.community_id == ref.community_id
    found = await session.exec(
        select(Evidence.id).where(
            Evidence.item_type == ref.item_type,
            Evidence.item_id == ref.item_id,
            Evidence.community_id == ref.community_id,
        )
    )
    return found.first() is not None


async def place_hold(
    uow: UnitOfWork, *, community_id: uuid.UUID, body: LegalHoldCreate, actor: Principal
) -> LegalHold:
    """Suspend evidence deletion for one item of the community, or the whole community."""
    if (body.item_type is None) != (body.item_id is None):
        raise Problem(
            422, "invalid-hold", "Invalid hold", "give both item_type and item_id, or neither"
        )
    if body.item_type is not None and body.item_id is not None:
        ref = CaseRef(community_id, body.item_type, body.item_id)
        if not await _known_in(uow.session, ref):
            raise not_found("item", body.item_id)
    hold = LegalHold(
        community_id=community_id,
        item_type=body.item_type,
        item_id=body.item_id,
        reason=body.reason,
        placed_by=actor.subject,
    )
    uow.session.add(hold)
    await uow.record(
        LegalHoldPlaced(
            hold_id=hold.id,
            community_id=community_id,
            item_type=hold.item_type,
            item_id=hold.item_id,
            reason=hold.reason,
            actor_id=actor.subject,
            placed_at=hold.placed_at,
        ),
        subject=str(community_id),
    )
    await uow.commit()
    return hold


async def release_hold(
    uow: UnitOfWork, *, community_id: uuid.UUID, hold_id: uuid.UUID, actor: Principal
) -> LegalHold:
    """Release a legal hold (its evidence follows the retention policy again); idempotent."""
    hold = await uow.session.get(LegalHold, hold_id, with_for_update=True)
    if hold is None or hold.community_id != community_id:
        raise not_found("legal hold", hold_id)
    if hold.released_at is not None:
        return hold
    hold.released_at, hold.released_by = utcnow(), actor.subject
    uow.session.add(hold)
    await uow.record(
        LegalHoldReleased(
            hold_id=hold.id,
            community_id=community_id,
            item_type=hold.item_type,
            item_id=hold.item_id,
            actor_id=actor.subject,
            released_at=hold.released_at,
        ),
        subject=str(community_id),
    )
    await uow.commit()
    return hold


async def list_holds(
    session: AsyncSession, *, community_id: uuid.UUID, active_only: bool = False
) -> list[LegalHold]:
    """A community's legal holds, newest first."""
    stmt = select(LegalHold).where(LegalHold.community_id == community_id)
    if active_only:
        stmt = stmt.where(col(LegalHold.released_at).is_(None))
    return list((await session.exec(stmt.order_by(col(LegalHold.id).desc()))).all())


def _not_held() -> Any:
    holds = LegalHold.__table__  # type: ignore[attr-defined]
    ev = Evidence.__table__  # type: ignore[attr-defined]
    return ~exists().where(
        holds.c.released_at.is_(None),
        holds.c.community_id == ev.c.community_id,
        or_(
            holds.c.item_id.is_(None),
            and_(holds.c.item_type == ev.c.item_type, holds.c.item_id == ev.c.item_id),
        ),
    )


async def purge(uow: UnitOfWork, *, default_days: int, now: datetime | None = None) -> int:
    """Delete evidence past its community's retention and under no active legal hold.

    Each row is deleted by one transaction only (DELETE … RETURNING), so replicas running the
    pass at once report each deletion once; the counts are announced per community.
    """
    now = now or utcnow()
    ev = Evidence.__table__  # type: ignore[attr-defined]
    policies = (await uow.session.exec(select(RetentionPolicy))).all()
    custom = {p.community_id: p.days for p in policies}
    counts: dict[uuid.UUID | None, int] = {}
    cutoffs: dict[uuid.UUID | None, datetime] = {}
    batches: list[tuple[Any, datetime]] = [
        (
            or_(ev.c.community_id.is_(None), ev.c.community_id.not_in(list(custom)))
            if custom
            else true(),
            now - timedelta(days=default_days),
        )
    ]
    batches.extend(
        (ev.c.community_id == cid, now - timedelta(days=days)) for cid, days in custom.items()
    )
    for where, cutoff in batches:
        result = await uow.session.execute(
            delete(ev)
            .where(where, ev.c.captured_at < cutoff, _not_held())
            .returning(ev.c.community_id)
        )
        for (community_id,) in result.all():
            counts[community_id] = counts.get(community_id, 0) + 1
            cutoffs[community_id] = cutoff
    for community_id, count in counts.items():
        await uow.record(
            EvidencePurged(
                community_id=community_id,
                count=count,
                older_than=cutoffs[community_id],
                purged_at=now,
            ),
            subject=None if community_id is None else str(community_id),
        )
    await uow.commit()
    return sum(counts.values())


async def _item_section(session: AsyncSession, ref: CaseRef) -> Any:
    item = await item_of(session, item_type=ref.item_type, item_id=ref.item_id)
    if item is None:
        return None
    return ItemPublic.model_validate(item, from_attributes=True).model_dump(mode="json")


async def _evidence_section(session: AsyncSession, ref: CaseRef) -> Any:
    return [
        {"id": str(e.id), "sha256": e.sha256, "snapshot": e.snapshot}
        for e in await evidence_of(session, item_type=ref.item_type, item_id=ref.item_id)
    ]


async def _audit_section(session: AsyncSession, ref: CaseRef) -> Any:
    records = await audit.records_about(session, item_type=ref.item_type, item_id=ref.item_id)
    return [{"seq": r.seq, "hash": r.hash, "body": r.body} for r in records]


async def _holds_section(session: AsyncSession, ref: CaseRef) -> Any:
    holds = await list_holds(session, community_id=ref.community_id)
    return [
        LegalHoldPublic.model_validate(h, from_attributes=True).model_dump(mode="json")
        for h in holds
        if h.item_id is None or (h.item_type, h.item_id) == (ref.item_type, ref.item_id)
    ]


register_section("item", _item_section)
register_section("evidence", _evidence_section)
register_section("audit", _audit_section)
register_section("legal_holds", _holds_section)


async def export_case(
    uow: UnitOfWork,
    *,
    community_id: uuid.UUID,
    item_type: str,
    item_id: uuid.UUID,
    actor: Principal,
    signing_key: str | None,
) -> CaseExport:
    """The case of one item as one signed bundle (the export itself is audited)."""
    ref = CaseRef(community_id, item_type, item_id)
    if not await _known_in(uow.session, ref):
        raise not_found("item", item_id)
    head = await uow.session.get(AuditChainHead, HEAD_ID)
    now = utcnow()
    sections = {name: await provider(uow.session, ref) for name, provider in SECTIONS.items()}
    bundle = {
        "format": BUNDLE_FORMAT,
        "exported_at": now.isoformat(),
        "exported_by": str(actor.subject),
        "case": {
            "community_id": str(community_id),
            "item_type": item_type,
            "item_id": str(item_id),
        },
        "audit_chain_head": {"seq": head.seq, "hash": head.hash} if head else None,
        "sections": sections,
    }
    text = canonical(bundle)
    signature = signing.sign(signing_key, text.encode())
    digest = sha256(text)
    await uow.record(
        CaseExported(
            community_id=community_id,
            item_type=item_type,
            item_id=item_id,
            actor_id=actor.subject,
            sha256=digest,
            key_id=signature.key_id,
            exported_at=now,
        ),
        subject=str(item_id),
    )
    await uow.commit()
    return CaseExport(format=BUNDLE_FORMAT, bundle=text, sha256=digest, signature=signature)

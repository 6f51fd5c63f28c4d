"""Recording conversions (idempotent by the caller's id) and conversion rates."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.conversions.events import ConversionRecorded
from hearth_metrics.conversions.models import (
    Conversion,
    ConversionCreate,
    ConversionPublic,
    ConversionRates,
    RateRow,
)
from hearth_metrics.funnels.models import MemberMilestone
from hearth_metrics.measures.models import ActivityAttendee
from servicekit.db import upsert_insert
from servicekit.deps import UnitOfWork
from servicekit.ids import utcnow, uuid7
from servicekit.problems import conflict

Floor = Any
"""A callable `(count) -> (count | None, reason | None)`: the privacy floor of the community."""


class ConversionConflict(Exception):
    """The caller's id was already used for a different conversion."""

    def __init__(self, existing: Conversion) -> None:
        super().__init__(f"conversion id {existing.external_id!r} was used for another payload")
        self.existing = existing


def fingerprint(body: ConversionCreate) -> str:
    """SHA-256 of the payload's canonical JSON: what "the same conversion" means."""
    doc = body.model_dump(mode="json")
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


async def record_conversion(
    uow: UnitOfWork, *, source: str, body: ConversionCreate
) -> tuple[Conversion, bool]:
    """Record a conversion once per (source, caller id); returns it and whether it is new.

    One `INSERT ... ON CONFLICT DO NOTHING`: two replicas (or an HTTP call and a NATS message)
    racing on the same id cannot both insert, and only the inserting one records the event.
    The same id with another payload raises ConversionConflict.
    """
    session = uow.session
    table: Any = Conversion.__table__  # type: ignore[attr-defined]
    print_ = fingerprint(body)
    new_id = uuid7()
    values = {
        "id": new_id,
        "source": source,
        "external_id": body.id,
        "fingerprint": print_,
        "kind": body.kind,
        "community_id": body.community_id,
        "user_id": body.user_id,
        "activity_id": body.activity_id,
        "invite_channel": body.invite_channel,
        "value": body.value,
        "currency": body.currency,
        "occurred_at": body.occurred_at,
        "recorded_at": utcnow(),
    }
    stmt = (
        upsert_insert(session, table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["source", "external_id"])
        .returning(table.c.id)
    )
    inserted = (await session.execute(stmt)).scalar_one_or_none()
    row = (
        await session.execute(
            select(Conversion).where(
                Conversion.source == source,  # type: ignore[arg-type]
                Conversion.external_id == body.id,  # type: ignore[arg-type]
            )
        )
    ).scalar_one()
    if inserted is None:
        if row.fingerprint != print_:
            raise ConversionConflict(row)
        return row, False
    await uow.record(
        ConversionRecorded(
            conversion_id=row.id,
            kind=row.kind,
            community_id=row.community_id,
            user_id=row.user_id,
            activity_id=row.activity_id,
            invite_channel=row.invite_channel,
            value=row.value,
            occurred_at=row.occurred_at,
        ),
        subject=str(row.community_id),
    )
    return row, True


def conflict_problem(exc: ConversionConflict) -> Exception:
    """The 409 problem of a reused caller id."""
    return conflict(
        "conversion-id-reused",
        f"conversion id {exc.existing.external_id!r} was already recorded with another payload",
        conversion_id=str(exc.existing.id),
    )


def public(row: Conversion) -> ConversionPublic:
    """The client's view of a conversion."""
    return ConversionPublic.model_validate(
        {**row.model_dump(), "external_id": row.external_id}, from_attributes=True
    )


def _rate(
    key: str, conversions: int, converted: int, base: int, value: float | None, floor: Floor
) -> RateRow:
    shown_converted, why_c = floor(converted)
    shown_base, why_b = floor(base)
    # A rate is a share (privacy rule 4): it reveals the people who did not convert as well as
    # those who did, so both sides must reach the floor (everyone converting is no exception).
    _, why_rest = floor(max(base - converted, 0))
    why = why_c or why_b or (f"{why_rest} on one side of the share" if why_rest else None)
    if why is not None:
        return RateRow(
            key=key, conversions=None, converted=None, base=None, rate=None, suppressed=why
        )
    rate = round(converted / base, 6) if base else None
    return RateRow(
        key=key,
        conversions=conversions,
        converted=shown_converted,
        base=shown_base,
        rate=rate,
        value=value,
    )


async def conversion_rates(
    session: AsyncSession,
    *,
    community_id: uuid.UUID,
    since: datetime,
    until: datetime,
    kind: str | None,
    floor: Floor,
) -> ConversionRates:
    """Converting people over their base, for the community, per activity and per channel.

    Community: people with a conversion in the range over people who joined before `until`.
    Activity: people with a conversion attributed to it over its confirmed registrations.
    Channel: people converting (the conversion's own channel, else the channel they joined
    through) over people who joined through that channel before `until`.
    """
    where: list[Any] = [
        Conversion.community_id == community_id,
        Conversion.occurred_at >= since,
        Conversion.occurred_at < until,
    ]
    if kind is not None:
        where.append(Conversion.kind == kind)
    c: Any = Conversion
    m: Any = MemberMilestone
    overall = (
        await session.execute(
            select(func.count(), func.count(func.distinct(c.user_id)), func.sum(c.value)).where(
                *where
            )
        )
    ).one()
    members = (
        await session.execute(
            select(func.count()).where(
                m.community_id == community_id, m.joined_at.is_not(None), m.joined_at < until
            )
        )
    ).scalar_one()
    community = _rate("community", overall[0], overall[1], members, overall[2], floor)

    by_activity: list[RateRow] = []
    rows = (
        await session.execute(
            select(
                c.activity_id, func.count(), func.count(func.distinct(c.user_id)), func.sum(c.value)
            )
            .where(*where, c.activity_id.is_not(None))
            .group_by(c.activity_id)
            .order_by(c.activity_id)
        )
    ).all()
    bases = {}
    if rows:
        a: Any = ActivityAttendee
        found = await session.execute(
            select(a.activity_id, func.count())
            .where(a.activity_id.in_([r[0] for r in rows]), a.registered_at.is_not(None))
            .group_by(a.activity_id)
        )
        bases = {aid: n for aid, n in found.all()}
    for activity_id, n, people, value in rows:
        base = bases.get(activity_id, 0)
        by_activity.append(_rate(str(activity_id), n, people, base, value, floor))

    channel = func.coalesce(c.invite_channel, m.join_channel)
    joined = and_(m.community_id == c.community_id, m.user_id == c.user_id)
    rows = (
        await session.execute(
            select(channel, func.count(), func.count(func.distinct(c.user_id)), func.sum(c.value))
            .select_from(c)
            .outerjoin(m, joined)
            .where(*where, channel.is_not(None))
            .group_by(channel)
            .order_by(channel)
        )
    ).all()
    channel_bases = dict(
        (
            await session.execute(
                select(m.join_channel, func.count())
                .where(
                    m.community_id == community_id,
                    m.joined_at.is_not(None),
                    m.joined_at < until,
                    m.join_channel.is_not(None),
                )
                .group_by(m.join_channel)
            )
        ).all()
    )
    by_channel = [
        _rate(name, n, people, channel_bases.get(name, 0), value, floor)
        for name, n, people, value in rows
    ]
    return ConversionRates(
        community_id=community_id,
        since=since,
        until=until,
        kind=kind,
        community=community,
        by_activity=by_activity,
        by_channel=by_channel,
    )

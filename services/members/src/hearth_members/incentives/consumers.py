"""The `members__points` consumer: points-source facts from content, events and moderation.

Each producer's payload is read with a tolerant local model of just the fields needed; the
kernel makes one durable per producing stream and the inbox makes redelivery harmless. The
ledger's unique (community, user, source event) makes a source event count once even so.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_members.incentives import service
from servicekit.consumer import EventConsumer
from servicekit.deps import handler_uow
from servicekit.events import Envelope

points = EventConsumer("members__points")


class AuthoredFact(BaseModel):
    """A fact about something a member wrote (post, comment, suggestion)."""

    community_id: uuid.UUID
    author_id: uuid.UUID


class MemberFact(BaseModel):
    """A fact about a member (check-in, sanction)."""

    community_id: uuid.UUID
    user_id: uuid.UUID


class SanctionFact(MemberFact):
    """moderation.sanction.applied.v1/v2, the fields points need."""

    level: str = "warning"


async def _award(
    session: AsyncSession,
    envelope: Envelope,
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    reason: str,
) -> None:
    await service.award_for_event(
        uow=handler_uow(session),
        community_id=community_id,
        user_id=user_id,
        event_id=envelope.id,
        event_type=envelope.type,
        reason=reason,
    )


@points.handles("hearth.content.post.published.v1")
async def post_published(session: AsyncSession, envelope: Envelope) -> None:
    """Points for a published post."""
    fact: AuthoredFact = envelope.payload(AuthoredFact)
    await _award(session, envelope, fact.community_id, fact.author_id, "post published")


@points.handles("hearth.content.comment.created.v1")
async def comment_created(session: AsyncSession, envelope: Envelope) -> None:
    """Points for a comment."""
    fact: AuthoredFact = envelope.payload(AuthoredFact)
    await _award(session, envelope, fact.community_id, fact.author_id, "comment")


@points.handles("hearth.content.suggestion.accepted.v1")
async def suggestion_accepted(session: AsyncSession, envelope: Envelope) -> None:
    """Points for an accepted suggestion."""
    fact: AuthoredFact = envelope.payload(AuthoredFact)
    await _award(session, envelope, fact.community_id, fact.author_id, "suggestion accepted")


@points.handles("hearth.events.attendance.checked_in.v1")
async def checked_in(session: AsyncSession, envelope: Envelope) -> None:
    """Points for attending an activity."""
    fact: MemberFact = envelope.payload(MemberFact)
    await _award(session, envelope, fact.community_id, fact.user_id, "activity attended")


@points.handles("hearth.moderation.sanction.applied.v1")
@points.handles("hearth.moderation.sanction.applied.v2")
async def sanction_applied(session: AsyncSession, envelope: Envelope) -> None:
    """Points taken for a sanction (the balance stops at zero)."""
    fact: SanctionFact = envelope.payload(SanctionFact)
    await _award(session, envelope, fact.community_id, fact.user_id, f"sanction: {fact.level}")


@points.handles("hearth.events.attendance.no_show.v1")
async def no_show(session: AsyncSession, envelope: Envelope) -> None:
    """A no-show: no points by default; a community may set a penalty."""
    fact: MemberFact = envelope.payload(MemberFact)
    await _award(session, envelope, fact.community_id, fact.user_id, "no-show")

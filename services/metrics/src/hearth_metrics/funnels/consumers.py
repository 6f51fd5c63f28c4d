"""The funnel's own durable consumer: members' and content's facts into milestone rows."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.communities.service import policy_of
from hearth_metrics.funnels import service
from hearth_metrics.settings import MetricsSettings
from servicekit.consumer import EventConsumer
from servicekit.events import Envelope
from servicekit.runtime import runtime_of, settings_of

funnel = EventConsumer("metrics__funnel")


class VisitFact(BaseModel):
    """hearth.members.member.applied.v1 / invite.redeemed.v1: a person showing interest."""

    model_config = ConfigDict(extra="ignore")

    community_id: uuid.UUID
    user_id: uuid.UUID
    at: datetime = Field(validation_alias=AliasChoices("applied_at", "redeemed_at", "opened_at"))


async def _zone(session: AsyncSession, community_id: uuid.UUID) -> ZoneInfo:
    """The community's time zone (its policy, else the service default): the cells' days."""
    settings = settings_of(runtime_of(session), MetricsSettings)
    policy = await policy_of(session, community_id=community_id, settings=settings)
    return ZoneInfo(policy.time_zone)


@funnel.handles("hearth.members.member.applied.v1", payload=VisitFact)
async def on_applied(session: AsyncSession, envelope: Envelope, data: VisitFact) -> None:
    """An application started: a visitor."""
    await service.visited(
        session,
        community_id=data.community_id,
        user_id=data.user_id,
        at=data.at,
        zone=await _zone(session, data.community_id),
    )


@funnel.handles("hearth.members.invite.redeemed.v1", payload=VisitFact)
async def on_invite_redeemed(session: AsyncSession, envelope: Envelope, data: VisitFact) -> None:
    """An invite redeemed: a visitor."""
    await service.visited(
        session,
        community_id=data.community_id,
        user_id=data.user_id,
        at=data.at,
        zone=await _zone(session, data.community_id),
    )


class JoinedFact(BaseModel):
    """hearth.members.member.joined.v1."""

    model_config = ConfigDict(extra="ignore")

    community_id: uuid.UUID
    user_id: uuid.UUID
    joined_at: datetime
    channel: str | None = None


@funnel.handles("hearth.members.member.joined.v1", payload=JoinedFact)
async def on_joined(session: AsyncSession, envelope: Envelope, data: JoinedFact) -> None:
    """A member (and a visitor) from the first join on, with its channel."""
    await service.joined(
        session,
        community_id=data.community_id,
        user_id=data.user_id,
        at=data.joined_at,
        channel=data.channel,
        zone=await _zone(session, data.community_id),
    )


class ContributionFact(BaseModel):
    """hearth.content.post.published.v1 / comment.created.v1: a member's contribution."""

    model_config = ConfigDict(extra="ignore")

    item_id: uuid.UUID = Field(validation_alias=AliasChoices("comment_id", "post_id"))
    community_id: uuid.UUID
    author_id: uuid.UUID
    at: datetime = Field(validation_alias=AliasChoices("published_at", "created_at"))


async def _contributed(session: AsyncSession, data: ContributionFact, kind: str) -> None:
    settings = settings_of(runtime_of(session), MetricsSettings)
    await service.contributed(
        session,
        community_id=data.community_id,
        user_id=data.author_id,
        item_id=data.item_id,
        kind=kind,
        at=data.at,
        threshold=settings.funnel_core_contributions,
        window=timedelta(days=settings.funnel_core_window_days),
        zone=await _zone(session, data.community_id),
    )


@funnel.handles("hearth.content.post.published.v1", payload=ContributionFact)
async def on_post_published(
    session: AsyncSession, envelope: Envelope, data: ContributionFact
) -> None:
    """A published post: a contribution."""
    await _contributed(session, data, "post")


@funnel.handles("hearth.content.comment.created.v1", payload=ContributionFact)
async def on_comment_created(
    session: AsyncSession, envelope: Envelope, data: ContributionFact
) -> None:
    """A comment: a contribution."""
    await _contributed(session, data, "comment")

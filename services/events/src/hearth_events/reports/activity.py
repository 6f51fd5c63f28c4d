"""The community's activity around an activity: a read model of content's facts, per day.

Events may not read content's database, so `events__community_activity` keeps, per community
and UTC day, how many posts were published, comments written and reactions added, from
content's `post.published.v1`, `comment.created.v1` and `reaction.added.v1` (parsed with this
module's tolerant models: only the fields counted). A counter is not idempotent by itself, so
the consumer keeps the kernel's inbox: a redelivered fact is counted once. Deletions and
withdrawn reactions are not subtracted: they do not undo that the activity happened.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_events.models import Activity
from hearth_events.reports.models import (
    ActivityCounts,
    CommunityActivityChange,
    CommunityActivityDay,
)
from servicekit.consumer import EventConsumer
from servicekit.db import upsert_insert
from servicekit.events import Envelope
from servicekit.ids import utcnow
from servicekit.types import as_utc

WINDOW_DAYS = 7

community_activity = EventConsumer("events__community_activity")


class PostPublishedFact(BaseModel):
    """The fields of content's post.published.v1 counted here."""

    model_config = ConfigDict(extra="ignore")

    community_id: uuid.UUID
    published_at: datetime


class CommentCreatedFact(BaseModel):
    """The fields of content's comment.created.v1 counted here."""

    model_config = ConfigDict(extra="ignore")

    community_id: uuid.UUID
    created_at: datetime


class ReactionAddedFact(BaseModel):
    """The fields of content's reaction.added.v1 counted here."""

    model_config = ConfigDict(extra="ignore")

    community_id: uuid.UUID
    reacted_at: datetime


async def count(session: AsyncSession, community_id: uuid.UUID, at: datetime, field: str) -> None:
    """Add one to a community's figure on the UTC day of `at` (one upsert, race-free)."""
    table = CommunityActivityDay.__table__  # type: ignore[attr-defined]
    stmt = upsert_insert(session, table).values(
        community_id=community_id, day=as_utc(at).date(), **{field: 1}
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["community_id", "day"], set_={field: table.c[field] + 1}
    )
    await session.execute(stmt)


@community_activity.handles("hearth.content.post.published.v1", payload=PostPublishedFact)
async def on_post_published(
    session: AsyncSession, envelope: Envelope, data: PostPublishedFact
) -> None:
    """A post became visible in its community."""
    await count(session, data.community_id, data.published_at, "posts")


@community_activity.handles("hearth.content.comment.created.v1", payload=CommentCreatedFact)
async def on_comment_created(
    session: AsyncSession, envelope: Envelope, data: CommentCreatedFact
) -> None:
    """A member commented."""
    await count(session, data.community_id, data.created_at, "comments")


@community_activity.handles("hearth.content.reaction.added.v1", payload=ReactionAddedFact)
async def on_reaction_added(
    session: AsyncSession, envelope: Envelope, data: ReactionAddedFact
) -> None:
    """A member reacted to a post."""
    await count(session, data.community_id, data.reacted_at, "reactions")


async def window(
    session: AsyncSession, community_id: uuid.UUID, first: date, last: date
) -> ActivityCounts:
    """The community's figures over the days first..last (UTC, inclusive)."""
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(col(CommunityActivityDay.posts)), 0),
                func.coalesce(func.sum(col(CommunityActivityDay.comments)), 0),
                func.coalesce(func.sum(col(CommunityActivityDay.reactions)), 0),
            ).where(
                col(CommunityActivityDay.community_id) == community_id,
                col(CommunityActivityDay.day) >= first,
                col(CommunityActivityDay.day) <= last,
            )
        )
    ).one()
    posts, comments, reactions = (int(v) for v in row)
    return ActivityCounts(
        first_day=first,
        last_day=last,
        posts=posts,
        comments=comments,
        reactions=reactions,
        total=posts + comments + reactions,
    )


async def before_and_after(
    session: AsyncSession, activity: Activity, *, now: datetime | None = None
) -> CommunityActivityChange:
    """The 7 UTC days before the start's day vs the 7 days after the end's day, and the change."""
    start_day = as_utc(activity.starts_at).date()
    end_day = as_utc(activity.ends_at).date()
    span = timedelta(days=WINDOW_DAYS)
    before = await window(
        session, activity.community_id, start_day - span, start_day - timedelta(days=1)
    )
    after = await window(
        session, activity.community_id, end_day + timedelta(days=1), end_day + span
    )
    today = as_utc(now or utcnow()).date()
    return CommunityActivityChange(
        before=before,
        after=after,
        change_posts=after.posts - before.posts,
        change_comments=after.comments - before.comments,
        change_reactions=after.reactions - before.reactions,
        change_total=after.total - before.total,
        change_total_pct=(
            round(100 * (after.total - before.total) / before.total, 1) if before.total else None
        ),
        after_complete=today > after.last_day,
    )

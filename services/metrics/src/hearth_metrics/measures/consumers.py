"""What the measures read: content's, events' and moderation's facts, into per-item rows.

Every fact model is tolerant (extra fields ignored, optional where a producer may not send a
field yet). Subjects marked "(planned)" are the ones the producing contexts are adding; a
handler for a subject nobody publishes yet costs nothing, and starts counting on the day it
does (see docs/metrics.md, "Business measures").
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.measures.models import Activity, ActivityAttendee, ModerationItem, PostStats
from hearth_metrics.measures.rows import upsert_fact
from servicekit.consumer import EventConsumer
from servicekit.events import Envelope

measures = EventConsumer("metrics__measures")


class Fact(BaseModel):
    """Base of the tolerant fact models."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# --- content ---------------------------------------------------------------------------------


class PostPublishedFact(Fact):
    """hearth.content.post.published.v1."""

    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID | None = None
    column_id: uuid.UUID | None = None
    title: str | None = None
    published_at: datetime


@measures.handles("hearth.content.post.published.v1", payload=PostPublishedFact)
async def on_post_published(
    session: AsyncSession, envelope: Envelope, data: PostPublishedFact
) -> None:
    """A post row with its column, author and first publication time."""
    await upsert_fact(
        session,
        PostStats,
        key={"post_id": data.post_id},
        earliest={"published_at": data.published_at},
        fill={
            "community_id": data.community_id,
            "author_id": data.author_id,
            "column_id": data.column_id,
            "title": (data.title or "")[:300] or None,
        },
    )


class CommentCreatedFact(Fact):
    """hearth.content.comment.created.v1."""

    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    created_at: datetime
    # Content sets it on a post's first reply by someone other than its author (planned).
    first_response_seconds: int | None = None


@measures.handles("hearth.content.comment.created.v1", payload=CommentCreatedFact)
async def on_comment_created(
    session: AsyncSession, envelope: Envelope, data: CommentCreatedFact
) -> None:
    """One more comment; the first by someone other than the author is the first response."""
    if data.first_response_seconds is not None:
        answered = True
    else:  # content's marker absent: compare with the post's author, if known
        post = await session.get(PostStats, data.post_id)
        answered = post is not None and post.author_id not in (None, data.author_id)
    await upsert_fact(
        session,
        PostStats,
        key={"post_id": data.post_id},
        add={"comments": 1},
        earliest={"first_response_at": data.created_at if answered else None},
        fill={"community_id": data.community_id},
    )


class CommentDeletedFact(Fact):
    """hearth.content.comment.deleted.v1."""

    post_id: uuid.UUID
    community_id: uuid.UUID


@measures.handles("hearth.content.comment.deleted.v1", payload=CommentDeletedFact)
async def on_comment_deleted(
    session: AsyncSession, envelope: Envelope, data: CommentDeletedFact
) -> None:
    """One comment fewer (the first response, once given, stays given)."""
    await upsert_fact(
        session,
        PostStats,
        key={"post_id": data.post_id},
        add={"comments": -1},
        fill={"community_id": data.community_id},
    )


class PostSharedFact(Fact):
    """hearth.content.post.shared.v1."""

    post_id: uuid.UUID
    community_id: uuid.UUID


@measures.handles("hearth.content.post.shared.v1", payload=PostSharedFact)
async def on_post_shared(session: AsyncSession, envelope: Envelope, data: PostSharedFact) -> None:
    """One more share of the original post."""
    await upsert_fact(
        session,
        PostStats,
        key={"post_id": data.post_id},
        add={"shares": 1},
        fill={"community_id": data.community_id},
    )


class ReactionFact(Fact):
    """hearth.content.reaction.added.v1 / .removed.v1: a reaction on a post."""

    community_id: uuid.UUID
    post_id: uuid.UUID | None = None
    target_type: str | None = None
    target_id: uuid.UUID | None = None

    def post(self) -> uuid.UUID | None:
        """The post reacted to (reactions on comments are not post reactions)."""
        if self.post_id is not None and self.target_type in (None, "post"):
            return self.post_id
        return self.target_id if self.target_type == "post" else None


async def _react(session: AsyncSession, data: ReactionFact, delta: int) -> None:
    post = data.post()
    if post is not None:
        await upsert_fact(
            session,
            PostStats,
            key={"post_id": post},
            add={"reactions": delta},
            fill={"community_id": data.community_id},
        )


@measures.handles("hearth.content.reaction.added.v1", payload=ReactionFact)
async def on_reaction_added(session: AsyncSession, envelope: Envelope, data: ReactionFact) -> None:
    """One more reaction on a post."""
    await _react(session, data, 1)


@measures.handles("hearth.content.reaction.removed.v1", payload=ReactionFact)
async def on_reaction_removed(
    session: AsyncSession, envelope: Envelope, data: ReactionFact
) -> None:
    """One reaction fewer on a post."""
    await _react(session, data, -1)


class ViewCount(Fact):
    """One post's new reads in a batch."""

    post_id: uuid.UUID
    community_id: uuid.UUID | None = None
    count: int = Field(default=1, ge=0, validation_alias=AliasChoices("count", "views", "reads"))


class ViewsCountedFact(Fact):
    """hearth.content.views.counted.v1 (planned): a batch of reads, once per member per day.

    Content's shape: `posts: [{post_id, community_id, views}]`; one post at the top level
    (`community_id`, `post_id`, `count`) is read too.
    """

    community_id: uuid.UUID | None = None
    post_id: uuid.UUID | None = None
    count: int = Field(default=1, ge=0, validation_alias=AliasChoices("count", "views", "reads"))
    posts: list[ViewCount] = Field(
        default_factory=list, validation_alias=AliasChoices("posts", "items", "counts")
    )


@measures.handles("hearth.content.views.counted.v1", payload=ViewsCountedFact)
async def on_views_counted(
    session: AsyncSession, envelope: Envelope, data: ViewsCountedFact
) -> None:
    """Add a batch of reads to the posts it names."""
    batch = list(data.posts)
    if data.post_id is not None:
        batch.append(
            ViewCount(post_id=data.post_id, community_id=data.community_id, count=data.count)
        )
    for item in batch:
        community_id = item.community_id or data.community_id
        if community_id is None:
            continue  # a post row needs its community
        await upsert_fact(
            session,
            PostStats,
            key={"post_id": item.post_id},
            add={"reads": item.count},
            fill={"community_id": community_id},
        )


# --- events (activities) ----------------------------------------------------------------------


class ActivityPublishedFact(Fact):
    """hearth.events.activity.published.v1."""

    activity_id: uuid.UUID
    community_id: uuid.UUID
    title: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None


@measures.handles("hearth.events.activity.published.v1", payload=ActivityPublishedFact)
async def on_activity_published(
    session: AsyncSession, envelope: Envelope, data: ActivityPublishedFact
) -> None:
    """An activity row with its title and times."""
    await upsert_fact(
        session,
        Activity,
        key={"activity_id": data.activity_id},
        fill={
            "community_id": data.community_id,
            "title": (data.title or "")[:300] or None,
            "starts_at": data.starts_at,
            "ends_at": data.ends_at,
        },
    )


class AttendeeFact(Fact):
    """The fields every registration and attendance fact carries, and its time."""

    activity_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    at: datetime = Field(
        validation_alias=AliasChoices(
            "registered_at",
            "promoted_at",
            "cancelled_at",
            "checked_in_at",
            "activity_ended_at",
            "no_show_at",
        )
    )


def _attendee(column: str) -> object:
    async def handler(session: AsyncSession, envelope: Envelope, data: AttendeeFact) -> None:
        values = {column: data.at}
        await upsert_fact(
            session,
            ActivityAttendee,
            key={"activity_id": data.activity_id, "user_id": data.user_id},
            latest=values if column in ("registered_at", "cancelled_at") else None,
            earliest=None if column in ("registered_at", "cancelled_at") else values,
            fill={"community_id": data.community_id},
        )

    handler.__name__ = f"on_{column}"
    handler.__doc__ = f"Set the attendee's {column} (registration and attendance facts)."
    return handler


for _type, _column in {
    "hearth.events.registration.confirmed.v1": "registered_at",
    "hearth.events.registration.promoted.v1": "registered_at",
    "hearth.events.registration.cancelled.v1": "cancelled_at",
    "hearth.events.attendance.checked_in.v1": "checked_in_at",
    "hearth.events.attendance.no_show.v1": "no_show_at",
}.items():
    measures.handles(_type, payload=AttendeeFact)(_attendee(_column))  # type: ignore[arg-type]


class FeedbackFact(Fact):
    """hearth.events.feedback.submitted.v1 / .updated.v1 (planned): satisfaction 1-5, NPS 0-10."""

    activity_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    satisfaction: int | None = Field(default=None, ge=1, le=5)
    nps: int | None = Field(default=None, ge=0, le=10)
    at: datetime = Field(validation_alias=AliasChoices("submitted_at", "updated_at", "edited_at"))


async def _feedback(session: AsyncSession, data: FeedbackFact) -> None:
    await upsert_fact(
        session,
        ActivityAttendee,
        key={"activity_id": data.activity_id, "user_id": data.user_id},
        latest={"feedback_at": data.at},
        follows={
            "satisfaction": ("feedback_at", data.satisfaction),
            "nps": ("feedback_at", data.nps),
        },
        fill={"community_id": data.community_id},
    )


@measures.handles("hearth.events.feedback.submitted.v1", payload=FeedbackFact)
async def on_feedback_submitted(
    session: AsyncSession, envelope: Envelope, data: FeedbackFact
) -> None:
    """An attendee's feedback (the newest edit wins)."""
    await _feedback(session, data)


@measures.handles("hearth.events.feedback.updated.v1", payload=FeedbackFact)
async def on_feedback_updated(
    session: AsyncSession, envelope: Envelope, data: FeedbackFact
) -> None:
    """An attendee's edited feedback (the newest edit wins)."""
    await _feedback(session, data)


# --- moderation -------------------------------------------------------------------------------


class ModerationFact(Fact):
    """Any moderation fact about an item: its id, community, member, time and outcome."""

    item_id: uuid.UUID = Field(
        validation_alias=AliasChoices("sanction_id", "report_id", "appeal_id", "alert_id")
    )
    community_id: uuid.UUID
    user_id: uuid.UUID | None = Field(
        default=None, validation_alias=AliasChoices("user_id", "member_id", "author_id")
    )
    level: str | None = None
    at: datetime = Field(
        validation_alias=AliasChoices(
            "applied_at",
            "filed_at",
            "opened_at",
            "resolved_at",
            "decided_at",
            "lifted_at",
            "acknowledged_at",
        )
    )
    outcome: str | None = Field(
        default=None, validation_alias=AliasChoices("outcome", "decision", "resolution")
    )


def _moderation(kind: str, opens: bool) -> object:
    async def handler(session: AsyncSession, envelope: Envelope, data: ModerationFact) -> None:
        when = {"opened_at" if opens else "closed_at": data.at}
        await upsert_fact(
            session,
            ModerationItem,
            key={"item_id": data.item_id},
            earliest=when,
            fill={
                "kind": kind,
                "community_id": data.community_id,
                "user_id": data.user_id,
                "level": data.level[:40] if data.level else None,
                "outcome": data.outcome[:40] if data.outcome and not opens else None,
            },
        )

    handler.__name__ = f"on_{kind}_{'opened' if opens else 'closed'}"
    handler.__doc__ = f"Open or close a {kind} row (moderation facts)."
    return handler


for _type, (_kind, _opens) in {
    "hearth.moderation.sanction.applied.v1": ("sanction", True),
    "hearth.moderation.report.filed.v1": ("report", True),
    "hearth.moderation.report.resolved.v1": ("report", False),
    "hearth.moderation.appeal.filed.v1": ("appeal", True),
    "hearth.moderation.appeal.decided.v1": ("appeal", False),
    "hearth.moderation.sentiment.alert_opened.v1": ("sentiment", True),
    "hearth.moderation.sentiment.alert_resolved.v1": ("sentiment", False),
}.items():
    measures.handles(_type, payload=ModerationFact)(_moderation(_kind, _opens))  # type: ignore[arg-type]

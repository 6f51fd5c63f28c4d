"""Events content publishes (subjects `<prefix>.content.<entity>.<fact>.v<N>`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from servicekit.events import Event, event_type


@event_type("content.post.submitted.v1")
class PostSubmitted(Event):
    """A member submitted a post; it waits for review (moderation screens it)."""

    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    title: str
    body: str
    format: str
    url: str | None = None
    submitted_at: datetime
    # 0 for the first submission; each resubmission after a rejection is a new round, which
    # moderation screens again (a re-announced round is screened once).
    round: int = 0


@event_type("content.post.published.v1")
class PostPublished(Event):
    """A post passed review and is visible to its community."""

    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    column_id: uuid.UUID | None = None
    title: str
    format: str
    screening_id: uuid.UUID | None = None
    published_at: datetime


@event_type("content.post.scheduled.v1")
class PostScheduled(Event):
    """A post passed review and waits for its slot in the content calendar (`publish_at`)."""

    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    column_id: uuid.UUID | None = None
    title: str
    format: str
    screening_id: uuid.UUID | None = None
    publish_at: datetime


@event_type("content.post.held.v1")
class PostHeld(Event):
    """Review held a post back; it stays invisible to the community."""

    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    reasons: list[str]
    screening_id: uuid.UUID | None = None
    held_at: datetime


@event_type("content.comment.created.v1")
class CommentCreated(Event):
    """A member commented on a post."""

    comment_id: uuid.UUID
    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    parent_id: uuid.UUID | None = None
    body: str = ""
    created_at: datetime
    column_id: uuid.UUID | None = None
    # Set on the post's first reply by someone other than its author: seconds since it was
    # published (metrics' time to first response).
    first_response_seconds: int | None = None


@event_type("content.suggestion.accepted.v1")
class SuggestionAccepted(Event):
    """A suggestion from the suggestion box was accepted by the community's team."""

    suggestion_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    accepted_at: datetime


@event_type("content.post.edited.v1")
class PostEdited(Event):
    """An author or staff edited a post; `changed` names the fields, the revision keeps the rest."""

    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    editor_id: uuid.UUID
    revision: int
    changed: list[str]
    edited_at: datetime


@event_type("content.post.deleted.v1")
class PostDeleted(Event):
    """A post was deleted (soft: hidden, kept as evidence for moderation)."""

    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    deleted_by: uuid.UUID
    deleted_at: datetime


@event_type("content.post.pinned.v1")
class PostPinned(Event):
    """A post was pinned in its community (`pinned` false: unpinned)."""

    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    pinned: bool
    order: int | None = None
    actor_id: uuid.UUID
    at: datetime


@event_type("content.post.shared.v1")
class PostShared(Event):
    """A member shared a post into another community (the share is its own post)."""

    post_id: uuid.UUID
    share_id: uuid.UUID
    community_id: uuid.UUID
    to_community_id: uuid.UUID
    author_id: uuid.UUID
    sharer_id: uuid.UUID
    shared_at: datetime


@event_type("content.post.review_decided.v1")
class PostReviewDecided(Event):
    """A reviewer decided one stage of a post's human review (初审 = 1, 复审 = 2)."""

    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    column_id: uuid.UUID | None = None
    reviewer_id: uuid.UUID
    round: int
    stage: int
    verdict: str
    note: str
    next_stage: int | None = None
    decided_at: datetime


@event_type("content.post.approved.v1")
class PostApproved(Event):
    """A post passed every human review stage; it is published now or at its slot."""

    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    column_id: uuid.UUID | None = None
    reviewer_id: uuid.UUID
    round: int
    publish_at: datetime | None = None
    approved_at: datetime


@event_type("content.post.rejected.v1")
class PostRejected(Event):
    """A reviewer rejected a post; the reason reaches the author (members' inbox may consume it)."""

    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    column_id: uuid.UUID | None = None
    reviewer_id: uuid.UUID
    round: int
    stage: int
    reason: str
    rejected_at: datetime


@event_type("content.post.revised.v1")
class PostRevised(Event):
    """The author revised a rejected post and resubmitted it; it re-enters review."""

    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    column_id: uuid.UUID | None = None
    round: int
    revised_at: datetime


@event_type("content.comment.edited.v1")
class CommentEdited(Event):
    """A member edited their comment; moderation screens the new body."""

    comment_id: uuid.UUID
    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    body: str
    edited_at: datetime


@event_type("content.comment.deleted.v1")
class CommentDeleted(Event):
    """A comment was deleted (softly: it keeps its place in the thread, without its body)."""

    comment_id: uuid.UUID
    post_id: uuid.UUID
    community_id: uuid.UUID
    deleted_by: uuid.UUID
    deleted_at: datetime


@event_type("content.reaction.added.v1")
class ReactionAdded(Event):
    """A member reacted to a post (once per member, post and kind: a repeat publishes nothing)."""

    post_id: uuid.UUID
    community_id: uuid.UUID
    post_author_id: uuid.UUID
    column_id: uuid.UUID | None = None
    member_id: uuid.UUID
    kind: str
    reacted_at: datetime


@event_type("content.reaction.removed.v1")
class ReactionRemoved(Event):
    """A member took back a reaction."""

    post_id: uuid.UUID
    community_id: uuid.UUID
    member_id: uuid.UUID
    kind: str
    removed_at: datetime


@event_type("content.mention.created.v1")
class MentionCreated(Event):
    """A comment @mentioned a member of the community (notifications tells them)."""

    comment_id: uuid.UUID
    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    mentioned_id: uuid.UUID
    created_at: datetime


@event_type("content.poll.created.v1")
class PollCreated(Event):
    """A member opened a poll in a community."""

    poll_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    column_id: uuid.UUID | None = None
    post_id: uuid.UUID | None = None
    multiple: bool
    anonymous: bool
    option_count: int
    closes_at: datetime | None = None
    created_at: datetime


@event_type("content.poll.voted.v1")
class PollVoted(Event):
    """A member voted in a poll (`changed`: they replaced their earlier vote).

    In an anonymous poll `voter_id` is null: metrics counts participation from `ballot_id`
    (one random id per ballot, linked to nothing outside the poll) and `changed`.
    """

    poll_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    column_id: uuid.UUID | None = None
    anonymous: bool
    voter_id: uuid.UUID | None = None
    ballot_id: uuid.UUID
    changed: bool = False
    option_ids: list[uuid.UUID]
    voted_at: datetime


@event_type("content.poll.closed.v1")
class PollClosed(Event):
    """A poll closed (its author or staff closed it, or its close time came)."""

    poll_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    column_id: uuid.UUID | None = None
    closed_by: uuid.UUID | None = None
    voters: int
    closed_at: datetime


class ViewsOfPost(BaseModel):
    """New views of one post in a flush (one per member per UTC day)."""

    model_config = ConfigDict(frozen=True)

    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    column_id: uuid.UUID | None = None
    views: int


@event_type("content.views.counted.v1")
class ViewsCounted(Event):
    """A batch of views was counted (each member counts once per post per UTC day)."""

    posts: list[ViewsOfPost]
    views: int
    counted_at: datetime

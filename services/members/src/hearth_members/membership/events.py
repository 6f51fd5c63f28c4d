"""Events of the membership lifecycle (subjects `<prefix>.members.<entity>.<fact>.v<N>`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.events import Event, event_type


@event_type("members.member.joined.v1")
class MemberJoined(Event):
    """A person became an active member of a community."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    membership_id: uuid.UUID
    role: str
    joined_at: datetime
    channel: str | None = None


@event_type("members.community.ownership_transferred.v1")
class OwnershipTransferred(Event):
    """A community changed owner (the old owner stays as an admin)."""

    community_id: uuid.UUID
    from_user_id: uuid.UUID
    to_user_id: uuid.UUID
    transferred_by: uuid.UUID
    transferred_at: datetime


@event_type("members.member.applied.v1")
class MemberApplied(Event):
    """Someone applied to join a community (answers stay in members)."""

    application_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    applied_at: datetime


@event_type("members.member.approved.v1")
class MemberApproved(Event):
    """An application was approved, by a reviewer or by the automatic rules."""

    application_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    decided_by: uuid.UUID | None
    automatic: bool
    decided_at: datetime


@event_type("members.member.rejected.v1")
class MemberRejected(Event):
    """An application was rejected, with the reason the applicant sees."""

    application_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    decided_by: uuid.UUID
    reason: str
    decided_at: datetime


@event_type("members.member.left.v1")
class MemberLeft(Event):
    """A member left a community of their own accord."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    membership_id: uuid.UUID
    left_at: datetime


@event_type("members.member.removed.v1")
class MemberRemoved(Event):
    """A member was removed, with the reason and (for cleanup and sanctions) the evidence."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    membership_id: uuid.UUID
    removed_by: uuid.UUID | None
    reason: str
    evidence_ref: str | None = None
    cause: str = "manual"  # manual | cleanup | sanction
    removed_at: datetime


@event_type("members.member.banned.v1")
class MemberBanned(Event):
    """A person was banned from a community (no rejoining, not even by invite)."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    banned_by: uuid.UUID
    reason: str
    banned_at: datetime


@event_type("members.member.restored.v1")
class MemberRestored(Event):
    """A ban was lifted: the person may join again (they are not a member until they do)."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    restored_by: uuid.UUID
    restored_at: datetime


@event_type("members.member.muted.v1")
class MemberMuted(Event):
    """A member may not post until `muted_until` (content's read model applies it)."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    muted_until: datetime
    reason: str
    sanction_id: uuid.UUID | None = None
    muted_at: datetime


@event_type("members.member.removal_scheduled.v1")
class MemberRemovalScheduled(Event):
    """Cleanup notice: the member will be removed at `removal_due_at` unless it is withdrawn."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    membership_id: uuid.UUID
    reason: str
    evidence_ref: str | None = None
    removal_due_at: datetime


@event_type("members.member.role_changed.v1")
class RoleChanged(Event):
    """A member's community role changed."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    old_role: str
    new_role: str
    changed_by: uuid.UUID
    changed_at: datetime


@event_type("members.invite.redeemed.v1")
class InviteRedeemed(Event):
    """Someone joined through an invite link (the channel attributes the join)."""

    invite_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    channel: str
    redeemed_at: datetime

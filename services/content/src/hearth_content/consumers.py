"""Content's subscriptions: members' snapshots feed the read models; moderation's verdicts apply.

Payloads are parsed with content's own tolerant models (only the fields content needs, extra
fields ignored), never with the producing service's classes. Members publishes the whole state
of a membership or community with a version that only grows; a snapshot replaces the row when
it is newer (servicekit.readmodel), so delivery order does not matter. `member.pseudonymised.v1`
needs nothing here: content copies no profile data from members, only user ids.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_content import service
from hearth_content.discussion import service as discussion
from hearth_content.screening import Verdict
from servicekit.consumer import EventConsumer
from servicekit.deps import handler_uow
from servicekit.events import Envelope

memberships = EventConsumer("content__memberships")
screening = EventConsumer("content__screening")


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore")


class MembershipSnapshotV1(_Tolerant):
    """What content reads from hearth.members.membership.snapshot.v1."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    membership_id: uuid.UUID
    role: str
    status: str
    muted_until: datetime | None = None
    joined_at: datetime
    privileges: list[str] = []
    version: int


class CommunitySnapshotV1(_Tolerant):
    """What content reads from hearth.members.community.snapshot.v1."""

    community_id: uuid.UUID
    name: str
    kind: str
    visibility: str
    owner_id: uuid.UUID
    archived: bool
    created_at: datetime
    version: int


class ScreeningCompletedV1(_Tolerant):
    """What content reads from hearth.moderation.screening.completed.v1."""

    screening_id: uuid.UUID
    target_type: str
    target_id: uuid.UUID
    decision: str
    reasons: list[str] = []
    # Optional additions of v1 (moderation's rule sets): the most severe action hit, the tags
    # to apply, the screened text with censor hits replaced, and every hit's action.
    verdict: str = "allow"
    tags: list[str] = []
    censored_text: str | None = None
    hits: list[dict[str, Any]] = []


@memberships.handles("hearth.members.membership.snapshot.v1", payload=MembershipSnapshotV1)
async def on_membership_snapshot(
    session: AsyncSession, envelope: Envelope, data: MembershipSnapshotV1
) -> None:
    """Take a membership's whole state when it is newer than the one held."""
    await service.apply_membership(uow=handler_uow(session), values=data.model_dump())


@memberships.handles("hearth.members.community.snapshot.v1", payload=CommunitySnapshotV1)
async def on_community_snapshot(
    session: AsyncSession, envelope: Envelope, data: CommunitySnapshotV1
) -> None:
    """Take a community's whole state when it is newer than the one held."""
    values = data.model_dump()
    values["id"] = values.pop("community_id")
    await service.apply_community(uow=handler_uow(session), values=values)


@screening.handles("hearth.moderation.screening.completed.v1", payload=ScreeningCompletedV1)
async def on_screening_completed(
    session: AsyncSession, envelope: Envelope, data: ScreeningCompletedV1
) -> None:
    """Act on a verdict on a post or comment: hold it, or let it out censored/flagged/tagged."""
    verdict = screening_verdict(data)
    if data.target_type == "post":
        await service.apply_screening(
            uow=handler_uow(session),
            post_id=data.target_id,
            screening_id=data.screening_id,
            decision=data.decision,
            reasons=data.reasons,
            verdict=verdict,
        )
    elif data.target_type == "comment":
        await discussion.apply_comment_screening(
            uow=handler_uow(session),
            comment_id=data.target_id,
            screening_id=data.screening_id,
            decision=data.decision,
            reasons=data.reasons,
            verdict=verdict,
        )
    # Other targets (profiles, …) are not content's.


def screening_verdict(data: ScreeningCompletedV1) -> Verdict:
    """What content does with a verdict, whatever its version sent."""
    actions = {str(h.get("action")) for h in data.hits} | {data.verdict}
    return Verdict(
        hold=data.decision == "held" or bool(actions & {"block", "require_approval"}),
        censored_text=data.censored_text,
        flag="flag" in actions,
        tags=list(data.tags),
    )

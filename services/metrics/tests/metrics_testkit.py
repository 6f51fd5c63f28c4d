"""Shared helpers of the business-measures tests: producers' envelopes and readers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from hearth_metrics.communities.consumers import memberships
from servicekit.events import Envelope
from servicekit.identity import Principal
from servicekit.ids import uuid7
from servicekit.testing.contracts import producer_envelope
from servicekit.testing.harness import Identities, RunningService
from servicekit.testing.membership import Snapshots

PROBLEM = "application/problem+json"


def service_key(identities: Identities, *scopes: str) -> dict[str, str]:
    """Headers of a business system's API key with these scopes."""
    principal = Principal(
        subject=uuid.uuid4(), kind="service", roles=frozenset({"service"}), scopes=frozenset(scopes)
    )
    return {"x-hearth-identity": identities.signer.sign(principal)}


async def community(
    metrics: RunningService, *, kind: str = "customer", members: int = 0
) -> tuple[uuid.UUID, uuid.UUID, list[uuid.UUID]]:
    """A community known to metrics' read model: its id, its owner and `members` members."""
    rt = metrics.runtime
    snaps = Snapshots()
    cid, owner = uuid.uuid4(), uuid.uuid4()
    assert await memberships.handle(rt.db, rt.tables, snaps.community(cid, owner, kind=kind))
    assert await memberships.handle(rt.db, rt.tables, snaps.membership(cid, owner, role="owner"))
    people = [uuid.uuid4() for _ in range(members)]
    for user in people:
        assert await memberships.handle(rt.db, rt.tables, snaps.membership(cid, user))
    return cid, owner, people


def joined(cid: uuid.UUID, user: uuid.UUID, at: datetime, channel: str | None = None) -> Envelope:
    """members' member.joined.v1."""
    return producer_envelope(
        "hearth.members.member.joined.v1",
        {
            "community_id": str(cid),
            "user_id": str(user),
            "membership_id": str(uuid7()),
            "role": "member",
            "channel": channel,
            "joined_at": at.isoformat(),
        },
    )


def applied(cid: uuid.UUID, user: uuid.UUID, at: datetime) -> Envelope:
    """members' member.applied.v1."""
    return producer_envelope(
        "hearth.members.member.applied.v1",
        {
            "application_id": str(uuid7()),
            "community_id": str(cid),
            "user_id": str(user),
            "applied_at": at.isoformat(),
        },
    )


def redeemed(cid: uuid.UUID, user: uuid.UUID, at: datetime, channel: str = "link") -> Envelope:
    """members' invite.redeemed.v1."""
    return producer_envelope(
        "hearth.members.invite.redeemed.v1",
        {
            "invite_id": str(uuid7()),
            "community_id": str(cid),
            "user_id": str(user),
            "channel": channel,
            "redeemed_at": at.isoformat(),
        },
    )


def published(
    cid: uuid.UUID,
    author: uuid.UUID,
    at: datetime,
    post_id: uuid.UUID | None = None,
    column_id: uuid.UUID | None = None,
) -> Envelope:
    """content's post.published.v1."""
    return producer_envelope(
        "hearth.content.post.published.v1",
        {
            "post_id": str(post_id or uuid7()),
            "community_id": str(cid),
            "author_id": str(author),
            "title": "A post",
            "format": "text",
            "column_id": str(column_id) if column_id else None,
            "published_at": at.isoformat(),
        },
    )


def commented(cid: uuid.UUID, post: uuid.UUID, author: uuid.UUID, at: datetime) -> Envelope:
    """content's comment.created.v1."""
    return producer_envelope(
        "hearth.content.comment.created.v1",
        {
            "comment_id": str(uuid7()),
            "post_id": str(post),
            "community_id": str(cid),
            "author_id": str(author),
            "body": "Nice",
            "parent_id": None,
            "created_at": at.isoformat(),
        },
    )


def produced(ce_type: str, **data: Any) -> Envelope:
    """Any producer's event, checked by its own model."""
    return producer_envelope(ce_type, {k: _json(v) for k, v in data.items()})


def _json(value: Any) -> Any:
    if isinstance(value, (uuid.UUID,)):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value

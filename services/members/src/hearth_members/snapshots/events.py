"""Snapshot events: the whole current state of a membership or a community, with its version.

Other contexts keep read models from these alone (servicekit.readmodel.apply_snapshot): a
snapshot replaces the row when its `version` is newer and is ignored otherwise, so redelivery,
reordering and several consumer replicas all converge on members' state.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.events import Event, event_type


@event_type("members.membership.snapshot.v1")
class MembershipSnapshot(Event):
    """The whole state of one membership, published with every change to it.

    Written in the same transaction as the change, for every change (join, exit, role, mute,
    tier or what the tier grants, cleanup notice): `version` grows by one with each, per
    membership. Apply a snapshot only when its version is newer than the one held. A new
    context, or a rebuilt read model, starts from `hearth-members republish-snapshots`, which
    publishes the current snapshot of every membership and community (same versions) without
    replaying history.
    """

    community_id: uuid.UUID
    user_id: uuid.UUID
    membership_id: uuid.UUID
    role: str
    status: str
    muted_until: datetime | None = None
    tier: str
    privileges: list[str]
    joined_at: datetime
    version: int


@event_type("members.community.snapshot.v1")
class CommunitySnapshot(Event):
    """The whole state of one community that other contexts rely on, with every change to it.

    Written in the same transaction as the change (created, profile or settings updated,
    archived, restored, ownership handed over); `version` grows by one with each, per
    community. Apply only when newer; `hearth-members republish-snapshots` republishes all.
    """

    community_id: uuid.UUID
    name: str
    kind: str
    visibility: str
    join_policy: str
    owner_id: uuid.UUID
    archived: bool
    archived_at: datetime | None = None
    created_at: datetime
    version: int

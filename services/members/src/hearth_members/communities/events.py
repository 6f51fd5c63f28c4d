"""Events of communities (subjects `<prefix>.members.<entity>.<fact>.v<N>`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.events import Event, event_type


@event_type("members.community.created.v1")
class CommunityCreated(Event):
    """A community was created."""

    community_id: uuid.UUID
    name: str
    kind: str
    join_policy: str
    visibility: str
    owner_id: uuid.UUID
    created_at: datetime


@event_type("members.community.updated.v1")
class CommunityUpdated(Event):
    """A community's profile or settings changed (`changed` names the fields)."""

    community_id: uuid.UUID
    changed: list[str]
    name: str
    kind: str
    join_policy: str
    visibility: str
    updated_at: datetime


@event_type("members.community.archived.v1")
class CommunityArchived(Event):
    """A community was archived (read-only; nobody joins)."""

    community_id: uuid.UUID
    archived_by: uuid.UUID
    archived_at: datetime


@event_type("members.community.restored.v1")
class CommunityRestored(Event):
    """An archived community was restored."""

    community_id: uuid.UUID
    restored_by: uuid.UUID
    restored_at: datetime

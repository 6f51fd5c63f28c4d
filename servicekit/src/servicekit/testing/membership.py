"""Members' snapshots for consumers' tests, built and checked by members' own event models.

Every context that keeps a membership read model (content, events, moderation, metrics) tests
it with the same snapshots members publishes: `hearth.members.membership.snapshot.v1` and
`hearth.members.community.snapshot.v1`. `Snapshots` remembers each membership's id and the
last version it handed out, so `membership(...)` is "the next change" unless a version is
given; the payload goes through `servicekit.testing.contracts`, so a field members renames or
adds as required breaks the consumers' tests. The kernel stays domain-free at run time: only
tests import this module.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from servicekit.events import Envelope
from servicekit.ids import utcnow, uuid7
from servicekit.testing.contracts import producer_envelope

MEMBERSHIP = "hearth.members.membership.snapshot.v1"
COMMUNITY = "hearth.members.community.snapshot.v1"


class Snapshots:
    """Envelopes of members' snapshots with versions that grow per membership and community."""

    def __init__(self) -> None:
        self.versions: dict[Any, int] = {}
        self.membership_ids: dict[tuple[uuid.UUID, uuid.UUID], uuid.UUID] = {}
        self.created: dict[uuid.UUID, datetime] = {}
        self.joined: dict[tuple[uuid.UUID, uuid.UUID], datetime] = {}

    def _version(self, key: Any, version: int | None) -> int:
        version = version if version is not None else self.versions.get(key, 0) + 1
        self.versions[key] = max(version, self.versions.get(key, 0))
        return version

    def community(
        self,
        community_id: uuid.UUID,
        owner_id: uuid.UUID,
        *,
        name: str = "Guild",
        kind: str = "internal",
        visibility: str = "public",
        join_policy: str = "open",
        archived: bool = False,
        version: int | None = None,
    ) -> Envelope:
        """The community's next snapshot (or the one at `version`)."""
        created = self.created.setdefault(community_id, utcnow())
        data = {
            "community_id": str(community_id),
            "name": name,
            "kind": kind,
            "visibility": visibility,
            "join_policy": join_policy,
            "owner_id": str(owner_id),
            "archived": archived,
            "archived_at": utcnow().isoformat() if archived else None,
            "created_at": created.isoformat(),
            "version": self._version(community_id, version),
        }
        return producer_envelope(COMMUNITY, data, subject=str(community_id))

    def membership(
        self,
        community_id: uuid.UUID,
        user_id: uuid.UUID,
        *,
        role: str = "member",
        status: str = "active",
        muted_until: datetime | None = None,
        tier: str = "regular",
        privileges: list[str] | None = None,
        version: int | None = None,
    ) -> Envelope:
        """The membership's next snapshot (or the one at `version`)."""
        pair = (community_id, user_id)
        membership_id = self.membership_ids.setdefault(pair, uuid7())
        data = {
            "community_id": str(community_id),
            "user_id": str(user_id),
            "membership_id": str(membership_id),
            "role": role,
            "status": status,
            "muted_until": muted_until.isoformat() if muted_until else None,
            "tier": tier,
            "privileges": privileges or [],
            "joined_at": self.joined.setdefault(pair, utcnow()).isoformat(),
            "version": self._version(pair, version),
        }
        return producer_envelope(MEMBERSHIP, data, subject=str(community_id))


def redelivered(envelope: Envelope) -> Envelope:
    """The same snapshot as a new message (a producer's retry or a republish): a fresh id."""
    return envelope.model_copy(update={"id": uuid7()})

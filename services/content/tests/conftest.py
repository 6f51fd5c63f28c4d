"""Content tests run the real service (its own database, real NATS), with members when needed.

`launch`, `broker` and `stream_events` come from the servicekit pytest plugin.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

from hearth_content.app import definition
from hearth_content.consumers import memberships, screening
from hearth_members.app import definition as members_definition
from servicekit.events import Envelope
from servicekit.ids import utcnow, uuid7
from servicekit.testing.harness import RunningService
from servicekit.testing.membership import Snapshots
from servicekit.testing.plugin import Launch


@pytest.fixture
async def content(launch: Launch) -> RunningService:
    """A running content service (its scheduled publisher passes every 0.2 s)."""
    return await launch(definition, publish_tick_seconds=0.2)


@pytest.fixture
async def members(launch: Launch) -> RunningService:
    """A running members service on the same subject prefix as content."""
    return await launch(members_definition)


class Feed:
    """Hands events straight to content's consumers, as members and moderation publish them.

    Members' state arrives as its snapshots (servicekit.testing.membership), checked against
    members' own event models.
    """

    def __init__(self, service: RunningService) -> None:
        self.service = service
        self.snapshots = Snapshots()

    async def deliver(self, consumer: Any, envelope: Envelope) -> bool:
        """Run one envelope through a consumer (inbox included)."""
        runtime = self.service.runtime
        return await consumer.handle(runtime.db, runtime.tables, envelope)

    @staticmethod
    def envelope(
        ce_type: str, data: dict[str, Any], *, time: datetime | None = None, source: str = ""
    ) -> Envelope:
        """A CloudEvent as another context would publish it."""
        return Envelope(
            id=uuid7(),
            source=source or "/hearth/" + ce_type.split(".")[1],
            type=ce_type,
            time=time or utcnow(),
            data=data,
        )

    async def community(self, *, visibility: str = "public", owner: uuid.UUID | None = None) -> str:
        """A community (with its owner's membership) in content's read model."""
        community_id = uuid.uuid4()
        owner = owner or uuid.uuid4()
        snapshot = self.snapshots.community(community_id, owner, visibility=visibility)
        assert await self.deliver(memberships, snapshot)
        await self.member(str(community_id), owner, role="owner")
        return str(community_id)

    async def member(
        self, community_id: str, user: uuid.UUID, *, role: str = "member", **state: Any
    ) -> None:
        """The membership's next snapshot (active unless `status`, `muted_until`… say otherwise)."""
        snapshot = self.snapshots.membership(uuid.UUID(community_id), user, role=role, **state)
        assert await self.deliver(memberships, snapshot)

    async def verdict(
        self,
        post_id: str,
        decision: str,
        reasons: list[str] | None = None,
        *,
        target_type: str = "post",
    ) -> bool:
        """Moderation's verdict on a post."""
        return await self.deliver(
            screening,
            self.envelope(
                "hearth.moderation.screening.completed.v1",
                {
                    "screening_id": str(uuid7()),
                    "target_type": target_type,
                    "target_id": post_id,
                    "community_id": str(uuid.uuid4()),
                    "author_id": None,
                    "decision": decision,
                    "reasons": reasons or [],
                    "screened_at": utcnow().isoformat(),
                },
            ),
        )


@pytest.fixture
def feed(content: RunningService) -> Feed:
    """Direct delivery of upstream events into the running content service."""
    return Feed(content)


@pytest.fixture
def feed_for() -> type[Feed]:
    """Feed's class, for a content service a test launches itself (e.g. on any_database_url)."""
    return Feed

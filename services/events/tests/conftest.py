"""Events tests run the real service: its own database and real NATS (members too, where needed)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from hearth_events.app import definition
from hearth_events.models import CommunityMembership
from servicekit.events import Envelope
from servicekit.testing.harness import Broker, RunningService, eventually
from servicekit.testing.membership import Snapshots
from servicekit.testing.plugin import Launch


@pytest.fixture
async def events(launch: Launch) -> RunningService:
    """A running events service on the primary backend."""
    return await launch(definition)


class Directory:
    """Plays the members service: publishes membership snapshots and waits until events has them.

    The snapshots are members' own (servicekit.testing.membership: checked by members' models).
    """

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.snapshots = Snapshots()

    async def membership(
        self, community_id: uuid.UUID, user_id: uuid.UUID, role: str = "member", **state: Any
    ) -> Envelope:
        """Publish the membership's next snapshot, as members' relay would."""
        envelope = self.snapshots.membership(community_id, user_id, role=role, **state)
        await self.broker.publish(envelope)
        return envelope

    async def joined(
        self, community_id: uuid.UUID, user_id: uuid.UUID, role: str = "member"
    ) -> None:
        """Publish one person's active membership."""
        await self.membership(community_id, user_id, role)

    async def community(
        self, service: RunningService, members: int = 0
    ) -> tuple[uuid.UUID, list[uuid.UUID]]:
        """A community with an owner and `members` members, known to the events service."""
        community_id, owner = uuid.uuid4(), uuid.uuid4()
        users = [uuid.uuid4() for _ in range(members)]
        await self.joined(community_id, owner, role="owner")
        for user in users:
            await self.joined(community_id, user)
        await wait_memberships(service, community_id, 1 + members)
        return community_id, users


async def wait_memberships(service: RunningService, community_id: uuid.UUID, count: int) -> None:
    """Wait until the events read model holds `count` memberships of a community."""

    async def arrived() -> bool:
        async with service.runtime.db.session() as session:
            stmt = select(func.count()).where(col(CommunityMembership.community_id) == community_id)
            return (await session.exec(stmt)).one() >= count

    await eventually(arrived)


@pytest.fixture
def directory(broker: Broker) -> Directory:
    """Publishes members' facts for the events service to consume."""
    return Directory(broker)


@pytest.fixture
def published(
    broker: Broker, subject_prefix: str
) -> Callable[[str, int], Awaitable[list[Envelope]]]:
    """`await published("events.registration.confirmed.v1", n)`: the envelopes once n are there."""

    async def collect(subject_suffix: str, expected: int) -> list[Envelope]:
        async def enough() -> list[Envelope] | None:
            found = await broker.read(f"{subject_prefix}.{subject_suffix}")
            return found if len(found) >= expected else None

        return await eventually(enough)

    return collect

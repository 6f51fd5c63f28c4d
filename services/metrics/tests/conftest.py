"""Metrics tests run the real service (and the producers it counts) on real NATS and databases."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from hearth_metrics.app import definition
from servicekit.events import Envelope
from servicekit.ids import utcnow, uuid7
from servicekit.testing.harness import Broker, RunningService, relay_envelope
from servicekit.testing.plugin import Launch


@pytest.fixture
async def metrics(launch: Launch) -> RunningService:
    """A running metrics service on the primary backend."""
    return await launch(definition)


def envelope(ce_type: str, community_id: uuid.UUID, **data: Any) -> Envelope:
    """A CloudEvents envelope about one community, as another context's relay would publish it."""
    return relay_envelope(
        ce_type, subject=str(community_id), community_id=str(community_id), **data
    )


def post_submitted(community_id: uuid.UUID) -> Envelope:
    """content.post.submitted.v1, with the fields content promises."""
    return envelope(
        "hearth.content.post.submitted.v1",
        community_id,
        post_id=str(uuid7()),
        author_id=str(uuid.uuid4()),
        title="Hello",
        body="First post",
        format="text",
        submitted_at=utcnow().isoformat(),
    )


def post_published(community_id: uuid.UUID) -> Envelope:
    """content.post.published.v1, with the fields content promises."""
    return envelope(
        "hearth.content.post.published.v1",
        community_id,
        post_id=str(uuid7()),
        author_id=str(uuid.uuid4()),
        published_at=utcnow().isoformat(),
    )


class Publisher(Broker):
    """The kernel's Broker plus the content facts metrics counts."""

    envelope = staticmethod(envelope)
    post_submitted = staticmethod(post_submitted)
    post_published = staticmethod(post_published)


@pytest.fixture
def broker(nats_client: Any, subject_prefix: str) -> Publisher:
    """A publisher on this test's subject prefix."""
    return Publisher(nats_client, subject_prefix)

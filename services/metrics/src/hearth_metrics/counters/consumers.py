"""What metrics consumes: facts from members, content and events, counted per community."""

from __future__ import annotations

import uuid

from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.counters import service
from hearth_metrics.counters.models import Counter
from servicekit.consumer import EventConsumer, Handler
from servicekit.deps import handler_uow
from servicekit.events import Envelope

community_counts = EventConsumer("metrics__community_counts")


class CommunityFact(BaseModel):
    """The one field every counted event carries (all others are ignored)."""

    community_id: uuid.UUID


COUNTED: dict[str, Counter] = {
    "hearth.members.member.joined.v1": Counter.joins,
    "hearth.content.post.submitted.v1": Counter.posts_submitted,
    "hearth.content.post.published.v1": Counter.posts_published,
    "hearth.events.registration.confirmed.v1": Counter.registrations,
}


def _counting(counter: Counter) -> Handler:
    async def handler(session: AsyncSession, envelope: Envelope) -> None:
        fact: CommunityFact = envelope.payload(CommunityFact)
        # The kernel commits the inbox row, the new count and its measured event together.
        await service.count(
            uow=handler_uow(session), community_id=fact.community_id, counter=counter
        )

    handler.__name__ = f"count_{counter.value}"
    handler.__doc__ = f"Add one to the community's {counter.value} and publish the new value."
    return handler


for _ce_type, _counter in COUNTED.items():
    community_counts.handles(_ce_type)(_counting(_counter))

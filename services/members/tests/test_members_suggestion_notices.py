"""Content's suggestion box tells an idea's author and voters of each status change, through
the inbox: `members__suggestions` reads content.suggestion.status_changed.v1 (content's own
event model checks every payload published here, so a renamed field fails these tests).
"""

from __future__ import annotations

import uuid
from typing import Any

from hearth_members.notifications.consumers import SuggestionStatusChangedFact
from members_testkit import publish, took
from servicekit.ids import utcnow
from servicekit.testing.contracts import producer_payload
from servicekit.testing.harness import Identities, RunningService, eventually

CHANGED = "hearth.content.suggestion.status_changed.v1"


def _changed(author: uuid.UUID, voters: list[uuid.UUID], **over: Any) -> dict[str, Any]:
    return {
        "suggestion_id": str(uuid.uuid4()),
        "community_id": str(uuid.uuid4()),
        "author_id": str(author),
        "title": "更多线下活动",
        "from_status": "under_review",
        "status": "declined",
        "reason": "场地预算不足",
        "merged_into_id": None,
        "actor_id": str(uuid.uuid4()),
        "voters": len(voters),
        "voter_ids": [str(v) for v in voters],
        "batch": 0,
        "batches": 1,
        "changed_at": utcnow().isoformat(),
    } | over


def test_the_fact_reads_every_field_it_needs_from_contents_own_model() -> None:
    author, voter = uuid.uuid4(), uuid.uuid4()
    produced = producer_payload(CHANGED, _changed(author, [voter], batch=1, batches=2))
    fact = SuggestionStatusChangedFact.model_validate(produced.model_dump(mode="json"))
    assert fact.author_id == author and fact.voter_ids == [voter]
    assert (fact.status, fact.reason, fact.batch) == ("declined", "场地预算不足", 1)
    # Every field the consumer reads is one the producer defines (none invented here).
    assert set(SuggestionStatusChangedFact.model_fields) <= set(type(produced).model_fields)


async def _inbox(members: RunningService, identities: Identities, user: uuid.UUID) -> list[dict]:
    r = await members.client.get("/me/notifications", headers=identities.headers(user))
    assert r.status_code == 200, r.text
    return [n for n in r.json()["items"] if n["kind"] == "suggestion.status_changed"]


async def test_author_and_voters_are_told_once_and_batches_do_not_repeat_the_author(
    members: RunningService, identities: Identities, nats_client: Any, subject_prefix: str
) -> None:
    author, v1, v2, v3 = (uuid.uuid4() for _ in range(4))
    first = await publish(nats_client, subject_prefix, CHANGED, _changed(author, [v1, v2]))
    # The same event again (a redelivery): the inbox adds nothing.
    await publish(nats_client, subject_prefix, CHANGED, first.data, envelope=first)
    # The second batch of the same change names the remaining voter only.
    await publish(
        nats_client,
        subject_prefix,
        CHANGED,
        first.data | {"voter_ids": [str(v3)], "batch": 1, "batches": 2},
    )
    await eventually(took(members, "members__suggestions", 3))
    [mine] = await _inbox(members, identities, author)
    assert mine["title"] == "Your suggestion was declined"
    assert mine["body"] == "«更多线下活动» was declined. Reason: 场地预算不足"
    assert mine["data"]["status"] == "declined" and mine["data"]["reason"] == "场地预算不足"
    assert mine["community_id"] == first.data["community_id"]
    for voter in (v1, v2, v3):
        [note] = await _inbox(members, identities, voter)
        assert note["title"] == "A suggestion you voted for was declined"
        assert note["data"]["suggestion_id"] == first.data["suggestion_id"]
    # Someone who neither wrote nor voted hears nothing.
    assert await _inbox(members, identities, uuid.uuid4()) == []

"""The sanction ladder with members and content over real NATS: warnings mute, the mute ends."""

from __future__ import annotations

import uuid
from datetime import datetime

from hearth_content.app import definition as content_definition
from hearth_content.models import Membership as ContentMembership
from hearth_members.app import definition as members_definition
from hearth_moderation.app import definition as moderation_definition
from hearth_moderation.sanctions.events import SanctionAppliedV2
from servicekit.testing.contracts import producer_payload
from servicekit.testing.harness import Identities, eventually


async def _community(members, identities: Identities, *people: uuid.UUID) -> str:
    r = await members.client.post(
        "/communities",
        json={"name": "Makers", "kind": "customer"},
        headers=identities.headers(None, "operator"),
    )
    community_id = r.json()["id"]
    for person in people:
        r = await members.client.post(
            f"/communities/{community_id}/members", headers=identities.headers(person)
        )
        assert r.status_code == 201, r.text
    return community_id


async def test_three_warnings_mute_and_the_mute_lifts_by_itself(
    launch, identities: Identities, stream_events, subject_prefix: str
) -> None:
    members = await launch(members_definition)
    content = await launch(content_definition)
    moderation = await launch(moderation_definition, sanction_tick_seconds=0.3)
    author = uuid.uuid4()
    community_id = await _community(members, identities, author)
    staff = identities.headers(uuid.uuid4(), "operator")
    # A short mute, so the test sees it end.
    r = await moderation.client.patch(
        f"/communities/{community_id}/sanctions/ladder", json={"mute_seconds": 4}, headers=staff
    )
    assert r.status_code == 200, r.text
    assert (r.json()["mute_at"], r.json()["removal_at"], r.json()["ban_at"]) == (3, 5, 7)

    async def content_knows() -> bool:
        async with content.runtime.db.session() as session:
            return (
                await session.get(ContentMembership, (uuid.UUID(community_id), author)) is not None
            )

    await eventually(content_knows)
    url = f"/communities/{community_id}/sanctions"
    made = []
    for n in range(3):
        r = await moderation.client.post(
            url,
            json={
                "user_id": str(author),
                "reason": f"advertising ({n + 1})",
                "item_type": "post",
                "item_id": str(uuid.uuid4()),
                "quote": "加微信 buy now",
            },
            headers=staff,
        )
        assert r.status_code == 201, r.text
        made.append(r.json())
    assert [len(m) for m in made] == [1, 1, 2]  # the third warning reached the mute rung
    mute = made[2][1]
    assert mute["level"] == "mute" and mute["cause"] == "ladder" and mute["actor_id"] is None
    assert mute["triggered_by"] == made[2][0]["id"]
    mute_end = datetime.fromisoformat(mute["ends_at"])

    post = {"title": "Hello", "body": "Glad to be here.", "format": "text"}
    author_headers = identities.headers(author)

    async def refused() -> dict:
        r = await content.client.post(
            f"/communities/{community_id}/posts", json=post, headers=author_headers
        )
        return r.json() if r.status_code == 403 else {}

    problem = await eventually(refused, timeout=10)
    assert problem["type"].endswith("muted")
    assert datetime.fromisoformat(problem["muted_until"]) == mute_end

    # The member was told what, why (quoting the item), until when and how to appeal.
    async def inbox() -> list:
        r = await members.client.get("/me/notifications", headers=author_headers)
        return [n for n in r.json()["items"] if n["kind"] == "sanction.mute"]

    (notice,) = await eventually(inbox)
    assert "加微信 buy now" in notice["body"] and "appeal" in notice["body"]
    assert f"/api/moderation/sanctions/{mute['id']}/appeals" in notice["body"]

    # After the mute's end it lifts by itself: the member posts again.
    async def accepted() -> bool:
        r = await content.client.post(
            f"/communities/{community_id}/posts", json=post, headers=author_headers
        )
        return r.status_code == 201

    await eventually(accepted, timeout=20)
    expired = await eventually(
        lambda: stream_events(f"{subject_prefix}.moderation.sanction.expired.v1"), timeout=10
    )
    assert [e.data["sanction_id"] for e in expired] == [mute["id"]]
    # Members lifted it (muted_until cleared), so the snapshot content holds says so too.

    async def unmuted_everywhere() -> bool:
        async with content.runtime.db.session() as session:
            row = await session.get(ContentMembership, (uuid.UUID(community_id), author))
            return row is not None and row.muted_until is None

    await eventually(unmuted_everywhere)
    r = await moderation.client.get(
        f"/communities/{community_id}/members/{author}/standing", headers=author_headers
    )
    assert r.status_code == 200 and r.json()["active_points"] == 3
    assert r.json()["muted_until"] is None


async def test_expiry_on_two_replicas_is_announced_once(
    launch, identities: Identities, stream_events, subject_prefix: str, backends
) -> None:
    url = backends.database_url("moderation")
    first = await launch(moderation_definition, database_url=url, sanction_tick_seconds=0.1)
    await launch(moderation_definition, database_url=url, sanction_tick_seconds=0.1)
    community_id = uuid.uuid4()
    staff = identities.headers(uuid.uuid4(), "operator")
    users = [uuid.uuid4() for _ in range(8)]
    for user in users:
        r = await first.client.post(
            f"/communities/{community_id}/sanctions",
            json={"user_id": str(user), "level": "mute", "reason": "flood", "duration_seconds": 1},
            headers=staff,
        )
        assert r.status_code == 201, r.text

    async def all_expired() -> list:
        found = await stream_events(f"{subject_prefix}.moderation.sanction.expired.v1")
        return found if len(found) >= len(users) else []

    await eventually(all_expired, timeout=15)
    import asyncio

    await asyncio.sleep(1.0)  # both replicas ran several more passes meanwhile
    found = await stream_events(f"{subject_prefix}.moderation.sanction.expired.v1")
    assert sorted(e.data["user_id"] for e in found) == sorted(str(u) for u in users)


async def test_a_ban_applies_in_members_and_matches_the_producer_model(
    launch, identities: Identities
) -> None:
    members = await launch(members_definition)
    moderation = await launch(moderation_definition)
    author = uuid.uuid4()
    community_id = await _community(members, identities, author)
    staff = identities.headers(uuid.uuid4(), "operator")
    r = await moderation.client.post(
        f"/communities/{community_id}/sanctions",
        json={"user_id": str(author), "level": "ban", "reason": "scam links"},
        headers=staff,
    )
    assert r.status_code == 201 and r.json()[0]["level"] == "ban"

    async def banned() -> bool:
        r = await members.client.get(
            f"/communities/{community_id}/members", headers=identities.headers(None, "operator")
        )
        return all(m["user_id"] != str(author) for m in r.json()["items"])

    await eventually(banned)
    # Banned: joining again is refused.
    r = await members.client.post(
        f"/communities/{community_id}/members", headers=identities.headers(author)
    )
    assert r.status_code == 403 and r.json()["type"].endswith("banned")


def test_members_reads_every_field_it_needs_from_the_v2_event() -> None:
    from hearth_members.membership.consumers import SanctionAppliedFact, SanctionEndedFact
    from hearth_moderation.sanctions.events import SanctionExpired, SanctionLifted

    # Every field members reads is one the producer writes (expiry has no outcome or reason).
    for model, fact, absent in (
        (SanctionAppliedV2, SanctionAppliedFact, set()),
        (SanctionExpired, SanctionEndedFact, {"outcome", "reason", "muted_until"}),
        (SanctionLifted, SanctionEndedFact, set()),
    ):
        missing = set(fact.model_fields) - set(model.model_fields)
        assert missing == absent, (model.__name__, missing)
    payload = producer_payload(
        "hearth.moderation.sanction.applied.v2",
        {
            "sanction_id": str(uuid.uuid4()),
            "community_id": str(uuid.uuid4()),
            "user_id": str(uuid.uuid4()),
            "level": "ban",
            "cause": "manual",
            "reason": "r",
            "evidence_ref": "moderation:sanction:x",
            "appeal_path": "/api/moderation/sanctions/x/appeals",
            "notice": "n",
            "applied_at": "2026-12-04T00:00:00+00:00",
        },
    )
    assert SanctionAppliedFact.model_validate(payload.model_dump(mode="json")).level == "ban"

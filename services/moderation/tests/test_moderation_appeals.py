"""Appeals with members and content over real NATS: another moderator decides, lifting restores."""

from __future__ import annotations

import uuid

from hearth_content.app import definition as content_definition
from hearth_content.models import Membership as ContentMembership
from hearth_members.app import definition as members_definition
from hearth_moderation.app import definition as moderation_definition
from servicekit.testing.harness import Identities, eventually


async def test_the_sanctioning_moderator_cannot_decide_and_lifting_restores(
    launch, identities: Identities, stream_events, subject_prefix: str
) -> None:
    members = await launch(members_definition)
    content = await launch(content_definition)
    moderation = await launch(moderation_definition, appeal_sla_seconds=1, appeal_tick_seconds=0.2)
    sanctioning = identities.headers(uuid.uuid4(), "operator")  # platform staff, even so
    other = identities.headers(uuid.uuid4(), "operator")
    r = await members.client.post(
        "/communities", json={"name": "Makers", "kind": "customer"}, headers=sanctioning
    )
    community_id = r.json()["id"]
    muted, removed = uuid.uuid4(), uuid.uuid4()
    for person in (muted, removed):
        r = await members.client.post(
            f"/communities/{community_id}/members", headers=identities.headers(person)
        )
        assert r.status_code == 201

    async def content_row(user: uuid.UUID) -> ContentMembership | None:
        async with content.runtime.db.session() as session:
            return await session.get(ContentMembership, (uuid.UUID(community_id), user))

    await eventually(lambda: content_row(muted))

    async def sanction(user: uuid.UUID, level: str) -> dict:
        r = await moderation.client.post(
            f"/communities/{community_id}/sanctions",
            json={"user_id": str(user), "level": level, "reason": "abuse"},
            headers=sanctioning,
        )
        assert r.status_code == 201, r.text
        return r.json()[0]

    mute = await sanction(muted, "mute")
    removal = await sanction(removed, "removal")

    async def is_muted() -> bool:
        row = await content_row(muted)
        return row is not None and row.muted_until is not None

    await eventually(is_muted)

    async def appeal(user: uuid.UUID, sanction_id: str) -> dict:
        r = await moderation.client.post(
            f"/sanctions/{sanction_id}/appeals",
            json={"text": "I was quoting someone else."},
            headers=identities.headers(user),
        )
        assert r.status_code == 201, r.text
        return r.json()

    # Only the member concerned appeals, and once.
    r = await moderation.client.post(
        f"/sanctions/{mute['id']}/appeals", json={"text": "x"}, headers=identities.headers(removed)
    )
    assert r.status_code == 403
    mute_appeal = await appeal(muted, mute["id"])
    r = await moderation.client.post(
        f"/sanctions/{mute['id']}/appeals",
        json={"text": "again"},
        headers=identities.headers(muted),
    )
    assert r.status_code == 409
    removal_appeal = await appeal(removed, removal["id"])

    # A dialogue between the member and the moderators.
    r = await moderation.client.post(
        f"/appeals/{mute_appeal['id']}/messages", json={"body": "Which post?"}, headers=other
    )
    assert r.status_code == 201 and r.json()["from_moderator"] is True
    r = await moderation.client.post(
        f"/appeals/{mute_appeal['id']}/messages",
        json={"body": "The one from Monday."},
        headers=identities.headers(muted),
    )
    assert r.status_code == 201
    r = await moderation.client.get(
        f"/appeals/{mute_appeal['id']}", headers=identities.headers(muted)
    )
    assert [m["body"] for m in r.json()["messages"]] == ["Which post?", "The one from Monday."]

    # The moderator who imposed the sanction may not decide its appeal, staff or not.
    lift = {"outcome": "lifted", "reason": "it was a quote"}
    r = await moderation.client.post(
        f"/appeals/{mute_appeal['id']}/decision", json=lift, headers=sanctioning
    )
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    # Nor may the appellant.
    r = await moderation.client.post(
        f"/appeals/{mute_appeal['id']}/decision", json=lift, headers=identities.headers(muted)
    )
    assert r.status_code == 403

    # SLA: the appeals waited past their (1 s) SLA: one alert each.
    async def overdue() -> list:
        found = await stream_events(f"{subject_prefix}.moderation.appeal.overdue.v1")
        return found if len(found) >= 2 else []

    alerts = await eventually(overdue, timeout=10)
    assert sorted(a.data["appeal_id"] for a in alerts) == sorted(
        [mute_appeal["id"], removal_appeal["id"]]
    )

    # Another moderator lifts both: the mute ends, the removed member is a member again.
    r = await moderation.client.post(
        f"/appeals/{mute_appeal['id']}/decision", json=lift, headers=other
    )
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "lifted" and r.json()["status"] == "decided"
    r = await moderation.client.post(
        f"/appeals/{removal_appeal['id']}/decision", json=lift, headers=other
    )
    assert r.status_code == 200, r.text

    async def unmuted() -> bool:
        row = await content_row(muted)
        return row is not None and row.muted_until is None

    await eventually(unmuted)
    r = await content.client.post(
        f"/communities/{community_id}/posts",
        json={"title": "Back", "body": "Thanks for listening.", "format": "text"},
        headers=identities.headers(muted),
    )
    assert r.status_code == 201, r.text

    async def reinstated() -> bool:
        row = await content_row(removed)
        return row is not None and row.status == "active"

    await eventually(reinstated)
    r = await moderation.client.get(
        f"/sanctions/{removal['id']}", headers=identities.headers(removed)
    )
    assert r.json()["status"] == "lifted"

    async def told() -> list:
        r = await members.client.get("/me/notifications", headers=identities.headers(muted))
        return [n for n in r.json()["items"] if n["kind"] == "appeal.lifted"]

    (notice,) = await eventually(told)
    assert notice["body"] == "it was a quote"
    # Decided once: a second decision is refused.
    r = await moderation.client.post(
        f"/appeals/{mute_appeal['id']}/decision", json=lift, headers=other
    )
    assert r.status_code == 409


async def test_a_reduced_warning_removes_points_and_the_queue_applies_the_same_rule(
    launch, identities: Identities, stream_events, subject_prefix: str
) -> None:
    moderation = await launch(moderation_definition)
    first = identities.headers(uuid.uuid4(), "operator")
    second = identities.headers(uuid.uuid4(), "operator")
    community, member = uuid.uuid4(), uuid.uuid4()
    r = await moderation.client.post(
        f"/communities/{community}/sanctions",
        json={"user_id": str(member), "reason": "off topic", "points": 2},
        headers=first,
    )
    assert r.status_code == 201, r.text
    warning = r.json()[0]
    r = await moderation.client.post(
        f"/sanctions/{warning['id']}/appeals",
        json={"text": "Only one post was off topic."},
        headers=identities.headers(member),
    )
    appeal = r.json()
    # Through the queue, the sanctioning moderator is refused too; the entry stays open.
    r = await moderation.client.post(
        f"/queue/{appeal['entry_id']}/decision", json={"decision": "dismiss"}, headers=first
    )
    assert r.status_code == 403, r.text
    r = await moderation.client.get(f"/queue/{appeal['entry_id']}", headers=second)
    assert r.json()["status"] == "open" and r.json()["kind"] == "appeal"
    r = await moderation.client.post(
        f"/appeals/{appeal['id']}/decision",
        json={"outcome": "reduced", "reason": "one point is enough", "points": 1},
        headers=second,
    )
    assert r.status_code == 200, r.text
    r = await moderation.client.get(
        f"/communities/{community}/members/{member}/standing", headers=identities.headers(member)
    )
    assert r.json()["active_points"] == 1
    lifted = await eventually(
        lambda: stream_events(f"{subject_prefix}.moderation.sanction.lifted.v1")
    )
    assert [(e.data["outcome"], e.data["points_removed"]) for e in lifted] == [("reduced", 1)]
    r = await moderation.client.get(f"/queue/{appeal['entry_id']}", headers=second)
    assert r.json()["status"] == "resolved" and r.json()["decision"] == "reduced"


async def test_a_post_rejected_in_contents_review_is_appealed_here(
    launch, identities: Identities
) -> None:
    from hearth_moderation.consumers import screening
    from hearth_moderation.queue.consumers import held_sync
    from servicekit.ids import utcnow, uuid7
    from servicekit.testing.contracts import producer_envelope

    moderation = await launch(moderation_definition)
    runtime = moderation.runtime
    community, author, reviewer = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    post_id = uuid7()
    common = {"post_id": str(post_id), "community_id": str(community), "author_id": str(author)}
    submitted = producer_envelope(
        "hearth.content.post.submitted.v1",
        {
            **common,
            "title": "低价出售",
            "body": "加微信",
            "format": "text",
            "url": None,
            "submitted_at": utcnow().isoformat(),
        },
    )
    assert await screening.handle(runtime.db, runtime.tables, submitted)
    staff = identities.headers(uuid.uuid4(), "operator")
    r = await moderation.client.get(
        f"/communities/{community}/queue", params={"kind": "held"}, headers=staff
    )
    (entry,) = r.json()["items"]
    assert entry["item_id"] == str(post_id) and entry["user_id"] == str(author)
    rejected = producer_envelope(
        "hearth.content.post.rejected.v1",
        {
            **common,
            "reviewer_id": str(reviewer),
            "round": 0,
            "stage": 1,
            "reason": "advertising",
            "rejected_at": utcnow().isoformat(),
        },
    )
    assert await held_sync.handle(runtime.db, runtime.tables, rejected)
    r = await moderation.client.get(f"/queue/{entry['id']}", headers=staff)
    settled = r.json()
    assert (settled["status"], settled["decision"], settled["decided_by"]) == (
        "resolved",
        "uphold",
        str(reviewer),
    )
    r = await moderation.client.post(
        f"/queue/{entry['id']}/appeals",
        json={"text": "It was a price list for members."},
        headers=identities.headers(author),
    )
    assert r.status_code == 201, r.text
    appeal = r.json()
    assert appeal["original_actor_id"] == str(reviewer)
    r = await moderation.client.post(
        f"/appeals/{appeal['id']}/decision",
        json={"outcome": "upheld", "reason": "still advertising"},
        headers=identities.headers(reviewer, "operator"),
    )
    assert r.status_code == 403
    r = await moderation.client.post(
        f"/appeals/{appeal['id']}/decision",
        json={"outcome": "upheld", "reason": "still advertising"},
        headers=staff,
    )
    assert r.status_code == 200 and r.json()["outcome"] == "upheld"

"""Weighted reports with members, content and moderation over real NATS: who can hide a post."""

from __future__ import annotations

import json
import uuid

from sqlmodel import select

from hearth_content.app import definition as content_definition
from hearth_members.app import definition as members_definition
from hearth_moderation.app import definition as moderation_definition
from hearth_moderation.items.models import Item
from hearth_moderation.models import Membership
from servicekit.identity import generate_keypair
from servicekit.testing.harness import Identities, eventually


async def test_unreliable_reporter_cannot_hide_alone_three_reliable_can(
    launch, identities: Identities, stream_events, subject_prefix: str
) -> None:
    members = await launch(members_definition)
    content = await launch(content_definition)
    pem, _ = generate_keypair()  # Ed25519, PEM: signs case bundles
    moderation = await launch(moderation_definition, evidence_signing_key=pem)
    staff = identities.headers(uuid.uuid4(), "operator")
    r = await members.client.post(
        "/communities", json={"name": "Makers", "kind": "customer"}, headers=staff
    )
    community_id = r.json()["id"]
    author, bad, reader = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    reliable = [uuid.uuid4() for _ in range(3)]
    targets = [uuid.uuid4() for _ in range(5)]
    everyone = [author, bad, reader, *reliable, *targets]
    for person in everyone:
        r = await members.client.post(
            f"/communities/{community_id}/members", headers=identities.headers(person)
        )
        assert r.status_code == 201, r.text

    async def moderation_knows_all() -> bool:
        async with moderation.runtime.db.session() as session:
            rows = (
                await session.exec(
                    select(Membership).where(Membership.community_id == uuid.UUID(community_id))
                )
            ).all()
            return len(rows) >= len(everyone)

    await eventually(moderation_knows_all)
    r = await moderation.client.patch(
        f"/communities/{community_id}/reports/policy", json={"hide_threshold": 4.0}, headers=staff
    )
    assert r.status_code == 200, r.text

    async def report(who: uuid.UUID, item_type: str, item_id: uuid.UUID | str, reason="spam"):
        r = await moderation.client.post(
            f"/communities/{community_id}/reports",
            json={"item_type": item_type, "item_id": str(item_id), "reason": reason},
            headers=identities.headers(who),
        )
        assert r.status_code == 201, r.text
        return r.json()

    async def decide(entry_id: str, decision: str) -> dict:
        r = await moderation.client.post(
            f"/queue/{entry_id}/decision",
            json={"decision": decision, "note": "checked", "author_reason": "see the rules"},
            headers=staff,
        )
        assert r.status_code == 200, r.text
        return r.json()

    # Track records: the bad reporter's three reports are rejected, the reliable ones upheld.
    for target in targets[:3]:
        entry = (await report(bad, "member", target))["entry_id"]
        await decide(entry, "dismiss")
    for target in targets[3:]:
        entries = {(await report(who, "member", target))["entry_id"] for who in reliable}
        (entry,) = entries  # one queue entry per item, whoever reports it
        await decide(entry, "uphold")

    # Two published posts.
    async def publish(title: str) -> str:
        r = await content.client.post(
            f"/communities/{community_id}/posts",
            json={"title": title, "body": "A perfectly fine post.", "format": "text"},
            headers=identities.headers(author),
        )
        assert r.status_code == 201, r.text
        return r.json()["id"]

    first, second = await publish("First"), await publish("Second")

    async def readable(post_id: str) -> bool:
        r = await content.client.get(f"/posts/{post_id}", headers=identities.headers(reader))
        return r.status_code == 200 and r.json()["status"] == "published"

    async def known(post_id: str) -> bool:
        async with moderation.runtime.db.session() as session:
            return await session.get(Item, ("post", uuid.UUID(post_id))) is not None

    for post_id in (first, second):
        await eventually(lambda p=post_id: readable(p))
        await eventually(lambda p=post_id: known(p))

    # The mostly-rejected reporter alone does not hide the first post.
    filed = await report(bad, "post", first, "harassment")
    assert filed["weight"] < 0.5 and filed["weight_detail"]["rejected"] == 3
    r = await moderation.client.get(f"/queue/{filed['entry_id']}", headers=staff)
    assert r.json()["hidden"] is False and r.json()["score"] == filed["weight"]

    # Three reliable reporters hide the second: not after two, after the third.
    entry = None
    for n, who in enumerate(reliable):
        filed = await report(who, "post", second)
        assert filed["weight_detail"]["upheld"] == 2 and filed["weight"] == 1.5
        r = await moderation.client.get(f"/queue/{filed['entry_id']}", headers=staff)
        entry = r.json()
        assert entry["hidden"] is (n == 2), entry
    assert entry is not None
    assert [d["reporter_id"] for d in entry["score_detail"]] == [str(w) for w in reliable]
    assert entry["score"] == 4.5 and entry["age_seconds"] >= 0 and entry["overdue"] is False

    async def hidden() -> bool:
        return not await readable(second)

    await eventually(hidden)
    assert await readable(first)
    hidden_events = await stream_events(f"{subject_prefix}.moderation.item.hidden.v1")
    assert [e.data["item_id"] for e in hidden_events] == [second]
    assert hidden_events[0].data["user_id"] == str(author)

    # The case bundle carries the reports (with their weights), the decision entry, and the
    # evidence snapshot taken when the post was hidden.
    r = await moderation.client.post(
        f"/communities/{community_id}/cases/post/{second}/export", headers=staff
    )
    assert r.status_code == 200, r.text
    sections = json.loads(r.json()["bundle"])["sections"]
    assert [x["reporter_id"] for x in sections["reports"]] == [str(w) for w in reliable]
    assert [x["id"] for x in sections["decisions"]] == [entry["id"]]
    snapshots = [
        json.loads(e["snapshot"]) if isinstance(e["snapshot"], str) else e["snapshot"]
        for e in sections["evidence"]
    ]
    actions = [snap["action"] for snap in snapshots]
    assert "hearth.moderation.item.hidden.v1" in actions, actions

    # A moderator dismisses the reports: the post is shown again and the reporters are told.
    await decide(entry["id"], "dismiss")
    await eventually(lambda: readable(second))

    async def told() -> list:
        r = await members.client.get("/me/notifications", headers=identities.headers(reliable[0]))
        return [n for n in r.json()["items"] if n["kind"] == "report.rejected"]

    assert await eventually(told)
    # ... and the outcome fed their weight: a fourth report weighs less than 1.5 now.
    again = await report(reliable[0], "post", first)
    assert again["weight_detail"]["rejected"] == 1 and again["weight"] < 1.5


async def test_queue_refuses_members_and_claims_are_exclusive(
    launch, identities: Identities
) -> None:
    members = await launch(members_definition)
    moderation = await launch(moderation_definition)
    staff = identities.headers(uuid.uuid4(), "operator")
    r = await members.client.post(
        "/communities", json={"name": "Makers", "kind": "customer"}, headers=staff
    )
    community_id = r.json()["id"]
    reporter, target = uuid.uuid4(), uuid.uuid4()
    for person in (reporter, target):
        await members.client.post(
            f"/communities/{community_id}/members", headers=identities.headers(person)
        )

    async def ready() -> bool:
        async with moderation.runtime.db.session() as session:
            return await session.get(Membership, (uuid.UUID(community_id), target)) is not None

    await eventually(ready)
    await eventually(lambda: _has(moderation, community_id, reporter))
    r = await moderation.client.post(
        f"/communities/{community_id}/reports",
        json={"item_type": "member", "item_id": str(target), "reason": "other"},
        headers=identities.headers(reporter),
    )
    assert r.status_code == 422  # `other` needs a text
    r = await moderation.client.post(
        f"/communities/{community_id}/reports",
        json={"item_type": "member", "item_id": str(target), "reason": "other", "text": "rude"},
        headers=identities.headers(reporter),
    )
    assert r.status_code == 201
    entry_id = r.json()["entry_id"]
    r = await moderation.client.post(
        f"/communities/{community_id}/reports",
        json={"item_type": "member", "item_id": str(target), "reason": "spam"},
        headers=identities.headers(reporter),
    )
    assert r.status_code == 409
    # A member sees no queue and cannot decide.
    r = await moderation.client.get(
        f"/communities/{community_id}/queue", headers=identities.headers(reporter)
    )
    assert r.status_code == 403
    r = await moderation.client.post(
        f"/queue/{entry_id}/decision",
        json={"decision": "uphold"},
        headers=identities.headers(reporter),
    )
    assert r.status_code == 403
    # One moderator claims; another's claim is refused.
    first, second = staff, identities.headers(uuid.uuid4(), "operator")
    assert (
        await moderation.client.post(f"/queue/{entry_id}/claim", headers=first)
    ).status_code == 200
    assert (
        await moderation.client.post(f"/queue/{entry_id}/claim", headers=second)
    ).status_code == 409
    r = await moderation.client.get(
        f"/communities/{community_id}/queue", params={"kind": "report"}, headers=second
    )
    assert [e["id"] for e in r.json()["items"]] == [entry_id]
    # Bulk: one decided, one unknown.
    r = await moderation.client.post(
        f"/communities/{community_id}/queue/decisions",
        json={"entry_ids": [entry_id, str(uuid.uuid4())], "decision": "uphold"},
        headers=first,
    )
    assert r.status_code == 200, r.text
    assert r.json()["decided"] == [entry_id] and len(r.json()["failed"]) == 1


async def _has(moderation, community_id: str, user_id: uuid.UUID) -> bool:
    async with moderation.runtime.db.session() as session:
        return await session.get(Membership, (uuid.UUID(community_id), user_id)) is not None


async def test_concurrent_reports_make_one_entry_and_hide_once(
    launch, identities: Identities
) -> None:
    import asyncio

    from sqlalchemy import func

    from hearth_moderation.consumers import memberships
    from hearth_moderation.items.consumers import items
    from hearth_moderation.queue.models import QueueEntry
    from servicekit.ids import utcnow, uuid7
    from servicekit.testing.contracts import producer_envelope
    from servicekit.testing.membership import Snapshots

    moderation = await launch(moderation_definition)
    runtime = moderation.runtime
    community, author = uuid.uuid4(), uuid.uuid4()
    reporters = [uuid.uuid4() for _ in range(6)]
    snaps = Snapshots()
    for user in (author, *reporters):
        assert await memberships.handle(
            runtime.db, runtime.tables, snaps.membership(community, user)
        )
    post_id = uuid7()
    submitted = producer_envelope(
        "hearth.content.post.submitted.v1",
        {
            "post_id": str(post_id),
            "community_id": str(community),
            "author_id": str(author),
            "title": "t",
            "body": "b",
            "format": "text",
            "url": None,
            "submitted_at": utcnow().isoformat(),
        },
    )
    assert await items.handle(runtime.db, runtime.tables, submitted)

    async def report(who: uuid.UUID) -> int:
        r = await moderation.client.post(
            f"/communities/{community}/reports",
            json={"item_type": "post", "item_id": str(post_id), "reason": "spam"},
            headers=identities.headers(who),
        )
        return r.status_code

    statuses = await asyncio.gather(*(report(w) for w in reporters))
    assert sorted(statuses) == [201] * len(reporters), statuses
    outbox = runtime.tables.outbox
    async with runtime.db.session() as session:
        entries = (await session.exec(select(QueueEntry))).all()
        hidden = (
            await session.execute(
                select(func.count()).where(
                    outbox.c.event_type == "hearth.moderation.item.hidden.v1"
                )
            )
        ).scalar_one()
    assert len(entries) == 1 and entries[0].score == 6.0 and entries[0].hidden
    assert hidden == 1

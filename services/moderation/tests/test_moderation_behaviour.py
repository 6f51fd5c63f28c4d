"""Comments are screened like posts; flood limits, duplicates across communities, newcomers."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlmodel import select

from hearth_moderation.consumers import memberships, screening
from hearth_moderation.models import Screening
from servicekit.events import Envelope
from servicekit.ids import utcnow, uuid7
from servicekit.testing.contracts import producer_envelope
from servicekit.testing.harness import Identities, RunningService
from servicekit.testing.membership import Snapshots


def comment(community_id: uuid.UUID, author: uuid.UUID, body: str, **extra) -> Envelope:
    """content.comment.created.v1, checked against content's own event model."""
    return producer_envelope(
        "hearth.content.comment.created.v1",
        {
            "comment_id": str(extra.pop("comment_id", uuid7())),
            "post_id": str(uuid7()),
            "community_id": str(community_id),
            "author_id": str(author),
            "body": body,
            "created_at": utcnow().isoformat(),
        },
    )


def post(community_id: uuid.UUID, author: uuid.UUID, body: str) -> Envelope:
    """content.post.submitted.v1, checked against content's own event model."""
    post_id = uuid7()
    return producer_envelope(
        "hearth.content.post.submitted.v1",
        {
            "post_id": str(post_id),
            "community_id": str(community_id),
            "author_id": str(author),
            "title": "A post",
            "body": body,
            "format": "text",
            "url": None,
            "submitted_at": utcnow().isoformat(),
        },
        subject=str(post_id),
    )


async def deliver(service: RunningService, envelope: Envelope) -> Screening:
    assert await screening.handle(service.runtime.db, service.runtime.tables, envelope)
    target = envelope.data.get("comment_id") or envelope.data["post_id"]
    async with service.runtime.db.session() as session:
        row = (
            await session.exec(select(Screening).where(Screening.target_id == uuid.UUID(target)))
        ).one()
        return row


async def rules(service: RunningService, identities: Identities, community_id, body: dict) -> None:
    r = await service.client.put(
        f"/communities/{community_id}/rules",
        json={"rules": body},
        headers=identities.headers(None, "operator"),
    )
    assert r.status_code == 201, r.text


async def test_comments_are_screened_and_edits_screened_again(moderation: RunningService) -> None:
    community, author = uuid.uuid4(), uuid.uuid4()
    first = comment(community, author, "Nice write-up, thanks.")
    row = await deliver(moderation, first)
    assert (row.target_type, row.decision, row.round) == ("comment", "approved", 0)
    # Redelivered: screened once (the inbox has it).
    assert not await screening.handle(moderation.runtime.db, moderation.runtime.tables, first)
    edited = producer_envelope(
        "hearth.content.comment.edited.v1",
        {
            "comment_id": first.data["comment_id"],
            "post_id": first.data["post_id"],
            "community_id": str(community),
            "author_id": str(author),
            "body": "Actually: 加微信 for a discount code",
            "edited_at": utcnow().isoformat(),
        },
    )
    row = await deliver(moderation, edited)
    assert (row.decision, row.round, row.reasons) == ("held", 1, ["banned_term:advertising"])
    outbox = moderation.runtime.tables.outbox
    async with moderation.runtime.db.session() as session:
        events = (
            await session.execute(
                select(outbox.c.data)
                .where(outbox.c.event_type == "hearth.moderation.screening.completed.v1")
                .order_by(outbox.c.seq)
            )
        ).all()
    verdicts = [(e.data["target_type"], e.data["decision"]) for e in events]
    assert verdicts == [("comment", "approved"), ("comment", "held")]


async def test_flood_limit_holds_the_item_over_the_limit(
    moderation: RunningService, identities: Identities
) -> None:
    community, author, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await rules(moderation, identities, community, {"flood": {"max_items": 3, "per_seconds": 60}})
    decisions = [
        (await deliver(moderation, comment(community, author, f"hi {n}"))).decision
        for n in range(4)
    ]
    assert decisions == ["approved", "approved", "approved", "held"]
    held = await deliver(moderation, post(community, author, "and a post"))
    assert held.decision == "held" and held.reasons == ["flood"]
    assert held.hits[0]["kind"] == "flood"
    # Another member is not limited by the first one's items.
    assert (await deliver(moderation, comment(community, other, "hello"))).decision == "approved"


async def test_the_same_text_in_another_community_is_held(
    moderation: RunningService, identities: Identities
) -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    spam = "Join our amazing group for daily crypto signals today"
    await rules(moderation, identities, b, {"duplicates": {"window_seconds": 600}})
    assert (await deliver(moderation, comment(a, uuid.uuid4(), spam))).decision == "approved"
    # The same words, spaced and cased differently, in a community with the rule: held.
    row = await deliver(moderation, comment(b, uuid.uuid4(), spam.upper().replace(" ", "  ")))
    assert row.decision == "held" and row.reasons == ["duplicate"]
    # Short texts ("thanks!") never count as duplicates; a community without the rule is free.
    assert (await deliver(moderation, comment(b, uuid.uuid4(), "thanks!"))).decision == "approved"
    await deliver(moderation, comment(a, uuid.uuid4(), "thanks!"))
    assert (await deliver(moderation, comment(b, uuid.uuid4(), "thanks!"))).decision == "approved"
    assert (await deliver(moderation, comment(c, uuid.uuid4(), spam))).decision == "approved"


async def test_newcomers_and_low_tiers_are_screened_more_strictly(
    moderation: RunningService, identities: Identities
) -> None:
    community = uuid.uuid4()
    newcomer, veteran, low_tier = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    snaps = Snapshots()
    snaps.joined[(community, veteran)] = utcnow() - timedelta(days=30)
    snaps.joined[(community, low_tier)] = utcnow() - timedelta(days=30)
    runtime = moderation.runtime
    for user, tier in ((newcomer, "regular"), (veteran, "core"), (low_tier, "probation")):
        assert await memberships.handle(
            runtime.db, runtime.tables, snaps.membership(community, user, tier=tier)
        )
    await rules(
        moderation,
        identities,
        community,
        {
            "words": [{"term": "crypto", "action": "flag"}],
            "newcomers": {
                "joined_within_days": 7,
                "tiers": ["probation"],
                "detectors": ["link"],
                "action": "require_approval",
            },
        },
    )
    link = "see https://spam.example/offer"
    assert (await deliver(moderation, comment(community, veteran, link))).decision == "approved"
    row = await deliver(moderation, comment(community, newcomer, link))
    assert row.decision == "held" and row.reasons == ["newcomer:link"]
    assert (await deliver(moderation, comment(community, low_tier, link))).decision == "held"
    # A milder hit (flag) is raised to the newcomer action for them, not for a veteran.
    assert (await deliver(moderation, comment(community, veteran, "crypto talk"))).verdict == "flag"
    row = await deliver(moderation, comment(community, newcomer, "crypto talk"))
    assert row.verdict == "require_approval" and row.decision == "held"

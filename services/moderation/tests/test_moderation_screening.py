"""Screening submitted posts: once per post however often announced, and staff-only reading."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from hearth_moderation.app import definition
from hearth_moderation.consumers import screening
from hearth_moderation.models import Screening
from servicekit.events import Envelope
from servicekit.ids import utcnow, uuid7
from servicekit.messaging import ensure_stream, stream_config
from servicekit.testing.harness import Identities, RunningService, eventually

PROBLEM = "application/problem+json"
SUBMITTED = "hearth.content.post.submitted.v1"
COMPLETED = "hearth.moderation.screening.completed.v1"


def submitted(
    community_id: uuid.UUID, title: str, body: str = "", post_id: uuid.UUID | None = None
) -> Envelope:
    """A post.submitted event as content publishes it."""
    post_id = post_id or uuid7()
    return Envelope(
        id=uuid7(),
        source="/hearth/content",
        type=SUBMITTED,
        time=utcnow(),
        subject=str(post_id),
        data={
            "post_id": str(post_id),
            "community_id": str(community_id),
            "author_id": str(uuid.uuid4()),
            "title": title,
            "body": body,
            "format": "text",
            "url": None,
            "submitted_at": utcnow().isoformat(),
        },
    )


async def deliver(service: RunningService, envelope: Envelope) -> bool:
    return await screening.handle(service.runtime.db, service.runtime.tables, envelope)


async def count(service: RunningService, stmt) -> int:
    async with service.runtime.db.session() as session:
        return (await session.execute(stmt)).scalar_one()


def completed_rows():
    return select(func.count()).where(definition.tables.outbox.c.event_type == COMPLETED)


async def test_screening_routes_and_refusals(
    moderation: RunningService, identities: Identities
) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    clean = submitted(a, "Roadmap AMA", "Ask the product team anything.")
    dirty = submitted(a, "Great deal", "Click here: 加微信 for a discount code")
    other = submitted(b, "Hello", "First post")
    for envelope in (clean, dirty, other):
        assert await deliver(moderation, envelope)
    staff = identities.headers(None, "operator")

    r = await moderation.client.get("/screenings", headers=staff)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [s["target_id"] for s in items] == [
        other.data["post_id"],
        dirty.data["post_id"],
        clean.data["post_id"],
    ]
    held = items[1]
    assert held["decision"] == "held" and held["target_type"] == "post"
    assert held["reasons"] == ["banned_term:advertising"]
    assert held["matched_terms"] == ["click here", "discount code", "加微信"]
    assert held["community_id"] == str(a) and held["source_event_id"] == str(dirty.id)
    assert items[0]["decision"] == "approved" and items[0]["reasons"] == []

    r = await moderation.client.get(f"/screenings?community_id={a}", headers=staff)
    assert len(r.json()["items"]) == 2
    r = await moderation.client.get(
        f"/screenings?community_id={a}&decision=held", headers=identities.headers(None, "admin")
    )
    assert [s["id"] for s in r.json()["items"]] == [held["id"]]
    first = await moderation.client.get("/screenings?limit=2", headers=staff)
    assert first.json()["next_cursor"]
    rest = await moderation.client.get(
        f"/screenings?limit=2&cursor={first.json()['next_cursor']}", headers=staff
    )
    assert [s["id"] for s in rest.json()["items"]] == [items[2]["id"]]

    r = await moderation.client.get(f"/screenings/{held['id']}", headers=staff)
    assert r.status_code == 200 and r.json() == held
    r = await moderation.client.get(f"/screenings/{uuid.uuid4()}", headers=staff)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM

    async with moderation.runtime.db.session() as session:
        [event] = (
            (
                await session.execute(
                    select(definition.tables.outbox.c.data).where(
                        definition.tables.outbox.c.ce_subject == dirty.data["post_id"]
                    )
                )
            )
            .scalars()
            .all()
        )
    assert event == {
        "screening_id": held["id"],
        "target_type": "post",
        "target_id": dirty.data["post_id"],
        "community_id": str(a),
        "author_id": dirty.data["author_id"],
        "decision": "held",
        "reasons": ["banned_term:advertising"],
        "screened_at": event["screened_at"],
        # Compatible additions: the verdict, the rule-set version that decided, every hit.
        "verdict": "require_approval",
        "rule_set_version": 0,
        "hits": event["hits"],
        "tags": [],
        "censored_text": None,
    }
    assert {h["reason"] for h in event["hits"]} == {"banned_term:advertising"}
    assert sorted(h["text"].casefold() for h in event["hits"]) == held["matched_terms"]

    # Refusals: members (even of the community) may not read screenings.
    member = identities.headers(uuid.uuid4())
    for path in ("/screenings", f"/screenings?community_id={a}", f"/screenings/{held['id']}"):
        r = await moderation.client.get(path, headers=member)
        assert r.status_code == 403 and r.headers["content-type"] == PROBLEM, path
        r = await moderation.client.get(path)
        assert r.status_code == 401, path
    r = await moderation.client.get("/screenings?community_id=nope", headers=staff)
    assert r.status_code == 422
    r = await moderation.client.get("/screenings?decision=maybe", headers=staff)
    assert r.status_code == 422
    r = await moderation.client.get("/screenings/nope", headers=staff)
    assert r.status_code == 422


async def test_same_submission_delivered_twice_makes_one_screening(
    moderation: RunningService, nats_client, subject_prefix: str, stream_events
) -> None:
    envelope = submitted(uuid.uuid4(), "Meetup", "See you on Friday")
    post_id = envelope.data["post_id"]
    js = nats_client.jetstream()
    await ensure_stream(js, stream_config(subject_prefix, "content", max_age_days=1.0, replicas=1))
    subject = f"{subject_prefix}.content.post.submitted.v1"
    await js.publish(subject, envelope.body(), headers=envelope.headers())
    ack = await js.publish(subject, envelope.body(), headers=envelope.headers())
    assert ack.duplicate  # JetStream's duplicate window drops the same Nats-Msg-Id
    # The same event after the duplicate window (or re-published by a relay that crashed)...
    await js.publish(
        subject, envelope.body(), headers={**envelope.headers(), "Nats-Msg-Id": str(uuid7())}
    )
    # ...and the same post announced again under a new event id.
    again = submitted(uuid.uuid4(), "Meetup", post_id=uuid.UUID(post_id))
    await js.publish(subject, again.body(), headers=again.headers())

    stats = moderation.runtime.consumers[0].stats

    async def all_three_handled() -> bool:
        return stats["handled"] + stats["duplicates"] == 3

    await eventually(all_three_handled)
    assert stats["duplicates"] == 1  # the inbox absorbed the redelivered event id
    assert not await deliver(moderation, envelope)  # and a direct second run too
    assert await count(moderation, select(func.count()).select_from(Screening)) == 1
    assert await count(moderation, completed_rows()) == 1

    async def announced() -> list:
        return await stream_events(f"{subject_prefix}.moderation.screening.completed.v1")

    [event] = await eventually(announced)
    assert event.type == COMPLETED and event.source == "/hearth/moderation"
    assert event.data["target_id"] == post_id and event.data["decision"] == "approved"

    # A resubmission after a rejection is a new round: screened again, announced again, once.
    revised = submitted(uuid.uuid4(), "Meetup", "加微信 for a discount", post_id=uuid.UUID(post_id))
    revised = revised.model_copy(update={"data": {**revised.data, "round": 1}})
    assert await deliver(moderation, revised)
    assert await deliver(moderation, revised.model_copy(update={"id": uuid7()}))  # re-announced
    assert await count(moderation, select(func.count()).select_from(Screening)) == 1
    assert await count(moderation, completed_rows()) == 2
    async with moderation.runtime.db.session() as session:
        row = (await session.execute(select(Screening))).scalar_one()
    assert (row.round, row.decision) == (1, "held")


async def test_banned_terms_come_from_settings(launch, identities: Identities) -> None:
    service = await launch(definition, banned_terms={"spam": ["zzfoo", "刷屏"]})
    community = uuid.uuid4()
    assert await deliver(service, submitted(community, "ZZFOO deals"))
    assert await deliver(service, submitted(community, "别刷屏"))
    assert await deliver(service, submitted(community, "you idiot"))  # defaults were replaced
    r = await service.client.get(
        f"/screenings?community_id={community}", headers=identities.headers(None, "operator")
    )
    decisions = [(s["decision"], s["reasons"]) for s in r.json()["items"]]
    assert decisions == [
        ("approved", []),
        ("held", ["banned_term:spam"]),
        ("held", ["banned_term:spam"]),
    ]

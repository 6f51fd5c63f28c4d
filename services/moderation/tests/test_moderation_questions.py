"""Events' Q&A questions are screened like comments: `question.asked.v1` (built by events' own
event model) goes through moderation__screening, whose verdict says `target_type` question; a
held question opens a queue entry, and the items read model keeps the text as asked."""

from __future__ import annotations

import uuid

from sqlmodel import select

from hearth_moderation.consumers import QuestionAskedV1, screening
from hearth_moderation.items.models import Item
from hearth_moderation.models import Screening
from hearth_moderation.queue.models import QueueEntry
from servicekit.events import Envelope
from servicekit.ids import utcnow, uuid7
from servicekit.testing.contracts import contract, producer_envelope
from servicekit.testing.harness import Identities, RunningService

# Moderation censors each character with a full-width asterisk by default.
STARS = "\uff0a"

ASKED = "hearth.events.question.asked.v1"
SCREENED = "hearth.moderation.screening.completed.v1"


def asked(community: uuid.UUID, text: str, **extra: object) -> Envelope:
    """events.question.asked.v1, checked against events' own event model."""
    activity = uuid7()
    return producer_envelope(
        ASKED,
        {
            "question_id": str(extra.get("question_id", uuid7())),
            "activity_id": str(activity),
            "community_id": str(community),
            "author_id": str(uuid.uuid4()),
            "text": text,
            "asked_at": utcnow().isoformat(),
            "anonymous": True,
        },
        subject=str(activity),
    )


async def test_questions_are_screened_held_censored_and_queued(
    moderation: RunningService, identities: Identities
) -> None:
    community = uuid.uuid4()
    r = await moderation.client.put(
        f"/communities/{community}/rules",
        json={
            "rules": {
                "words": [
                    {"term": "giveaway", "action": "require_approval", "reason": "promo"},
                    {"term": "darn", "action": "censor"},
                ]
            }
        },
        headers=identities.headers(None, "operator"),
    )
    assert r.status_code == 201, r.text
    db, tables = moderation.runtime.db, moderation.runtime.tables

    held = asked(community, "Is there a giveaway after the talk?")
    clean = asked(community, "Will the slides be shared?")
    censored = asked(community, "Why is the darn room so cold?")
    for envelope in (held, clean, censored):
        assert await screening.handle(db, tables, envelope)
    # Redelivered, or announced again under another event id: screened once.
    assert not await screening.handle(db, tables, held)
    again = producer_envelope(ASKED, held.data)
    assert await screening.handle(db, tables, again)

    async with db.session() as session:
        rows = {
            str(s.target_id): s
            for s in (
                await session.exec(select(Screening).where(Screening.community_id == community))
            ).all()
        }
        entries = (
            await session.exec(select(QueueEntry).where(QueueEntry.community_id == community))
        ).all()
        item = await session.get(Item, ("question", uuid.UUID(held.data["question_id"])))
        outbox = tables.outbox
        events = [
            e.data
            for e in (
                await session.execute(select(outbox.c.data).where(outbox.c.event_type == SCREENED))
            ).all()
            if e.data["community_id"] == str(community)
        ]
    h, c, x = (rows[e.data["question_id"]] for e in (held, clean, censored))
    assert (h.target_type, h.decision, h.verdict, h.reasons) == (
        "question",
        "held",
        "require_approval",
        ["promo"],
    )
    assert (c.decision, c.verdict) == ("approved", "allow")
    assert (x.decision, x.verdict) == ("approved", "censor")
    assert [(e.kind, e.item_type, str(e.item_id)) for e in entries] == [
        ("held", "question", held.data["question_id"])
    ]
    assert item is not None and item.text == held.data["text"]

    # One verdict per question, target_type question; the censored text is the question's own.
    assert sorted(e["target_id"] for e in events) == sorted(rows)
    assert {e["target_type"] for e in events} == {"question"}
    [cut] = [e for e in events if e["target_id"] == censored.data["question_id"]]
    assert cut["censored_text"] == f"Why is the {STARS * 4} room so cold?"


def test_moderations_reader_of_questions_names_only_fields_events_sends() -> None:
    producer = contract(ASKED).model_fields
    assert set(QuestionAskedV1.model_fields) <= set(producer)
    for name, field in QuestionAskedV1.model_fields.items():
        if field.is_required():
            assert producer[name].is_required(), name

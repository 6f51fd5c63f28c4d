"""Moderation's verdicts and queue decisions on Q&A questions, applied by events__moderation.

Every verdict and decision is built by moderation's own event models
(servicekit.testing.contracts), so a change to moderation's payloads breaks this test first.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from hearth_events.questions.models import Question
from hearth_events.questions.moderation import (
    DEFAULT_REJECTION,
    AppealDecidedFact,
    CaseDecidedFact,
    ScreeningCompletedFact,
    screening,
)
from servicekit.ids import utcnow, uuid7
from servicekit.testing.contracts import contract, producer_envelope
from servicekit.testing.harness import Identities, RunningService

# Moderation censors each character with a full-width asterisk by default.
STARS = "\uff0a"

OPERATOR = uuid.UUID("00000000-0000-7000-8000-000000000001")
SCREENED = "hearth.moderation.screening.completed.v1"
CASE = "hearth.moderation.case.decided.v1"
APPEAL = "hearth.moderation.appeal.decided.v1"


def verdict(question: str, community: str, **fields: Any) -> Any:
    data = {
        "screening_id": str(uuid7()),
        "target_type": "question",
        "target_id": question,
        "community_id": community,
        "decision": "approved",
        "reasons": [],
        "screened_at": utcnow().isoformat(),
        **fields,
    }
    return producer_envelope(SCREENED, data)


def case(question: str, community: str, decision: str, entry: str, **fields: Any) -> Any:
    data = {
        "entry_id": entry,
        "community_id": community,
        "kind": "held",
        "item_type": "question",
        "item_id": question,
        "user_id": None,
        "actor_id": str(uuid.uuid4()),
        "decision": decision,
        "decided_at": utcnow().isoformat(),
        **fields,
    }
    return producer_envelope(CASE, data)


def appeal(entry: str, community: str, outcome: str) -> Any:
    return producer_envelope(
        APPEAL,
        {
            "appeal_id": str(uuid7()),
            "community_id": community,
            "user_id": str(uuid.uuid4()),
            "actor_id": str(uuid.uuid4()),
            "target_type": "decision",
            "target_id": entry,
            "outcome": outcome,
            "reason": "ok",
            "decided_at": utcnow().isoformat(),
        },
    )


async def test_verdicts_hold_censor_and_decisions_show_hide_restore(
    events: RunningService, identities: Identities, directory: Any
) -> None:
    community_id, [asker, other] = await directory.community(events, members=2)
    community = str(community_id)
    starts = utcnow() + timedelta(days=1)
    r = await events.client.post(
        "/activities",
        json={
            "community_id": community,
            "title": "AMA",
            "kind": "lecture",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=1)).isoformat(),
            "capacity": 50,
        },
        headers=identities.headers(OPERATOR, "operator"),
    )
    assert r.status_code == 201, r.text
    url = f"/activities/{r.json()['id']}/questions"
    host = identities.headers(OPERATOR, "operator")
    db, tables = events.runtime.db, events.runtime.tables

    async def ask(text: str) -> str:
        r = await events.client.post(url, json={"text": text}, headers=identities.headers(asker))
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def listing(headers: dict[str, str]) -> dict[str, dict]:
        r = await events.client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        return {q["id"]: q for q in r.json()}

    held, clean, cut = await ask("Any giveaway?"), await ask("Slides?"), await ask("Darn cold?")
    hold = verdict(held, community, decision="held", reasons=["promo"], verdict="require_approval")
    assert await screening.handle(db, tables, hold)
    assert await screening.handle(db, tables, verdict(clean, community))
    assert await screening.handle(
        db, tables, verdict(cut, community, verdict="censor", censored_text=f"{STARS * 4} cold?")
    )
    # Held: out of the public list; its author and the host see it with its status and reasons.
    public, mine, hosts = (
        await listing(identities.headers(other)),
        await listing(identities.headers(asker)),
        await listing(host),
    )
    assert held not in public and set(public) == {clean, cut}
    assert (mine[held]["visibility"], mine[held]["hold_reasons"]) == ("held", ["promo"])
    assert hosts[held]["visibility"] == "held"
    # Censored: the text replaced for everyone, the text as asked kept.
    assert public[cut]["text"] == f"{STARS * 4} cold?" and public[clean]["text"] == "Slides?"
    async with db.session() as session:
        row = await session.get(Question, uuid.UUID(cut))
        assert row is not None and row.original_text == "Darn cold?"
    # A held question takes no votes; a later verdict does not overturn the first.
    r = await events.client.put(f"/questions/{held}/vote", headers=identities.headers(other))
    assert r.status_code == 404
    assert await screening.handle(db, tables, verdict(held, community))
    assert held not in await listing(identities.headers(other))

    # The queue approves it: public. Another held question is rejected: hidden, reason shown to
    # its author only; an appeal lifting that decision shows it again.
    assert await screening.handle(db, tables, case(held, community, "dismiss", str(uuid7())))
    assert (await listing(identities.headers(other)))[held]["visibility"] == "visible"
    rejected = await ask("Buy my stuff?")
    assert await screening.handle(
        db, tables, verdict(rejected, community, decision="held", verdict="block")
    )
    entry = str(uuid7())
    no = case(rejected, community, "uphold", entry, author_reason="No selling here.")
    assert await screening.handle(db, tables, no)
    assert rejected not in await listing(identities.headers(other))
    mine = await listing(identities.headers(asker))
    assert (mine[rejected]["visibility"], mine[rejected]["rejection_reason"]) == (
        "hidden",
        "No selling here.",
    )
    assert await screening.handle(db, tables, appeal(entry, community, "upheld"))
    assert rejected not in await listing(identities.headers(other))
    assert await screening.handle(db, tables, appeal(entry, community, "lifted"))
    shown = (await listing(identities.headers(other)))[rejected]
    assert shown["visibility"] == "visible" and shown["rejection_reason"] is None

    # Without a reason, the author still reads one; verdicts on posts are not events'.
    bare = await ask("Cheap tickets?")
    assert await screening.handle(db, tables, verdict(bare, community, decision="held"))
    assert await screening.handle(db, tables, case(bare, community, "uphold", str(uuid7())))
    assert (await listing(identities.headers(asker)))[bare]["rejection_reason"] == (
        DEFAULT_REJECTION
    )
    other_target = verdict(str(uuid7()), community, decision="held")
    other_target.data["target_type"] = "post"
    assert await screening.handle(db, tables, other_target)


def test_events_readers_name_only_fields_moderation_sends() -> None:
    for reader, ce_type in (
        (ScreeningCompletedFact, SCREENED),
        (CaseDecidedFact, CASE),
        (AppealDecidedFact, APPEAL),
    ):
        producer = contract(ce_type).model_fields
        assert set(reader.model_fields) <= set(producer), ce_type
        for name, field in reader.model_fields.items():
            if field.is_required():
                assert producer[name].is_required(), (ce_type, name)

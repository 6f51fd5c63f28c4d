"""Moderation's queue decisions and appeals on held items, applied by content__moderation_decisions.

Every decision here is built by moderation's own event models (servicekit.testing.contracts), so
a change to `case.decided.v1` or `appeal.decided.v1` breaks this test, not production.
"""

from __future__ import annotations

import uuid
from typing import Any

from hearth_content.decisions import (
    DEFAULT_REJECTION,
    AppealDecidedFact,
    CaseDecidedFact,
    decisions,
)
from hearth_content.hiding import hiding
from hearth_content.screening import MODERATION_EDITOR
from servicekit.ids import utcnow, uuid7
from servicekit.testing.contracts import contract, producer_envelope
from servicekit.testing.harness import Identities, RunningService, eventually

# Moderation censors each character with a full-width asterisk by default.
STARS = "\uff0a"

CASE = "hearth.moderation.case.decided.v1"
APPEAL = "hearth.moderation.appeal.decided.v1"
POST = {"title": "Offer", "body": "Call me for a deal.", "format": "text"}


def _case(
    community: str,
    item: str,
    decision: str,
    *,
    kind: str = "held",
    item_type: str = "post",
    reason: str | None = None,
    entry: str | None = None,
) -> Any:
    return producer_envelope(
        CASE,
        {
            "entry_id": entry or str(uuid7()),
            "community_id": community,
            "kind": kind,
            "item_type": item_type,
            "item_id": item,
            "user_id": None,
            "actor_id": str(uuid.uuid4()),
            "decision": decision,
            "author_reason": reason,
            "decided_at": utcnow().isoformat(),
        },
    )


def _appeal(community: str, entry: str, outcome: str) -> Any:
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
            "reason": "fair enough",
            "decided_at": utcnow().isoformat(),
        },
    )


async def _held(
    content: RunningService, feed: Any, identities: Identities, community: str, author: uuid.UUID
) -> str:
    r = await content.client.post(
        f"/communities/{community}/posts", json=POST, headers=identities.headers(author)
    )
    assert r.status_code == 201, r.text
    post = r.json()["id"]
    assert await feed.verdict(post, "held", ["rule:require_approval"])
    return post


async def test_queue_approval_publishes_rejection_shows_reason_appeal_restores(
    content: RunningService,
    feed: Any,
    identities: Identities,
    stream_events: Any,
    subject_prefix: str,
) -> None:
    owner, author, reader = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    community = await feed.community(owner=owner)
    for user in (author, reader):
        await feed.member(community, user)

    async def seen(post: str, who: uuid.UUID) -> dict:
        r = await content.client.get(f"/posts/{post}", headers=identities.headers(who))
        return r.json() if r.status_code == 200 else {}

    # Approved in the queue: published, announced as usual.
    approved = await _held(content, feed, identities, community, author)
    assert (await seen(approved, author))["status"] == "held" and await seen(approved, reader) == {}
    assert await feed.deliver(decisions, _case(community, approved, "dismiss"))
    got = await seen(approved, reader)
    assert got["status"] == "published" and got["hold_reasons"] == []

    async def published_events() -> list:
        found = await stream_events(f"{subject_prefix}.content.post.published.v1")
        return [e for e in found if e.data["post_id"] == approved]

    assert len(await eventually(published_events)) == 1

    # Rejected: its author reads the reason on the post; nobody else sees it.
    rejected = await _held(content, feed, identities, community, author)
    entry = str(uuid7())
    reason = "Advertising is not allowed here."
    assert await feed.deliver(
        decisions, _case(community, rejected, "uphold", reason=reason, entry=entry)
    )
    got = await seen(rejected, author)
    assert got["status"] == "rejected" and got["rejection_reason"] == reason
    assert await seen(rejected, reader) == {}

    async def rejected_events() -> list:
        found = await stream_events(f"{subject_prefix}.content.post.rejected.v1")
        return [e for e in found if e.data["post_id"] == rejected]

    [event] = await eventually(rejected_events)
    assert event.data["reason"] == reason and event.data["stage"] == 0

    # An upheld appeal changes nothing; a lifted one restores the post.
    assert await feed.deliver(decisions, _appeal(community, entry, "upheld"))
    assert (await seen(rejected, author))["status"] == "rejected"
    assert await feed.deliver(decisions, _appeal(community, entry, "lifted"))
    got = await seen(rejected, reader)
    assert got["status"] == "published" and got["rejection_reason"] is None

    # Without a reason the author still reads one.
    bare = await _held(content, feed, identities, community, author)
    assert await feed.deliver(decisions, _case(community, bare, "uphold"))
    assert (await seen(bare, author))["rejection_reason"] == DEFAULT_REJECTION


async def test_decisions_change_only_what_they_are_about(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    owner, author, reader = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    community = await feed.community(owner=owner)
    for user in (author, reader):
        await feed.member(community, user)
    post = await _held(content, feed, identities, community, author)

    async def status() -> str:
        r = await content.client.get(f"/posts/{post}", headers=identities.headers(author))
        return r.json()["status"]

    # A report entry's decision, another community's decision: nothing changes.
    assert await feed.deliver(decisions, _case(community, post, "dismiss", kind="report"))
    assert await feed.deliver(decisions, _case(str(uuid.uuid4()), post, "dismiss"))
    assert await status() == "held"
    # The decision applies once; a later contrary one about the same post changes nothing.
    assert await feed.deliver(decisions, _case(community, post, "uphold", reason="no"))
    assert await feed.deliver(decisions, _case(community, post, "dismiss"))
    assert await status() == "rejected"

    # A published post that reports hid is not released by a held-entry decision.
    r = await content.client.post(
        f"/communities/{community}/posts", json=POST, headers=identities.headers(author)
    )
    shown = r.json()["id"]
    assert await feed.verdict(shown, "approved")
    hidden = producer_envelope(
        "hearth.moderation.item.hidden.v1",
        {
            "entry_id": str(uuid7()),
            "community_id": community,
            "item_type": "post",
            "item_id": shown,
            "user_id": None,
            "cause": "reports",
            "score": 3.0,
            "threshold": 3.0,
            "reasons": ["spam"],
            "hidden_at": utcnow().isoformat(),
        },
    )
    assert await feed.deliver(hiding, hidden)
    assert await feed.deliver(decisions, _case(community, shown, "dismiss"))
    r = await content.client.get(f"/posts/{shown}", headers=identities.headers(author))
    assert r.json()["status"] == "held" and r.json()["hold_reasons"] == ["reported"]


async def test_held_comments_are_shown_or_rejected_and_restored_by_appeal(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    owner, author, reader = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    community = await feed.community(owner=owner)
    for user in (author, reader):
        await feed.member(community, user)
    r = await content.client.post(
        f"/communities/{community}/posts", json=POST, headers=identities.headers(owner)
    )
    post = r.json()["id"]
    assert await feed.verdict(post, "approved")

    async def comment(text: str) -> str:
        r = await content.client.post(
            f"/posts/{post}/comments", json={"body": text}, headers=identities.headers(author)
        )
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
        assert await feed.verdict(cid, "held", ["rule:block"], target_type="comment")
        return cid

    async def view(who: uuid.UUID) -> dict[str, dict]:
        r = await content.client.get(f"/posts/{post}/comments", headers=identities.headers(who))
        return {c["id"]: c for c in r.json()}

    ok, bad = await comment("fine words"), await comment("bad words")
    assert (await view(reader))[ok]["body"] == ""
    assert await feed.deliver(decisions, _case(community, ok, "dismiss", item_type="comment"))
    assert (await view(reader))[ok]["body"] == "fine words"

    entry = str(uuid7())
    decided = _case(community, bad, "uphold", item_type="comment", reason="rude", entry=entry)
    assert await feed.deliver(decisions, decided)
    mine, theirs = (await view(author))[bad], (await view(reader))[bad]
    assert mine["status"] == "held" and mine["rejection_reason"] == "rude"
    assert theirs["body"] == "" and theirs["rejection_reason"] is None
    # Approving a rejected comment again needs an appeal, not a stray held-entry decision.
    assert await feed.deliver(decisions, _case(community, bad, "dismiss", item_type="comment"))
    assert (await view(reader))[bad]["body"] == ""
    assert await feed.deliver(decisions, _appeal(community, entry, "lifted"))
    assert (await view(reader))[bad]["body"] == "bad words"
    r = await content.client.get(f"/posts/{post}", headers=identities.headers(reader))
    assert r.json()["comment_count"] == 2


async def test_a_censored_post_is_announced_as_edited_by_moderation(
    content: RunningService,
    feed: Any,
    identities: Identities,
    stream_events: Any,
    subject_prefix: str,
) -> None:
    owner, author = uuid.uuid4(), uuid.uuid4()
    community = await feed.community(owner=owner)
    await feed.member(community, author)
    r = await content.client.post(
        f"/communities/{community}/posts", json=POST, headers=identities.headers(author)
    )
    post = r.json()["id"]
    verdict = producer_envelope(
        "hearth.moderation.screening.completed.v1",
        {
            "screening_id": str(uuid7()),
            "target_type": "post",
            "target_id": post,
            "community_id": community,
            "decision": "approved",
            "reasons": [],
            "screened_at": utcnow().isoformat(),
            "verdict": "censor",
            "censored_text": f"Offer\nCall me for a {STARS * 4}.",
        },
    )
    from hearth_content.consumers import screening

    assert await feed.deliver(screening, verdict)

    async def edits() -> list:
        found = await stream_events(f"{subject_prefix}.content.post.edited.v1")
        return [e for e in found if e.data["post_id"] == post]

    [edited] = await eventually(edits)
    assert edited.data["editor_id"] == str(MODERATION_EDITOR)
    assert edited.data["changed"] == ["body"] and edited.data["revision"] == 2


def test_contents_readers_of_decisions_name_only_fields_moderation_sends() -> None:
    for reader, ce_type in ((CaseDecidedFact, CASE), (AppealDecidedFact, APPEAL)):
        producer = contract(ce_type).model_fields
        assert set(reader.model_fields) <= set(producer), ce_type
        for name, field in reader.model_fields.items():
            if field.is_required():
                assert producer[name].is_required(), (ce_type, name)

"""Moderation's verdicts act fully on posts and comments: hold, censor, flag, tag.

Every verdict here is built by moderation's own event model (servicekit.testing.contracts), so a
change to moderation's payload breaks this test, not production.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from hearth_content.consumers import screening
from hearth_content.discussion.models import Comment
from hearth_content.models import Post
from hearth_content.screening import MODERATION_EDITOR
from servicekit.ids import utcnow, uuid7
from servicekit.testing.contracts import producer_envelope
from servicekit.testing.harness import Identities, RunningService

TITLE = "Weekly digest"
POST = {"title": TITLE, "body": "What happened this week in Beijing.", "format": "text"}
# Moderation censors each character with a full-width asterisk by default.
STARS = "\uff0a"
SCREENED = "hearth.moderation.screening.completed.v1"


async def _verdict(feed: Any, target: str, target_type: str = "post", **fields: Any) -> None:
    data = {
        "screening_id": str(uuid7()),
        "target_type": target_type,
        "target_id": target,
        "community_id": str(uuid.uuid4()),
        "decision": "approved",
        "reasons": [],
        "screened_at": utcnow().isoformat(),
        **fields,
    }
    assert await feed.deliver(screening, producer_envelope(SCREENED, data))


async def _submit(content: RunningService, identities: Identities, community: str, who) -> str:
    r = await content.client.post(
        f"/communities/{community}/posts", json=POST, headers=identities.headers(who)
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def test_post_verdicts_censor_flag_tag_and_hold(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    owner, author, reader = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    community = await feed.community(owner=owner)
    for user in (author, reader):
        await feed.member(community, user)

    # censor + flag + tag: published with the censored text, marked, tagged.
    post = await _submit(content, identities, community, author)
    censored = f"{TITLE}\nWhat happened this week in {STARS * 7}."
    await _verdict(
        feed,
        post,
        verdict="flag",
        censored_text=censored,
        tags=["Travel", "#Travel", "城市"],
        hits=[{"action": "censor"}, {"action": "flag"}, {"action": "tag"}],
    )
    r = await content.client.get(f"/posts/{post}", headers=identities.headers(reader))
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["status"] == "published"
    assert (
        got["body"] == f"What happened this week in {STARS * 7}."
        and "Beijing" not in got["body_html"]
    )
    assert got["flagged"] is True and got["tags"] == ["travel", "城市"]
    r = await content.client.get(
        f"/communities/{community}/flagged", headers=identities.headers(owner)
    )
    assert [p["id"] for p in r.json()["posts"]] == [post]
    r = await content.client.get(f"/posts/{post}/revisions", headers=identities.headers(author))
    [revision] = r.json()
    assert revision["editor_id"] == str(MODERATION_EDITOR)
    assert revision["changes"]["body"]["from"] == POST["body"]  # the evidence is kept
    r = await content.client.get(
        f"/communities/{community}/tags", headers=identities.headers(reader)
    )
    assert {t["slug"] for t in r.json()} >= {"travel", "城市"}
    r = await content.client.get(
        "/search", params={"q": "Beijing"}, headers=identities.headers(reader)
    )
    assert r.status_code == 200 and r.json() == []  # search has only the censored text
    r = await content.client.get(
        "/search", params={"q": "happened"}, headers=identities.headers(reader)
    )
    assert [h["id"] for h in r.json()] == [post]  # the control: the rest is found

    # block and require_approval hold the post, even were the decision field to say approved.
    for action in ("block", "require_approval"):
        held = await _submit(content, identities, community, author)
        await _verdict(feed, held, decision="held", reasons=[f"rule:{action}"], verdict=action)
        r = await content.client.get(f"/posts/{held}", headers=identities.headers(reader))
        assert r.status_code == 404, (action, r.text)
        r = await content.client.get(f"/posts/{held}", headers=identities.headers(author))
        assert r.json()["status"] == "held" and r.json()["hold_reasons"] == [f"rule:{action}"]
    sneaky = await _submit(content, identities, community, author)
    await _verdict(feed, sneaky, verdict="block", hits=[{"action": "block"}])
    async with content.runtime.db.session() as session:
        row = await session.get(Post, uuid.UUID(sneaky))
        assert row is not None and row.status == "held"


async def test_comment_verdicts_hide_censor_flag_and_release(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    owner, author, reader = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    community = await feed.community(owner=owner)
    for user in (author, reader):
        await feed.member(community, user)
    post = await _submit(content, identities, community, owner)
    await _verdict(feed, post)
    r = await content.client.post(
        f"/posts/{post}/comments",
        json={"body": "buy cheap pills zanzibar"},
        headers=identities.headers(author),
    )
    assert r.status_code == 201 and r.json()["status"] == "visible"  # shown while screened
    comment = r.json()["id"]

    async def seen_by(who: uuid.UUID) -> dict:
        r = await content.client.get(f"/posts/{post}/comments", headers=identities.headers(who))
        assert r.status_code == 200, r.text
        [c] = [c for c in r.json() if c["id"] == comment]
        return c

    async def found(word: str) -> list:
        r = await content.client.get(
            "/search", params={"q": word}, headers=identities.headers(reader)
        )
        return [h["id"] for h in r.json()]

    assert await found("zanzibar") == [comment]

    # A holding verdict hides it from other members and search; its author and staff see it.
    await _verdict(
        feed, comment, "comment", decision="held", reasons=["spam"], verdict="require_approval"
    )
    hidden = await seen_by(reader)
    assert hidden["status"] == "held" and hidden["body"] == ""
    assert (await seen_by(author))["body"] == "buy cheap pills zanzibar"
    assert (await seen_by(owner))["body"] == "buy cheap pills zanzibar"
    assert await found("zanzibar") == []
    r = await content.client.get(f"/posts/{post}", headers=identities.headers(reader))
    assert r.json()["comment_count"] == 0
    async with content.runtime.db.session() as session:
        row = await session.get(Comment, uuid.UUID(comment))
        assert row is not None and row.body == "buy cheap pills zanzibar"  # masking never wrote

    # The author edits it; the clean verdict on the edit shows it again, censored and flagged.
    r = await content.client.patch(
        f"/comments/{comment}", json={"body": "see zanzibar"}, headers=identities.headers(author)
    )
    assert r.status_code == 200, r.text
    assert await found("zanzibar") == []  # held: the edit waits for its verdict
    await _verdict(
        feed,
        comment,
        "comment",
        verdict="flag",
        censored_text=f"\nsee {STARS * 8}",
        tags=["Ads"],
    )
    shown = await seen_by(reader)
    assert shown["status"] == "visible" and shown["body"] == f"see {STARS * 8}"
    assert shown["flagged"] is True and shown["tags"] == ["ads"]
    assert await found("zanzibar") == []
    async with content.runtime.db.session() as session:
        row = (
            await session.execute(select(Comment).where(Comment.id == uuid.UUID(comment)))
        ).scalar_one()
        assert row.original_body == "see zanzibar"
    r = await content.client.get(f"/posts/{post}", headers=identities.headers(reader))
    assert r.json()["comment_count"] == 1
    # The community's staff find what screening flagged; members may not list it.
    r = await content.client.get(
        f"/communities/{community}/flagged", headers=identities.headers(owner)
    )
    assert r.status_code == 200, r.text
    assert [c["id"] for c in r.json()["comments"]] == [comment] and r.json()["posts"] == []
    r = await content.client.get(
        f"/communities/{community}/flagged", headers=identities.headers(reader)
    )
    assert r.status_code == 403

    # A verdict naming a comment content never had is ignored, not an error.
    await _verdict(feed, str(uuid.uuid4()), "comment", decision="held", verdict="block")


def test_contents_reader_of_the_verdict_names_only_fields_moderation_sends() -> None:
    from hearth_content.consumers import ScreeningCompletedV1
    from servicekit.testing.contracts import contract

    producer = contract(SCREENED).model_fields
    assert set(ScreeningCompletedV1.model_fields) <= set(producer)
    for name in ("verdict", "tags", "censored_text", "hits"):
        assert not producer[name].is_required()  # optional additions: old verdicts still parse

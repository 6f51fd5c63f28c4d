"""Members, content and moderation together over real NATS: review publishes or holds posts."""

from __future__ import annotations

import uuid

from hearth_content.app import definition as content_definition
from hearth_content.models import Membership
from hearth_members.app import definition as members_definition
from hearth_moderation.app import definition as moderation_definition
from servicekit.testing.harness import Identities, eventually


async def test_clean_posts_publish_and_banned_words_hold(
    launch, identities: Identities, stream_events, subject_prefix: str
) -> None:
    members = await launch(members_definition)
    content = await launch(content_definition)
    moderation = await launch(moderation_definition)

    r = await members.client.post(
        "/communities",
        json={"name": "Makers", "kind": "customer"},
        headers=identities.headers(None, "operator"),
    )
    community_id = r.json()["id"]
    author = uuid.uuid4()
    r = await members.client.post(
        f"/communities/{community_id}/members", headers=identities.headers(author)
    )
    assert r.status_code == 201
    url = f"/communities/{community_id}/posts"
    headers = identities.headers(author)

    async def submit(body: dict) -> str:
        r = await content.client.post(url, json=body, headers=headers)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    async def joined() -> bool:
        async with content.runtime.db.session() as session:
            row = await session.get(Membership, (uuid.UUID(community_id), author))
            return row is not None

    await eventually(joined)  # content learned of the join from members' event
    clean = await submit({"title": "Hello makers", "body": "Glad to be here.", "format": "text"})
    banned = await submit({"title": "低价出售", "body": "Cheap, 加微信 now", "format": "text"})
    abusive = await submit(
        {"title": "To the moderators", "body": "You IDIOTS? no: you idiot.", "format": "text"}
    )

    async def post(post_id: str) -> dict:
        return (await content.client.get(f"/posts/{post_id}", headers=headers)).json()

    async def decided() -> bool:
        statuses = [(await post(p))["status"] for p in (clean, banned, abusive)]
        return "pending_review" not in statuses

    await eventually(decided)
    assert (await post(clean))["status"] == "published"
    held = await post(banned)
    assert held["status"] == "held" and held["hold_reasons"] == ["banned_term:advertising"]
    assert (await post(abusive))["hold_reasons"] == ["banned_term:abuse"]

    # Another member sees only the published post.
    reader = uuid.uuid4()
    await members.client.post(
        f"/communities/{community_id}/members", headers=identities.headers(reader)
    )

    async def reader_sees() -> list:
        r = await content.client.get(url, headers=identities.headers(reader))
        return [p["id"] for p in r.json()["items"]] if r.status_code == 200 else []

    assert await eventually(reader_sees) == [clean]

    # The facts went over NATS.
    def on(fact: str):
        async def events() -> list:
            found = await stream_events(f"{subject_prefix}.{fact}")
            return [
                e
                for e in found
                if e.data.get("post_id", e.data.get("target_id")) in (clean, banned, abusive)
            ]

        return events

    screened = await eventually(on("moderation.screening.completed.v1"))
    assert {e.data["target_id"]: e.data["decision"] for e in screened} == {
        clean: "approved",
        banned: "held",
        abusive: "held",
    }
    published = await eventually(on("content.post.published.v1"))
    assert [e.data["post_id"] for e in published] == [clean]

    async def two_held() -> list:
        found = await on("content.post.held.v1")()
        return found if len(found) == 2 else []

    held_events = await eventually(two_held)
    assert {e.data["post_id"] for e in held_events} == {banned, abusive}

    r = await moderation.client.get(
        f"/screenings?community_id={community_id}", headers=identities.headers(None, "operator")
    )
    assert len(r.json()["items"]) == 3

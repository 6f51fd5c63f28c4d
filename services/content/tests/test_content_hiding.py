"""Moderation's item.hidden / item.restored, built by moderation's own event models, applied by
content__moderation_hiding: a hidden post leaves members' sight and comes back on restore."""

from __future__ import annotations

import uuid
from typing import Any

from hearth_content.app import definition
from hearth_content.consumers import memberships, screening
from hearth_content.hiding import hiding
from servicekit.ids import utcnow, uuid7
from servicekit.testing.contracts import producer_envelope
from servicekit.testing.harness import Identities
from servicekit.testing.membership import Snapshots


def _fact(kind: str, community: uuid.UUID, post_id: str, item_type: str = "post") -> Any:
    data: dict[str, Any] = {
        "entry_id": str(uuid7()),
        "community_id": str(community),
        "item_type": item_type,
        "item_id": post_id,
        "user_id": None,
    }
    if kind == "hidden":
        data |= {
            "cause": "reports",
            "score": 3.0,
            "threshold": 3.0,
            "reasons": ["spam"],
            "hidden_at": utcnow().isoformat(),
        }
    else:
        data |= {"restored_at": utcnow().isoformat()}
    return producer_envelope(f"hearth.moderation.item.{kind}.v1", data)


async def test_hidden_posts_leave_members_sight_and_come_back(
    launch: Any, identities: Identities
) -> None:
    svc = await launch(definition)
    runtime = svc.runtime
    snaps = Snapshots()
    owner, author, reader = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    community = uuid.uuid4()
    assert await memberships.handle(runtime.db, runtime.tables, snaps.community(community, owner))
    for user in (owner, author, reader):
        assert await memberships.handle(
            runtime.db, runtime.tables, snaps.membership(community, user)
        )

    async def submit(decision: str, reasons: list[str]) -> str:
        r = await svc.client.post(
            f"/communities/{community}/posts",
            json={"title": "t", "body": "b", "format": "text"},
            headers=identities.headers(author),
        )
        assert r.status_code == 201, r.text
        post_id = r.json()["id"]
        verdict = producer_envelope(
            "hearth.moderation.screening.completed.v1",
            {
                "screening_id": str(uuid7()),
                "target_type": "post",
                "target_id": post_id,
                "community_id": str(community),
                "decision": decision,
                "reasons": reasons,
                "screened_at": utcnow().isoformat(),
            },
        )
        assert await screening.handle(runtime.db, runtime.tables, verdict)
        return post_id

    async def status(post_id: str) -> str:
        r = await svc.client.get(f"/posts/{post_id}", headers=identities.headers(author))
        return r.json()["status"]

    async def reader_sees(post_id: str) -> bool:
        r = await svc.client.get(f"/posts/{post_id}", headers=identities.headers(reader))
        return r.status_code == 200 and r.json()["status"] == "published"

    published = await submit("approved", [])
    assert await status(published) == "published" and await reader_sees(published)
    assert await hiding.handle(runtime.db, runtime.tables, _fact("hidden", community, published))
    assert await status(published) == "held" and not await reader_sees(published)
    assert await hiding.handle(runtime.db, runtime.tables, _fact("restored", community, published))
    assert await status(published) == "published" and await reader_sees(published)

    # A restore never publishes a post that screening held.
    held = await submit("held", ["banned_term:advertising"])
    assert await status(held) == "held"
    assert await hiding.handle(runtime.db, runtime.tables, _fact("restored", community, held))
    assert await status(held) == "held"
    # An event about another community's post changes nothing.
    other = _fact("hidden", uuid.uuid4(), published)
    assert await hiding.handle(runtime.db, runtime.tables, other)
    assert await status(published) == "published"

    # A comment hidden after reports leaves members' sight (and the count), then comes back.
    r = await svc.client.post(
        f"/posts/{published}/comments", json={"body": "buy now"}, headers=identities.headers(reader)
    )
    assert r.status_code == 201, r.text
    comment = r.json()["id"]

    async def comments_seen() -> tuple[list[str], int]:
        r = await svc.client.get(f"/posts/{published}/comments", headers=identities.headers(author))
        items = r.json()["items"] if isinstance(r.json(), dict) else r.json()
        shown = [c["id"] for c in items if c.get("body")]
        r = await svc.client.get(f"/posts/{published}", headers=identities.headers(author))
        return shown, r.json()["comment_count"]

    assert await comments_seen() == ([comment], 1)
    hidden = _fact("hidden", community, comment, "comment")
    assert await hiding.handle(runtime.db, runtime.tables, hidden)
    assert await comments_seen() == ([], 0)
    restored = _fact("restored", community, comment, "comment")
    assert await hiding.handle(runtime.db, runtime.tables, restored)
    assert await comments_seen() == ([comment], 1)

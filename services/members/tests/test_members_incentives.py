"""Incentives through the members API with real NATS and a real database: the points ledger
fed by other contexts' events, balances under concurrent redemptions, leaderboards, badges."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from hearth_members.app import definition
from hearth_members.incentives import service as incentives
from hearth_members.incentives.models import EntryKind, PointBalance, PointEntry
from members_testkit import (
    PROBLEM,
    adjust,
    join,
    make_community,
    publish,
    published,
    staff,
)
from servicekit.deps import UnitOfWork
from servicekit.events import Envelope
from servicekit.ids import utcnow, uuid7
from servicekit.testing.backends import Backends
from servicekit.testing.harness import (
    Identities,
    RunningService,
    eventually,
    running_service,
    test_settings,
)


def post_published(cid: str, user: uuid.UUID) -> tuple[str, dict[str, Any]]:
    """content.post.published.v1 of a post by the user."""
    return "hearth.content.post.published.v1", {
        "post_id": str(uuid7()),
        "community_id": cid,
        "author_id": str(user),
        "title": "A post",
        "format": "text",
        "published_at": utcnow().isoformat(),
    }


def comment(cid: str, user: uuid.UUID) -> tuple[str, dict[str, Any]]:
    """content.comment.created.v1 of a comment by the user."""
    return "hearth.content.comment.created.v1", {
        "comment_id": str(uuid7()),
        "post_id": str(uuid7()),
        "community_id": cid,
        "author_id": str(user),
        "created_at": utcnow().isoformat(),
    }


def warning(cid: str, user: uuid.UUID) -> tuple[str, dict[str, Any]]:
    """moderation.sanction.applied.v1: a warning (a sanction of its own each time)."""
    return "hearth.moderation.sanction.applied.v1", {
        "sanction_id": str(uuid7()),
        "community_id": cid,
        "user_id": str(user),
        "level": "warning",
        "reason": "spam",
        "evidence_ref": "moderation:report:1",
        "applied_at": utcnow().isoformat(),
    }


async def standing(members: RunningService, identities: Identities, cid: str, user: uuid.UUID):
    """The member's incentives as the operator sees them."""
    r = await members.client.get(
        f"/communities/{cid}/members/{user}/incentives", headers=staff(identities)
    )
    assert r.status_code == 200, r.text
    return r.json()


def balance_is(members: RunningService, identities: Identities, cid: str, user: uuid.UUID, n: int):
    """An `eventually` check on a member's balance."""

    async def check() -> bool:
        got = (await standing(members, identities, cid, user))["balance"]
        assert got == n, got
        return True

    return check


async def test_points_from_source_events_count_once_per_event(
    members: RunningService, identities: Identities, nats_client: Any, subject_prefix: str
) -> None:
    cid = await make_community(members, identities)
    user = uuid.uuid4()
    await join(members, identities, cid, user)
    authored = {"community_id": cid, "author_id": str(user)}
    now = utcnow().isoformat()
    post = await publish(nats_client, subject_prefix, *post_published(cid, user))
    for ce_type, data in [
        (
            "hearth.content.comment.created.v1",
            {**comment(cid, user)[1], "post_id": post.data["post_id"]},
        ),
        (
            "hearth.content.suggestion.accepted.v1",
            {**authored, "suggestion_id": str(uuid7()), "accepted_at": now},
        ),
        (
            "hearth.events.attendance.checked_in.v1",
            {
                "community_id": cid,
                "user_id": str(user),
                "activity_id": str(uuid7()),
                "checked_in_at": now,
            },
        ),
    ]:
        await publish(nats_client, subject_prefix, ce_type, data)
    await eventually(balance_is(members, identities, cid, user, 5 + 1 + 20 + 10))

    # The same source event again (a producer retry after the dedupe window): one entry.
    await publish(nats_client, subject_prefix, post.type, post.data, envelope=post)
    # A sanction takes 20 points; a second one stops at zero, never below.
    await publish(nats_client, subject_prefix, *warning(cid, user))
    await eventually(balance_is(members, identities, cid, user, 16))
    await publish(nats_client, subject_prefix, *warning(cid, user))
    await eventually(balance_is(members, identities, cid, user, 0))

    r = await members.client.get(
        f"/communities/{cid}/members/{user}/points?limit=50", headers=identities.headers(user)
    )
    assert r.status_code == 200, r.text
    entries = r.json()["items"]
    # Newest first; the four awards came on two streams, so their order is not promised.
    assert [e["points"] for e in entries[:2]] == [-16, -20]
    assert sorted(e["points"] for e in entries[2:]) == [1, 5, 10, 20]
    assert [e["source_event_id"] for e in entries].count(str(post.id)) == 1
    assert sum(e["points"] for e in entries) == 0

    # Directly: the ledger's unique (community, user, source event) holds on its own too.
    again = uuid7()
    for _ in range(2):
        async with members.runtime.db.session() as session:
            uow = UnitOfWork(session, members.runtime)
            await incentives.award_for_event(
                uow=uow,
                community_id=uuid.UUID(cid),
                user_id=user,
                event_id=again,
                event_type="hearth.content.comment.created.v1",
                reason="comment",
            )
            await uow.commit()
    async with members.runtime.db.session() as session:
        rows = (
            await session.exec(select(PointEntry).where(PointEntry.source_event_id == again))
        ).all()
    assert len(rows) == 1

    async def awarded() -> list[Envelope]:
        found = await published(nats_client, subject_prefix, "hearth.members.points.awarded.v1")
        assert len(found) == 7, len(found)
        return found

    events = await awarded()
    assert {e.data["source_event_type"] for e in events} >= {
        "hearth.content.post.published.v1",
        "hearth.moderation.sanction.applied.v1",
    }
    assert all(e.data["balance"] >= 0 for e in events)


async def test_rules_per_community_override_the_defaults(
    members: RunningService, identities: Identities, nats_client: Any, subject_prefix: str
) -> None:
    cid = await make_community(members, identities)
    other = await make_community(members, identities)
    user = uuid.uuid4()
    await join(members, identities, cid, user)
    r = await members.client.get(
        f"/communities/{cid}/point-rules", headers=identities.headers(user)
    )
    assert r.status_code == 200 and r.json()["rules"]["content.post.published"] == 5
    r = await members.client.put(
        f"/communities/{cid}/point-rules",
        json={"rules": {"content.post.published": 50, "content.comment.created": 1}},
        headers=staff(identities),
    )
    assert r.status_code == 200, r.text
    assert r.json()["rules"]["content.post.published"] == 50
    assert r.json()["overridden"] == ["content.post.published"]  # 1 is the default: no override
    for community in (cid, other):
        await publish(nats_client, subject_prefix, *post_published(community, user))
    await eventually(balance_is(members, identities, cid, user, 50))
    await eventually(balance_is(members, identities, other, user, 5))
    # No-shows cost nothing by default; this community sets a penalty.
    r = await members.client.put(
        f"/communities/{cid}/point-rules",
        json={"rules": {"events.attendance.no_show": -3}},
        headers=staff(identities),
    )
    assert r.status_code == 200 and r.json()["rules"]["events.attendance.no_show"] == -3
    for community in (cid, other):
        await publish(
            nats_client,
            subject_prefix,
            "hearth.events.attendance.no_show.v1",
            {
                "community_id": community,
                "user_id": str(user),
                "activity_id": str(uuid7()),
                "activity_ended_at": utcnow().isoformat(),
            },
        )
    await eventually(balance_is(members, identities, cid, user, 47))
    assert (await standing(members, identities, other, user))["balance"] == 5

    # A member may not set rules; unknown sources and absurd values are refused.
    r = await members.client.put(
        f"/communities/{cid}/point-rules",
        json={"rules": {"content.post.published": 1}},
        headers=identities.headers(user),
    )
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    for rules in ({"nope.thing.done": 1}, {"content.post.published": 10**9}, {"x": "y"}):
        r = await members.client.put(
            f"/communities/{cid}/point-rules", json={"rules": rules}, headers=staff(identities)
        )
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, rules
    r = await members.client.get(
        f"/communities/{cid}/point-rules", headers=identities.headers(uuid.uuid4())
    )
    assert r.status_code == 403 and r.json()["type"].endswith("not-a-member")


@pytest.fixture(params=["sqlite", "postgres"])
async def members_on(
    request: pytest.FixtureRequest,
    backends: Backends,
    nats_url: str,
    subject_prefix: str,
    identities: Identities,
) -> AsyncIterator[RunningService]:
    """Members on SQLite and on PostgreSQL (when this session has it)."""
    if request.param == "postgres" and not backends.postgres_admin_url:
        pytest.skip("PostgreSQL is not available in this session")
    settings = test_settings(
        definition,
        database_url=backends.database_url("members", request.param),
        nats_url=nats_url,
        subject_prefix=subject_prefix,
        identity_public_key=identities.public_pem,
    )
    async with running_service(definition, settings) as service:
        yield service


async def test_concurrent_redemptions_never_overspend(
    members_on: RunningService, identities: Identities
) -> None:
    members = members_on
    cid = await make_community(members, identities)
    user = uuid.uuid4()
    await join(members, identities, cid, user)
    assert (await adjust(members, identities, cid, user, 100))["balance"] == 100
    r = await members.client.post(
        f"/communities/{cid}/perks",
        json={"name": "Mug", "cost": 30},
        headers=staff(identities),
    )
    assert r.status_code == 201, r.text
    perk = r.json()
    url = f"/communities/{cid}/perks/{perk['id']}/redemptions"
    headers = identities.headers(user)
    responses = await asyncio.gather(
        *(members.client.post(url, headers=headers) for _ in range(20))
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 3 + [409] * 17, codes
    refused = next(r for r in responses if r.status_code == 409)
    assert refused.json()["type"].endswith("insufficient-points")
    assert sorted(r.json()["balance"] for r in responses if r.status_code == 201) == [10, 40, 70]
    got = await standing(members, identities, cid, user)
    assert got["balance"] == 10 and got["earned"] == 100  # spending does not lower what was earned
    async with members.runtime.db.session() as session:
        spent = (
            await session.exec(select(PointEntry).where(PointEntry.kind == EntryKind.redemption))
        ).all()
        row = await session.get(PointBalance, (uuid.UUID(cid), user))
    assert len(spent) == 3 and row is not None and row.balance == 10

    # Limited stock: 5 racing for 2 → exactly 2, the others 409 out-of-stock (points kept).
    r = await members.client.post(
        f"/communities/{cid}/perks",
        json={"name": "Sticker", "cost": 1, "stock": 2},
        headers=staff(identities),
    )
    sticker = r.json()
    url = f"/communities/{cid}/perks/{sticker['id']}/redemptions"
    responses = await asyncio.gather(*(members.client.post(url, headers=headers) for _ in range(5)))
    assert sorted(r.status_code for r in responses) == [201, 201, 409, 409, 409]
    assert {r.json()["type"] for r in responses if r.status_code == 409} == {
        "urn:hearth:problem:out-of-stock"
    }
    assert (await standing(members, identities, cid, user))["balance"] == 8
    # Restocked, then withdrawn: a withdrawn perk is neither listed nor redeemable.
    perk_url = f"/communities/{cid}/perks/{sticker['id']}"
    r = await members.client.patch(perk_url, json={"stock": 1}, headers=staff(identities))
    assert r.status_code == 200 and r.json()["stock"] == 1
    assert (await members.client.post(url, headers=headers)).status_code == 201
    r = await members.client.patch(perk_url, json={"active": False}, headers=staff(identities))
    assert r.status_code == 200 and r.json()["active"] is False
    assert (await members.client.post(url, headers=headers)).status_code == 404
    r = await members.client.get(f"/communities/{cid}/perks", headers=headers)
    assert [p["name"] for p in r.json()["items"]] == ["Mug"]
    r = await members.client.patch(perk_url, json={"active": True}, headers=headers)
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await members.client.patch(perk_url, json={"cost": 0}, headers=staff(identities))
    assert r.status_code == 422
    r = await members.client.patch(
        f"/communities/{cid}/perks/{uuid.uuid4()}", json={}, headers=staff(identities)
    )
    assert r.status_code == 404


async def test_leaderboards_windows_and_privacy_switch(
    members: RunningService, identities: Identities
) -> None:
    cid = await make_community(members, identities, kind="internal")
    a, b, c, outsider = (uuid.uuid4() for _ in range(4))
    for user in (a, b, c):
        await join(members, identities, cid, user)
    await adjust(members, identities, cid, a, 30)
    await adjust(members, identities, cid, b, 50)
    await adjust(members, identities, cid, c, 10)
    # An old entry: 20 days ago c earned 100 (counts for 30 days and all time, not 7 days).
    async with members.runtime.db.session() as session:
        session.add(
            PointEntry(
                community_id=uuid.UUID(cid),
                user_id=c,
                kind=EntryKind.adjustment,
                points=100,
                reason="old",
                created_at=utcnow() - timedelta(days=20),
            )
        )
        row = await session.get(PointBalance, (uuid.UUID(cid), c))
        assert row is not None
        row.balance, row.earned = row.balance + 100, row.earned + 100
        session.add(row)
        await session.commit()

    async def board(window: str, **kw: Any) -> list[tuple[str, int]]:
        r = await members.client.get(
            f"/communities/{cid}/leaderboard",
            params={"window": window, **kw},
            headers=identities.headers(a),
        )
        assert r.status_code == 200, r.text
        return [(row["user_id"], row["points"]) for row in r.json()["items"]]

    assert await board("7d") == [(str(b), 50), (str(a), 30), (str(c), 10)]
    assert await board("30d") == [(str(c), 110), (str(b), 50), (str(a), 30)]
    assert await board("all", limit=2) == [(str(c), 110), (str(b), 50)]
    assert (await standing(members, identities, cid, a))["rank"] == 3

    # Outsiders may not look; members may not flip the switch.
    r = await members.client.get(
        f"/communities/{cid}/leaderboard", headers=identities.headers(outsider)
    )
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await members.client.put(
        f"/communities/{cid}/incentive-settings",
        json={"leaderboards_enabled": False},
        headers=identities.headers(a),
    )
    assert r.status_code == 403
    # An employee community switches rankings off: the leaderboard answers a clear problem and
    # no individual rank is exposed.
    r = await members.client.put(
        f"/communities/{cid}/incentive-settings",
        json={"leaderboards_enabled": False},
        headers=staff(identities),
    )
    assert r.status_code == 200 and r.json()["leaderboards_enabled"] is False
    r = await members.client.get(
        f"/communities/{cid}/incentive-settings", headers=identities.headers(a)
    )
    assert r.status_code == 200 and r.json()["leaderboards_enabled"] is False
    for window in ("7d", "30d", "all"):
        r = await members.client.get(
            f"/communities/{cid}/leaderboard?window={window}", headers=staff(identities)
        )
        assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
        assert r.json()["type"] == "urn:hearth:problem:leaderboards-disabled"
    mine = await members.client.get(
        f"/communities/{cid}/members/{a}/incentives", headers=identities.headers(a)
    )
    assert mine.status_code == 200 and mine.json()["rank"] is None
    assert mine.json()["balance"] == 30
    # Bad input.
    for query in ("window=1y", "limit=0", "limit=500"):
        r = await members.client.get(
            f"/communities/{cid}/leaderboard?{query}", headers=staff(identities)
        )
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, query


async def test_badges_automatic_manual_and_revoked(
    members: RunningService, identities: Identities, nats_client: Any, subject_prefix: str
) -> None:
    cid = await make_community(members, identities)
    user, admin = uuid.uuid4(), uuid.uuid4()
    await join(members, identities, cid, user)
    await join(members, identities, cid, admin)
    r = await members.client.put(
        f"/communities/{cid}/members/{admin}/role",
        json={"role": "admin"},
        headers=staff(identities),
    )
    assert r.status_code == 200, r.text
    ah = identities.headers(admin)
    r = await members.client.post(
        f"/communities/{cid}/badges",
        json={"name": "Chatty", "rule_source": "content.comment.created", "rule_threshold": 2},
        headers=ah,
    )
    assert r.status_code == 201, r.text
    chatty = r.json()
    r = await members.client.post(
        f"/communities/{cid}/badges", json={"name": "Mentor", "kind": "title"}, headers=ah
    )
    assert r.status_code == 201, r.text
    mentor = r.json()
    r = await members.client.get(f"/communities/{cid}/badges", headers=identities.headers(user))
    assert r.status_code == 200 and {b["name"] for b in r.json()["items"]} == {"Chatty", "Mentor"}

    for _ in range(2):
        await publish(nats_client, subject_prefix, *comment(cid, user))

    async def has_chatty() -> bool:
        got = await standing(members, identities, cid, user)
        assert [b["name"] for b in got["badges"]] == ["Chatty"] and got["badges"][0]["automatic"]
        return True

    await eventually(has_chatty)
    r = await members.client.post(
        f"/communities/{cid}/badges/{mentor['id']}/grants",
        json={"user_id": str(user), "reason": "helps newcomers"},
        headers=ah,
    )
    assert r.status_code == 201 and r.json()["automatic"] is False
    r = await members.client.post(
        f"/communities/{cid}/badges/{mentor['id']}/grants", json={"user_id": str(user)}, headers=ah
    )
    assert r.status_code == 409 and r.json()["type"].endswith("badge-held")
    assert [t["name"] for t in (await standing(members, identities, cid, user))["titles"]] == [
        "Mentor"
    ]
    revoke = f"/communities/{cid}/badges/{chatty['id']}/grants/{user}/revoke"
    r = await members.client.post(revoke, json={"reason": "spam comments"}, headers=ah)
    assert r.status_code == 200 and r.json()["revoked_at"]
    r = await members.client.post(revoke, json={"reason": "again"}, headers=ah)
    assert r.status_code == 409
    assert (await standing(members, identities, cid, user))["badges"] == []
    # The rule does not hand a revoked badge back.
    await publish(nats_client, subject_prefix, *comment(cid, user))
    await eventually(balance_is(members, identities, cid, user, 3))
    assert (await standing(members, identities, cid, user))["badges"] == []

    async def badge_events() -> bool:
        granted = await published(nats_client, subject_prefix, "hearth.members.badge.granted.v1")
        revoked = await published(nats_client, subject_prefix, "hearth.members.badge.revoked.v1")
        assert sorted((e.data["name"], e.data["automatic"]) for e in granted) == [
            ("Chatty", True),
            ("Mentor", False),
        ]
        assert [e.data["reason"] for e in revoked] == ["spam comments"]
        return True

    await eventually(badge_events)

    # Refusals and bad input.
    uh = identities.headers(user)
    r = await members.client.post(f"/communities/{cid}/badges", json={"name": "X"}, headers=uh)
    assert r.status_code == 403
    r = await members.client.post(
        f"/communities/{cid}/badges/{mentor['id']}/grants", json={"user_id": str(user)}, headers=uh
    )
    assert r.status_code == 403
    r = await members.client.post(
        f"/communities/{cid}/badges/{mentor['id']}/grants/{user}/revoke",
        json={"reason": "x"},
        headers=uh,
    )
    assert r.status_code == 403
    r = await members.client.get(
        f"/communities/{cid}/badges", headers=identities.headers(uuid.uuid4())
    )
    assert r.status_code == 403
    for body in (
        {"name": ""},
        {"name": "Y", "rule_source": "content.comment.created"},
        {"name": "Y", "rule_source": "bogus", "rule_threshold": 1},
        {"name": "Y", "kind": "medal"},
    ):
        r = await members.client.post(f"/communities/{cid}/badges", json=body, headers=ah)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, body
    r = await members.client.post(f"/communities/{cid}/badges", json={"name": "Mentor"}, headers=ah)
    assert r.status_code == 409
    r = await members.client.post(
        f"/communities/{cid}/badges/{uuid.uuid4()}/grants", json={"user_id": str(user)}, headers=ah
    )
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    r = await members.client.post(
        f"/communities/{cid}/badges/{mentor['id']}/grants",
        json={"user_id": str(uuid.uuid4())},
        headers=ah,
    )
    assert r.status_code == 404


async def test_refusals_and_bad_input(members: RunningService, identities: Identities) -> None:
    cid = await make_community(members, identities)
    private = await make_community(members, identities, visibility="private")
    user, other = uuid.uuid4(), uuid.uuid4()
    await join(members, identities, cid, user)
    await join(members, identities, cid, other)
    uh = identities.headers(user)
    await adjust(members, identities, cid, user, 5)
    # Members may not adjust points, offer perks, or read someone else's ledger or standing.
    r = await members.client.post(
        f"/communities/{cid}/points/adjustments",
        json={"user_id": str(user), "points": 1000, "reason": "me"},
        headers=uh,
    )
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await members.client.post(
        f"/communities/{cid}/perks", json={"name": "x", "cost": 1}, headers=uh
    )
    assert r.status_code == 403
    for path in ("points", "incentives"):
        r = await members.client.get(f"/communities/{cid}/members/{other}/{path}", headers=uh)
        assert r.status_code == 403, path
    # Outsiders may not list perks, redeem, or read settings; a private community is invisible.
    outsider = identities.headers(uuid.uuid4())
    r = await members.client.get(f"/communities/{cid}/perks", headers=outsider)
    assert r.status_code == 403
    r = await members.client.get(f"/communities/{cid}/incentive-settings", headers=outsider)
    assert r.status_code == 403
    r = await members.client.post(
        f"/communities/{cid}/perks/{uuid.uuid4()}/redemptions", headers=outsider
    )
    assert r.status_code == 403
    r = await members.client.get(f"/communities/{private}/leaderboard", headers=outsider)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    r = await members.client.put(
        f"/communities/{private}/point-rules", json={"rules": {}}, headers=outsider
    )
    assert r.status_code == 404
    r = await members.client.get(f"/communities/{cid}/perks", headers={})
    assert r.status_code == 401
    # Bad input: 4xx problem+json, never a 500.
    sh = staff(identities)
    for body in (
        {"user_id": str(user), "points": 0, "reason": "x"},
        {"user_id": "nope", "points": 1, "reason": "x"},
        {"user_id": str(user), "points": 1, "reason": ""},
        {"user_id": str(user), "points": 10**9, "reason": "x"},
    ):
        r = await members.client.post(
            f"/communities/{cid}/points/adjustments", json=body, headers=sh
        )
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, body
    for body in ({"name": "x", "cost": 0}, {"name": "x", "cost": 1, "stock": -1}, {"cost": 1}):
        r = await members.client.post(f"/communities/{cid}/perks", json=body, headers=sh)
        assert r.status_code == 422, body
    r = await members.client.put(
        f"/communities/{cid}/incentive-settings", json={"leaderboards_enabled": "maybe"}, headers=sh
    )
    assert r.status_code == 422
    r = await members.client.get(f"/communities/{cid}/members/{user}/points?cursor=!!", headers=uh)
    assert r.status_code == 422
    r = await members.client.get(f"/communities/{uuid.uuid4()}/perks", headers=sh)
    assert r.status_code == 404
    r = await members.client.post(
        f"/communities/{cid}/points/adjustments",
        json={"user_id": str(uuid.uuid4()), "points": 5, "reason": "not a member"},
        headers=sh,
    )
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    r = await members.client.post(
        f"/communities/{cid}/perks/{uuid.uuid4()}/redemptions", headers=uh
    )
    assert r.status_code == 404
    r = await members.client.get("/communities/not-a-uuid/leaderboard", headers=sh)
    assert r.status_code == 422
    # Deductions stop at zero.
    r = await members.client.post(
        f"/communities/{cid}/points/adjustments",
        json={"user_id": str(user), "points": -50, "reason": "correction"},
        headers=sh,
    )
    assert r.status_code == 201 and r.json()["points"] == -5 and r.json()["balance"] == 0
    # Ledger paging.
    for _ in range(3):
        await adjust(members, identities, cid, user, 1)
    r = await members.client.get(f"/communities/{cid}/members/{user}/points?limit=2", headers=uh)
    page = r.json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    r = await members.client.get(
        f"/communities/{cid}/members/{user}/points?limit=10&cursor={page['next_cursor']}",
        headers=uh,
    )
    assert len(r.json()["items"]) == 3 and r.json()["next_cursor"] is None
    # A retried redemption with the same Idempotency-Key spends once and answers the same.
    r = await members.client.post(
        f"/communities/{cid}/perks", json={"name": "Pin", "cost": 2}, headers=sh
    )
    url = f"/communities/{cid}/perks/{r.json()['id']}/redemptions"
    retry = {**uh, "Idempotency-Key": uuid.uuid4().hex}
    first, second = [await members.client.post(url, headers=retry) for _ in range(2)]
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json() and first.json()["balance"] == 1
    assert (await standing(members, identities, cid, user))["balance"] == 1

"""Exactly one owner, always: staff cannot demote, remove, ban or clean up the owner, the owner
cannot leave, a removal sanction on the owner is withheld; hand-overs move what the departing
person owned (communities, reviews, goals) and can demote or remove them."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col

from hearth_members.membership.models import Membership
from members_testkit import publish, took
from servicekit.ids import utcnow
from servicekit.testing.harness import Broker, Identities, RunningService, eventually

PROBLEM = "application/problem+json"
SANCTION = "hearth.moderation.sanction.applied.v1"


async def _owners(w: Any) -> list[str]:
    """The active owners of the world's community (as staff see them)."""
    r = await w.svc.client.get(w.url + "/members?limit=200", headers=w.h(w.operator))
    assert r.status_code == 200, r.text
    return [m["user_id"] for m in r.json()["items"] if m["role"] == "owner"]


async def _assert_one_owner(w: Any, owner: uuid.UUID) -> None:
    assert await _owners(w) == [str(owner)]
    c = (await w.svc.client.get(w.url, headers=w.h(w.operator))).json()
    assert c["owner_id"] == str(owner)


def _must_transfer(r: Any) -> None:
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["type"] == "urn:hearth:problem:owner-must-transfer"
    assert "transfer ownership first" in r.json()["detail"]


async def test_nobody_demotes_removes_bans_or_cleans_up_the_owner(
    members: RunningService, identities: Identities, make_world: Any
) -> None:
    w = await make_world(members, identities)
    c = members.client
    staff = w.h(w.operator)
    reason = {"reason": "policy"}
    for role in ("admin", "moderator", "member"):
        _must_transfer(
            await c.put(f"{w.url}/members/{w.owner}/role", json={"role": role}, headers=staff)
        )
    _must_transfer(await c.post(f"{w.url}/members/{w.owner}/removal", json=reason, headers=staff))
    _must_transfer(await c.post(f"{w.url}/members/{w.owner}/ban", json=reason, headers=staff))
    notice = {"grounds": "violations", "reason": "x", "evidence_ref": "moderation:case:1"}
    _must_transfer(
        await c.post(f"{w.url}/members/{w.owner}/cleanup-notice", json=notice, headers=staff)
    )
    _must_transfer(await c.delete(w.url + "/members/me", headers=w.h(w.owner)))
    # Below the owner the rank rule answers first, as before: 403.
    r = await c.put(
        f"{w.url}/members/{w.owner}/role", json={"role": "member"}, headers=w.h(w.admin)
    )
    assert r.status_code == 403
    await _assert_one_owner(w, w.owner)
    # Transfer first, then the previous owner (now an admin) can be acted on.
    r = await c.post(w.url + "/ownership", json={"new_owner_id": str(w.admin)}, headers=staff)
    assert r.status_code == 200, r.text
    r = await c.post(f"{w.url}/members/{w.owner}/removal", json=reason, headers=staff)
    assert r.status_code == 200 and r.json()["status"] == "removed"
    await _assert_one_owner(w, w.admin)


async def test_a_hand_over_withdraws_the_successors_cleanup_notice(
    members: RunningService, identities: Identities, make_world: Any
) -> None:
    w = await make_world(members, identities)
    notice = {
        "grounds": "violations",
        "reason": "Repeat violations.",
        "evidence_ref": "moderation:case:9",
        "grace_days": 1,
    }
    r = await members.client.post(
        f"{w.url}/members/{w.admin}/cleanup-notice", json=notice, headers=w.h(w.owner)
    )
    assert r.status_code == 200 and r.json()["removal_due_at"]
    r = await members.client.post(
        w.url + "/ownership", json={"new_owner_id": str(w.admin)}, headers=w.h(w.owner)
    )
    assert r.status_code == 200, r.text
    r = await members.client.get(w.url + "/members?limit=200", headers=w.h(w.operator))
    [new_owner] = [m for m in r.json()["items"] if m["user_id"] == str(w.admin)]
    assert new_owner["role"] == "owner" and new_owner["removal_due_at"] is None
    r = await members.client.get(w.url + "/audit?limit=200", headers=w.h(w.admin))
    transfer = next(
        a for a in r.json()["items"] if a["action"] == "community.ownership_transferred"
    )
    assert transfer["details"]["cleanup_notice_withdrawn"] is True
    # Even a due notice left on an owner's row (written before these rules) is never carried out.
    async with members.runtime.db.session() as session:
        await session.exec(
            update(Membership)
            .where(col(Membership.user_id) == w.admin)
            .values(removal_due_at=utcnow() - timedelta(days=1), removal_notice_reason="old")
        )
        await session.commit()
    r = await members.client.post("/cleanup/run", headers=w.h(w.operator))
    assert r.status_code == 200 and r.json() == {"removed": 0}
    await _assert_one_owner(w, w.admin)


async def test_a_removal_sanction_on_the_owner_is_withheld_and_staff_are_told(
    members: RunningService,
    identities: Identities,
    make_world: Any,
    broker: Broker,
    nats_client: Any,
) -> None:
    w = await make_world(members, identities)
    # A platform operator with an account in members: the people who can transfer ownership.
    r = await members.client.post(
        "/accounts",
        json={"login": f"ops-{uuid.uuid4().hex[:6]}", "password": "a long passphrase",
              "name": "Ops", "roles": ["operator"]},
        headers=identities.headers(uuid.uuid4(), "admin"),
    )  # fmt: skip
    assert r.status_code == 201, r.text
    operator = uuid.UUID(r.json()["id"])
    sanction_id = str(uuid.uuid4())
    data = {
        "sanction_id": sanction_id,
        "community_id": w.community["id"],
        "user_id": str(w.owner),
        "level": "removal",
        "reason": "Repeated harassment.",
        "evidence_ref": "moderation:decision:77",
        "applied_at": utcnow().isoformat(),
    }
    env = await publish(nats_client, broker.prefix, SANCTION, data, subject=w.community["id"])
    await publish(nats_client, broker.prefix, SANCTION, env.data, envelope=env)  # redelivered

    async def staff_told() -> list[dict]:
        r = await members.client.get("/me/notifications", headers=identities.headers(operator))
        return [n for n in r.json()["items"] if n["kind"] == "sanction.owner_removal_withheld"]

    await eventually(took(members, "members__sanctions", 2))
    [told] = await eventually(staff_told)
    assert told["data"]["user_id"] == str(w.owner) and told["data"]["sanction_id"] == sanction_id
    assert told["data"]["evidence_ref"] == "moderation:decision:77"
    r = await members.client.get("/me/notifications", headers=w.h(w.owner))
    assert [n["kind"] for n in r.json()["items"]].count("sanction.removal_withheld") == 1
    r = await members.client.get(w.url + "/audit?limit=200", headers=w.h(w.owner))
    [withheld] = [a for a in r.json()["items"] if a["action"] == "member.removal_withheld.owner"]
    assert withheld["target_id"] == str(w.owner) and withheld["reason"] == "Repeated harassment."
    assert withheld["details"]["staff_notified"] == 1
    await _assert_one_owner(w, w.owner)
    assert await broker.read(f"{broker.prefix}.members.member.removed.v1") == []


async def test_bulk_handover_moves_goals_and_can_demote_or_remove_the_departing_person(
    members: RunningService, identities: Identities, make_world: Any, broker: Broker
) -> None:
    first = await make_world(members, identities)
    second = await make_world(members, identities)
    third = await make_world(members, identities)  # the departing person only owns a goal here
    departing = first.owner
    c = members.client
    await c.post(second.url + "/members", headers=second.h(departing))
    r = await c.post(
        second.url + "/ownership",
        json={"new_owner_id": str(departing)},
        headers=second.h(second.owner),
    )
    assert r.status_code == 200, r.text
    goal = {"metric": "joins", "target": 10, "deadline": "2030-01-01"}
    r = await c.post(
        third.url + "/goals",
        json={**goal, "owner_id": str(departing)},
        headers=third.h(third.owner),
    )
    assert r.status_code == 201, r.text
    owned_goal = r.json()["id"]
    r = await c.post(first.url + "/goals", json=goal, headers=first.h(departing))
    assert r.status_code == 201 and r.json()["owner_id"] == str(departing)
    first_goal = r.json()["id"]
    r = await c.post(first.url + "/goals", json=goal, headers=first.h(first.admin))
    others_goal = r.json()["id"]

    successor = uuid.uuid4()
    body = {"from_user_id": str(departing), "to_user_id": str(successor), "reason": "left"}
    r = await c.post(
        "/handovers", json={**body, "departing": "retire"}, headers=first.h(first.operator)
    )
    assert r.status_code == 422
    r = await c.post(
        "/handovers", json={**body, "departing": "demote"}, headers=first.h(first.operator)
    )
    assert r.status_code == 200, r.text
    moved = r.json()
    assert moved["departing"] == "demote"
    assert set(moved["communities"]) == {first.community["id"], second.community["id"]}
    assert set(moved["goals"]) == {owned_goal, first_goal}
    for world, gid in ((third, owned_goal), (first, first_goal), (first, others_goal)):
        r = await c.get(world.url + "/goals", headers=world.h(world.operator))
        [g] = [g for g in r.json() if g["id"] == gid]
        assert g["owner_id"] == (str(first.admin) if gid == others_goal else str(successor))
    for world in (first, second):
        await _assert_one_owner(world, successor)
        r = await c.get(world.url + "/members?limit=200", headers=world.h(world.operator))
        [me] = [m for m in r.json()["items"] if m["user_id"] == str(departing)]
        assert me["role"] == "member"  # demoted, still in
    # `remove`: the departing person leaves the communities they handed over, told why.
    leaver = third.owner
    r = await c.post(
        "/handovers",
        json={"from_user_id": str(leaver), "to_user_id": str(successor), "reason": "Left us.",
              "departing": "remove"},
        headers=third.h(third.operator),
    )  # fmt: skip
    assert r.status_code == 200 and r.json()["communities"] == [third.community["id"]]
    await _assert_one_owner(third, successor)
    r = await c.get(third.url + "/members?status=removed", headers=third.h(third.operator))
    assert [m["user_id"] for m in r.json()["items"]] == [str(leaver)]
    r = await c.get("/me/notifications", headers=third.h(leaver))
    assert any(n["kind"] == "member.removed" and n["body"] == "Left us." for n in r.json()["items"])
    # `keep` (the default) is today's behaviour: the previous owner stays an admin.
    kept = await make_world(members, identities)
    r = await c.post(
        "/handovers",
        json={"from_user_id": str(kept.owner), "to_user_id": str(successor), "reason": "moved"},
        headers=kept.h(kept.operator),
    )
    assert r.status_code == 200 and r.json()["departing"] == "keep"
    r = await c.get(kept.url + "/members?limit=200", headers=kept.h(kept.operator))
    assert {m["user_id"]: m["role"] for m in r.json()["items"]}[str(kept.owner)] == "admin"

    async def demotions() -> list:
        found = await broker.read(f"{broker.prefix}.members.member.role_changed.v1")
        mine = [
            e.data
            for e in found
            if e.data["user_id"] == str(departing) and e.data["new_role"] == "member"
        ]
        assert len(mine) == 2, mine
        return mine

    assert {e["old_role"] for e in await eventually(demotions)} == {"admin"}

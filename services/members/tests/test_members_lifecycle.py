"""Membership lifecycle: applications and review, invites, leave/remove/ban/restore, roles,
ownership hand-over, cleanup — with the races settled by conditional UPDATEs."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col

from hearth_members.membership.models import Invite
from servicekit.ids import utcnow
from servicekit.testing.harness import Broker, Identities, RunningService, eventually

MakeWorld = Any

PROBLEM = "application/problem+json"


async def _published(broker: Broker, expected: dict[str, dict]) -> None:
    """Each members event type was published with (at least) these data fields."""

    async def check() -> bool:
        for suffix, fields in expected.items():
            found = await broker.read(f"{broker.prefix}.members.{suffix}")
            if not any(all(e.data.get(k) == v for k, v in fields.items()) for e in found):
                raise AssertionError(f"no {suffix} with {fields}")
        return True

    await eventually(check)


async def _inbox(w: Any, who: uuid.UUID) -> list[dict]:
    r = await w.svc.client.get("/me/notifications", headers=w.h(who))
    assert r.status_code == 200
    return r.json()["items"]


async def test_apply_review_two_admins_at_once_one_wins(
    members: RunningService, identities: Identities, make_world: MakeWorld
) -> None:
    w = await make_world(
        members,
        identities,
        join_policy="approval",
        entry_questions=[
            {"id": "why", "text": "Why join?", "required": True},
            {"id": "team", "text": "Your team?", "required": False},
        ],
    )
    applicant = uuid.uuid4()
    # Required answers are enforced; unknown questions refused.
    r = await members.client.post(
        w.url + "/applications", json={"answers": {}}, headers=w.h(applicant)
    )
    assert r.status_code == 422 and r.json()["missing"] == ["why"]
    r = await members.client.post(
        w.url + "/applications", json={"answers": {"why": "x", "zzz": "y"}}, headers=w.h(applicant)
    )
    assert r.status_code == 422 and r.json()["unknown"] == ["zzz"]
    # Joining directly is refused by the policy.
    r = await members.client.post(w.url + "/members", headers=w.h(applicant))
    assert r.status_code == 403 and r.json()["type"].endswith("join-policy")
    r = await members.client.post(
        w.url + "/applications", json={"answers": {"why": "I build things"}}, headers=w.h(applicant)
    )
    assert r.status_code == 201, r.text
    app = r.json()
    assert app["status"] == "pending" and app["reviewer_id"] == str(w.owner)
    r = await members.client.post(
        w.url + "/applications", json={"answers": {"why": "again"}}, headers=w.h(applicant)
    )
    assert r.status_code == 409  # one pending application at a time
    # Refused: a moderator and a member may not review or even list applications.
    for who in (w.mod, w.member):
        r = await members.client.post(
            f"{w.url}/applications/{app['id']}/approve", json={}, headers=w.h(who)
        )
        assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
        assert (
            await members.client.get(w.url + "/applications", headers=w.h(who))
        ).status_code == 403
    # Two admins approve at the same moment: exactly one succeeds, the other gets 409.
    results = await asyncio.gather(
        *(
            members.client.post(
                f"{w.url}/applications/{app['id']}/approve", json={}, headers=w.h(who)
            )
            for who in (w.admin, w.admin2)
        )
    )
    assert sorted(r.status_code for r in results) == [200, 409], [r.text for r in results]
    r = await members.client.post(
        f"{w.url}/applications/{app['id']}/reject", json={"reason": "late"}, headers=w.h(w.owner)
    )
    assert r.status_code == 409  # decided is decided
    r = await members.client.get(w.url + "/members?limit=200", headers=w.h(applicant))
    assert str(applicant) in [m["user_id"] for m in r.json()["items"]]
    kinds = [n["kind"] for n in await _inbox(w, applicant)]
    assert "welcome" in kinds and "application.approved" in kinds
    assert "application.received" in [n["kind"] for n in await _inbox(w, w.owner)]


async def test_rejection_reason_is_visible_to_the_applicant(
    members: RunningService, identities: Identities, make_world: MakeWorld, broker: Broker
) -> None:
    w = await make_world(members, identities, join_policy="approval")
    applicant = uuid.uuid4()
    app = (
        await members.client.post(w.url + "/applications", json={}, headers=w.h(applicant))
    ).json()
    r = await members.client.post(
        f"{w.url}/applications/{app['id']}/reject", json={}, headers=w.h(w.admin)
    )
    assert r.status_code == 422  # a rejection needs a reason
    r = await members.client.post(
        f"{w.url}/applications/{app['id']}/reject",
        json={"reason": "This community is for the platform team."},
        headers=w.h(w.admin),
    )
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    mine = (await members.client.get("/me/applications", headers=w.h(applicant))).json()["items"]
    assert mine[0]["reason"] == "This community is for the platform team."
    rejected = [n for n in await _inbox(w, applicant) if n["kind"] == "application.rejected"]
    assert rejected and rejected[0]["body"] == "This community is for the platform team."
    # Rules can approve automatically: every required question answered.
    r = await members.client.patch(
        w.url, json={"auto_approve_when_answered": True}, headers=w.h(w.owner)
    )
    assert r.status_code == 200
    r = await members.client.post(w.url + "/applications", json={}, headers=w.h(applicant))
    assert r.status_code == 201 and r.json()["status"] == "approved"
    assert r.json()["decided_automatically"] is True
    await _published(
        broker,
        {
            "member.applied.v1": {"user_id": str(applicant)},
            "member.rejected.v1": {"reason": "This community is for the platform team."},
            "member.approved.v1": {"automatic": True, "decided_by": None},
        },
    )


async def test_invites_refusals_expiry_and_ban_blocks_invite(
    members: RunningService, identities: Identities, make_world: MakeWorld, broker: Broker
) -> None:
    w = await make_world(members, identities, join_policy="invite_only")
    # Refused: moderators and members cannot make invites; a member cannot read them.
    for who in (w.mod, w.member):
        r = await members.client.post(w.url + "/invites", json={}, headers=w.h(who))
        assert r.status_code == 403
        assert (await members.client.get(w.url + "/invites", headers=w.h(who))).status_code == 403
    # An invite link grants at most moderator: not admin (nor owner), whoever makes it.
    for who, role in ((w.admin, "admin"), (w.owner, "admin"), (w.operator, "owner")):
        r = await members.client.post(
            w.url + "/invites", json={"default_role": role}, headers=w.h(who)
        )
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (who, role)
        assert "moderator" in r.text
    r = await members.client.post(
        w.url + "/invites", json={"expires_at": "2000-01-01T00:00:00Z"}, headers=w.h(w.admin)
    )
    assert r.status_code == 422
    r = await members.client.post(w.url + "/invites", json={"max_uses": 0}, headers=w.h(w.admin))
    assert r.status_code == 422
    invite = (
        await members.client.post(
            w.url + "/invites", json={"default_role": "moderator"}, headers=w.h(w.owner)
        )
    ).json()
    banned = uuid.uuid4()
    r = await members.client.post(
        f"{w.url}/members/{banned}/ban", json={"reason": "spam elsewhere"}, headers=w.h(w.admin)
    )
    assert r.status_code == 200 and r.json()["status"] == "banned"
    r = await members.client.post(f"/invites/{invite['token']}/redeem", headers=w.h(banned))
    assert r.status_code == 403 and r.json()["type"].endswith("banned")
    newcomer = uuid.uuid4()
    r = await members.client.post(f"/invites/{invite['token']}/redeem", headers=w.h(newcomer))
    assert r.status_code == 201 and r.json()["role"] == "moderator"
    r = await members.client.post(f"/invites/{invite['token']}/redeem", headers=w.h(newcomer))
    assert r.status_code == 200  # already in: no use spent
    # Restore lifts the ban; the person may use the invite again.
    r = await members.client.post(f"{w.url}/members/{banned}/restore", headers=w.h(w.mod))
    assert r.status_code == 403  # a moderator may not lift bans
    r = await members.client.post(f"{w.url}/members/{banned}/restore", headers=w.h(w.admin))
    assert r.status_code == 200 and r.json()["status"] == "left"
    r = await members.client.post(f"/invites/{invite['token']}/redeem", headers=w.h(banned))
    assert r.status_code == 201
    r = await members.client.delete(f"{w.url}/invites/{invite['id']}", headers=w.h(w.admin))
    assert r.status_code == 200 and r.json()["revoked_at"]
    r = await members.client.post(f"/invites/{invite['token']}/redeem", headers=w.h(uuid.uuid4()))
    assert r.status_code == 410
    r = await members.client.post("/invites/nope/redeem", headers=w.h(uuid.uuid4()))
    assert r.status_code == 404
    await _published(
        broker,
        {
            "invite.redeemed.v1": {"user_id": str(newcomer), "channel": "link"},
            "member.banned.v1": {"user_id": str(banned), "reason": "spam elsewhere"},
            "member.restored.v1": {"user_id": str(banned)},
            "member.joined.v1": {"user_id": str(newcomer), "channel": "link", "role": "moderator"},
        },
    )


async def test_roles_removal_leave_and_refusals(
    members: RunningService, identities: Identities, make_world: MakeWorld, broker: Broker
) -> None:
    w = await make_world(members, identities)
    # A member cannot change roles; a moderator neither; an admin cannot make admins.
    r = await members.client.put(
        f"{w.url}/members/{w.member}/role", json={"role": "moderator"}, headers=w.h(w.member)
    )
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await members.client.put(
        f"{w.url}/members/{w.member}/role", json={"role": "moderator"}, headers=w.h(w.mod)
    )
    assert r.status_code == 403
    r = await members.client.put(
        f"{w.url}/members/{w.member}/role", json={"role": "admin"}, headers=w.h(w.admin)
    )
    assert r.status_code == 403
    r = await members.client.put(
        f"{w.url}/members/{w.admin2}/role", json={"role": "member"}, headers=w.h(w.admin)
    )
    assert r.status_code == 403  # peers cannot demote each other
    r = await members.client.put(
        f"{w.url}/members/{w.member}/role", json={"role": "owner"}, headers=w.h(w.owner)
    )
    assert r.status_code == 403  # ownership moves only by transfer
    r = await members.client.put(
        f"{w.url}/members/{w.member}/role", json={"role": "wizard"}, headers=w.h(w.owner)
    )
    assert r.status_code == 422
    # A moderator cannot remove an admin (or another moderator); can remove a member.
    r = await members.client.post(
        f"{w.url}/members/{w.admin}/removal", json={"reason": "x"}, headers=w.h(w.mod)
    )
    assert r.status_code == 403
    r = await members.client.post(
        f"{w.url}/members/{w.member}/removal", json={"reason": ""}, headers=w.h(w.mod)
    )
    assert r.status_code == 422  # a removal needs a reason
    r = await members.client.post(
        f"{w.url}/members/{w.member}/removal",
        json={"reason": "Repeated off-topic ads", "evidence_ref": "moderation:report:42"},
        headers=w.h(w.mod),
    )
    assert r.status_code == 200 and r.json()["status"] == "removed"
    notice = [n for n in await _inbox(w, w.member) if n["kind"] == "member.removed"]
    assert notice and notice[0]["body"] == "Repeated off-topic ads"
    # The removed member may rejoin an open community (not banned); the owner cannot leave.
    r = await members.client.post(w.url + "/members", headers=w.h(w.member))
    assert r.status_code == 201
    r = await members.client.delete(w.url + "/members/me", headers=w.h(w.owner))
    assert r.status_code == 409
    r = await members.client.delete(w.url + "/members/me", headers=w.h(w.member))
    assert r.status_code == 204
    r = await members.client.delete(w.url + "/members/me", headers=w.h(w.member))
    assert r.status_code == 404
    # Members lists of other statuses: owners/admins only.
    r = await members.client.get(w.url + "/members?status=left", headers=w.h(w.mod))
    assert r.status_code == 403
    r = await members.client.get(w.url + "/members?status=left", headers=w.h(w.admin))
    assert [m["user_id"] for m in r.json()["items"]] == [str(w.member)]
    # Ban: an admin cannot ban the owner; the owner can ban an admin.
    r = await members.client.post(
        f"{w.url}/members/{w.owner}/ban", json={"reason": "x"}, headers=w.h(w.admin)
    )
    assert r.status_code == 403
    r = await members.client.post(
        f"{w.url}/members/{w.admin2}/ban", json={"reason": "leaked data"}, headers=w.h(w.owner)
    )
    assert r.status_code == 200
    r = await members.client.post(w.url + "/members", headers=w.h(w.admin2))
    assert r.status_code == 403  # banned: no rejoining
    # Audit: owners/admins read it, moderators may not.
    assert (await members.client.get(w.url + "/audit", headers=w.h(w.mod))).status_code == 403
    r = await members.client.get(w.url + "/audit?limit=200", headers=w.h(w.owner))
    actions = [a["action"] for a in r.json()["items"]]
    assert "member.banned" in actions and "member.removed.manual" in actions
    await _published(
        broker,
        {
            "member.left.v1": {"user_id": str(w.member)},
            "member.removed.v1": {
                "user_id": str(w.member),
                "evidence_ref": "moderation:report:42",
                "cause": "manual",
            },
            "member.role_changed.v1": {"user_id": str(w.mod), "new_role": "moderator"},
        },
    )


async def test_ownership_transfer_and_bulk_handover_with_audit(
    members: RunningService, identities: Identities, make_world: MakeWorld
) -> None:
    w = await make_world(members, identities, join_policy="approval")
    # Refused: an admin cannot transfer ownership; the owner cannot hand to a non-member.
    r = await members.client.post(
        w.url + "/ownership", json={"new_owner_id": str(w.admin)}, headers=w.h(w.admin)
    )
    assert r.status_code == 403
    r = await members.client.post(
        w.url + "/ownership", json={"new_owner_id": str(uuid.uuid4())}, headers=w.h(w.owner)
    )
    assert r.status_code == 409
    r = await members.client.post(
        w.url + "/ownership", json={"new_owner_id": str(w.admin)}, headers=w.h(w.owner)
    )
    assert r.status_code == 200 and r.json()["owner_id"] == str(w.admin)
    roles = {
        m["user_id"]: m["role"]
        for m in (await members.client.get(w.url + "/members", headers=w.h(w.admin))).json()[
            "items"
        ]
    }
    assert roles[str(w.admin)] == "owner" and roles[str(w.owner)] == "admin"
    assert list(roles.values()).count("owner") == 1
    # A second community owned by the same person, and a pending review assigned to them.
    applicant = uuid.uuid4()
    app = (
        await members.client.post(w.url + "/applications", json={}, headers=w.h(applicant))
    ).json()
    assert app["reviewer_id"] == str(w.admin)
    other = await make_world(members, identities)
    await members.client.post(other.url + "/members", headers=other.h(w.admin))
    await members.client.post(
        other.url + "/ownership", json={"new_owner_id": str(w.admin)}, headers=other.h(other.owner)
    )
    successor = uuid.uuid4()
    body = {"from_user_id": str(w.admin), "to_user_id": str(successor), "reason": "left company"}
    r = await members.client.post("/handovers", json=body, headers=w.h(w.owner))
    assert r.status_code == 403  # staff only
    r = await members.client.post("/handovers", json=body, headers=w.h(w.operator))
    assert r.status_code == 200, r.text
    moved = r.json()
    assert set(moved["communities"]) == {w.community["id"], other.community["id"]}
    assert moved["applications"] == [app["id"]]
    for url in (w.url, other.url):
        c = (await members.client.get(url, headers=w.h(w.operator))).json()
        assert c["owner_id"] == str(successor)
    r = await members.client.get(f"/audit?actor_id={w.operator}&limit=200", headers=w.h(w.operator))
    actions = [a["action"] for a in r.json()["items"]]
    assert "user.bulk_handover" in actions and "community.ownership_transferred" in actions
    handover = next(a for a in r.json()["items"] if a["action"] == "user.bulk_handover")
    assert handover["reason"] == "left company" and handover["target_id"] == str(w.admin)
    assert (await members.client.get("/audit", headers=w.h(w.owner))).status_code == 403


async def test_cleanup_gives_notice_then_removes_with_evidence(
    members: RunningService, identities: Identities, make_world: MakeWorld
) -> None:
    w = await make_world(members, identities)
    r = await members.client.post(
        f"{w.url}/members/{w.member}/cleanup-notice",
        json={
            "grounds": "inactivity",
            "reason": "Inactive for 180 days.",
            "evidence_ref": "metrics:inactive:1",
        },
        headers=w.h(w.mod),
    )
    assert r.status_code == 403  # moderators cannot run cleanup
    r = await members.client.post(
        f"{w.url}/members/{w.member}/cleanup-notice",
        json={
            "grounds": "inactivity",
            "reason": "Inactive for 180 days.",
            "evidence_ref": "metrics:inactive:1",
        },
        headers=w.h(w.admin),
    )
    assert r.status_code == 200 and r.json()["removal_due_at"]
    notice = [n for n in await _inbox(w, w.member) if n["kind"] == "cleanup.notice"]
    assert notice and "Inactive for 180 days." in notice[0]["body"]
    # Not due yet: nothing happens.
    r = await members.client.post("/cleanup/run", headers=w.h(w.operator))
    assert r.json() == {"removed": 0}
    assert (await members.client.post("/cleanup/run", headers=w.h(w.admin))).status_code == 403
    # A zero-day grace period on another member: removed on the next run, evidence kept.
    r = await members.client.post(
        f"{w.url}/members/{w.mod}/cleanup-notice",
        json={
            "grounds": "violations",
            "reason": "Repeat violations.",
            "evidence_ref": "moderation:case:7",
            "grace_days": 0,
        },
        headers=w.h(w.admin),
    )
    assert r.status_code == 200
    r = await members.client.post("/cleanup/run", headers=w.h(w.operator))
    assert r.json() == {"removed": 1}
    r = await members.client.get(w.url + "/members?status=removed", headers=w.h(w.owner))
    [gone] = r.json()["items"]
    assert gone["user_id"] == str(w.mod) and gone["evidence_ref"] == "moderation:case:7"
    kinds = [n["kind"] for n in await _inbox(w, w.mod)]
    assert "cleanup.notice" in kinds and "member.removed" in kinds  # never silent
    # Withdrawing the first notice.
    r = await members.client.delete(
        f"{w.url}/members/{w.member}/cleanup-notice", headers=w.h(w.admin)
    )
    assert r.status_code == 200 and r.json()["removal_due_at"] is None


async def test_an_expired_invite_is_gone_and_spends_no_use(
    members: RunningService, identities: Identities, make_world: MakeWorld
) -> None:
    w = await make_world(members, identities, join_policy="invite_only")
    expires = (utcnow() + timedelta(hours=1)).isoformat()
    r = await members.client.post(
        w.url + "/invites", json={"expires_at": expires, "max_uses": 5}, headers=w.h(w.admin)
    )
    assert r.status_code == 201, r.text
    invite = r.json()
    r = await members.client.post(f"/invites/{invite['token']}/redeem", headers=w.h(uuid.uuid4()))
    assert r.status_code == 201  # valid until it expires
    # The API refuses a past expiry (tested above) and the service's clock cannot be injected,
    # so the link's expiry is moved into the past in its row, as the passing hour would.
    async with members.runtime.db.session() as session:
        await session.exec(
            update(Invite)
            .where(col(Invite.id) == uuid.UUID(invite["id"]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    late = uuid.uuid4()
    r = await members.client.post(f"/invites/{invite['token']}/redeem", headers=w.h(late))
    assert r.status_code == 410 and r.headers["content-type"] == PROBLEM
    assert r.json()["type"].endswith("invite-expired")
    [after] = (await members.client.get(w.url + "/invites", headers=w.h(w.admin))).json()
    assert after["uses"] == 1
    r = await members.client.get(w.url + "/members?limit=200", headers=w.h(w.operator))
    assert str(late) not in [m["user_id"] for m in r.json()["items"]]


async def test_restore_reinstates_a_removed_member_and_lifts_a_ban(
    members: RunningService, identities: Identities, make_world: MakeWorld, broker: Broker
) -> None:
    w = await make_world(members, identities, join_policy="invite_only")
    c = members.client
    r = await c.post(
        f"{w.url}/members/{w.admin2}/removal",
        json={"reason": "By mistake", "evidence_ref": "moderation:case:3"},
        headers=w.h(w.owner),
    )
    assert r.status_code == 200 and r.json()["status"] == "removed"
    r = await c.post(f"{w.url}/members/{w.admin2}/restore", headers=w.h(w.mod))
    assert r.status_code == 403
    r = await c.post(f"{w.url}/members/{w.admin2}/restore", headers=w.h(w.admin))
    assert r.status_code == 200, r.text
    back = r.json()
    # Reinstated (no invite needed in this invite-only community), as a member, history cleared.
    assert back["status"] == "active" and back["role"] == "member"
    assert back["end_reason"] is None and back["evidence_ref"] is None
    kinds = [n["kind"] for n in await _inbox(w, w.admin2)]
    assert kinds.count("member.restored") == 1 and kinds.count("welcome") == 1  # not welcomed again
    r = await c.post(f"{w.url}/members/{w.admin2}/restore", headers=w.h(w.admin))
    assert r.status_code == 409 and r.json()["type"].endswith("not-restorable")
    # A ban on someone who never was a member: lifted, but that makes nobody a member.
    stranger = uuid.uuid4()
    r = await c.post(
        f"{w.url}/members/{stranger}/ban", json={"reason": "spam"}, headers=w.h(w.admin)
    )
    assert r.status_code == 200
    r = await c.post(f"{w.url}/members/{stranger}/restore", headers=w.h(w.admin))
    assert r.status_code == 200 and r.json()["status"] == "left"
    [lifted] = [n for n in await _inbox(w, stranger) if n["kind"] == "member.restored"]
    assert lifted["data"] == {"from": "banned"}
    r = await c.get(w.url + "/audit?limit=200", headers=w.h(w.owner))
    restores = [a["details"]["from"] for a in r.json()["items"] if a["action"] == "member.restored"]
    assert sorted(restores) == ["banned", "removed"]

    async def joins() -> list:
        found = await broker.read(f"{broker.prefix}.members.member.joined.v1")
        mine = [e for e in found if e.data["user_id"] == str(w.admin2)]
        assert len(mine) == 2, mine  # joined, then reinstated
        return mine

    assert (await eventually(joins))[-1].data["role"] == "member"
    await _published(broker, {"member.restored.v1": {"user_id": str(stranger)}})
    restored = await broker.read(f"{broker.prefix}.members.member.restored.v1")
    assert [e.data["user_id"] for e in restored] == [str(stranger)]  # a lifted ban only


async def test_welcome_renders_the_channel_variable(
    members: RunningService, identities: Identities, make_world: MakeWorld
) -> None:
    w = await make_world(members, identities, join_policy="invite_only")
    r = await members.client.patch(
        w.url,
        json={
            "welcome_template": "Hi {name}, you came to {community} via {channel}.",
            "welcome_templates_by_channel": {
                "newsletter": "{channel} reader {name}: {0.__class__}"
            },
        },
        headers=w.h(w.owner),
    )
    assert r.status_code == 200, r.text
    bodies = {}
    for channel, name in (("newsletter", "Ada"), ("partner-site", "Bo")):
        invite = (
            await members.client.post(
                w.url + "/invites", json={"channel": channel}, headers=w.h(w.admin)
            )
        ).json()
        user = uuid.uuid4()
        await members.client.put("/me/profile", json={"display_name": name}, headers=w.h(user))
        r = await members.client.post(f"/invites/{invite['token']}/redeem", headers=w.h(user))
        assert r.status_code == 201 and r.json()["channel"] == channel
        [welcome] = [n for n in await _inbox(w, user) if n["kind"] == "welcome"]
        assert welcome["data"] == {"channel": channel}
        bodies[channel] = welcome["body"]
    assert bodies == {
        "newsletter": "newsletter reader Ada: {0.__class__}",  # the format trick stays literal
        "partner-site": "Hi Bo, you came to Guild via partner-site.",
    }


async def test_a_banned_person_cannot_apply(
    members: RunningService, identities: Identities, make_world: MakeWorld
) -> None:
    w = await make_world(members, identities, join_policy="approval")
    banned = uuid.uuid4()
    r = await members.client.post(
        f"{w.url}/members/{banned}/ban", json={"reason": "fraud"}, headers=w.h(w.admin)
    )
    assert r.status_code == 200
    r = await members.client.post(w.url + "/applications", json={}, headers=w.h(banned))
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    assert r.json()["type"].endswith("banned")
    assert (await members.client.get("/me/applications", headers=w.h(banned))).json()["items"] == []
    r = await members.client.get(w.url + "/applications", headers=w.h(w.owner))
    assert r.json()["items"] == []

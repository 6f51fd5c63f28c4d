"""Every route that changes a membership or a community publishes its snapshot, version bumped."""

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from hearth_members.app import definition
from hearth_members.snapshots.republish import republish
from servicekit.testing.contracts import published
from servicekit.testing.harness import eventually

MS = "hearth.members.membership.snapshot.v1"
CS = "hearth.members.community.snapshot.v1"

# Routes that change no membership or community (one-line reason each).
NO_SNAPSHOT = {
    "POST /communities/{community_id}/goals": "goals",
    "DELETE /communities/{community_id}/goals/{goal_id}": "goals",
    "POST /communities/{community_id}/applications": "an application is not a membership",
    "POST /communities/{community_id}/applications/{application_id}/reject": "no membership",
    "POST /communities/{community_id}/invites": "invites",
    "DELETE /communities/{community_id}/invites/{invite_id}": "invites",
    "POST /me/notifications/read-all": "notifications read",
    "POST /me/notifications/{notification_id}/read": "notifications read",
    "POST /admin/notification-deliveries/{delivery_id}/retry": "notification delivery",
    "PUT /me/profile": "profile",
    "POST /pii/rotate": "key rotation",
    "POST /profiles/lookup": "read",
    "POST /internal/accounts/verify": "accounts",
    "POST /internal/accounts/provision": "accounts",
    "POST /accounts": "accounts",
    "PATCH /accounts/{account_id}": "accounts",
    "PUT /communities/{community_id}/point-rules": "rules only",
    "PUT /communities/{community_id}/incentive-settings": "settings only",
    "POST /communities/{community_id}/badges": "badges",
    "POST /communities/{community_id}/badges/{badge_id}/grants": "badges",
    "POST /communities/{community_id}/badges/{badge_id}/grants/{user_id}/revoke": "badges",
    "POST /communities/{community_id}/perks": "perks",
    "PATCH /communities/{community_id}/perks/{perk_id}": "perks",
    "POST /communities/{community_id}/perks/{perk_id}/redemptions": "perks",
    "PUT /communities/{community_id}/care-settings": "care settings",
    "DELETE /me": "erasure wipes the profile; memberships keep their pseudonymous user ids",
}

# Changing routes whose membership changes go through other routes' paths, named with the step
# that proves that path: recompute changes tiers exactly as the points and tier-rules steps do.
VIA_OTHER_STEPS = {
    "POST /communities/{community_id}/tiers/recompute": "tier hooks: points, tier-rules steps",
}

Step = Callable[[Any], Awaitable[tuple[str, Any, Callable[[dict], bool]]]]


def _routes() -> set[str]:
    out = set()
    for router in definition.routers:
        for route in router.routes:
            for m in getattr(route, "methods", None) or ():
                if m != "GET":
                    out.add(f"{m} {route.path}")  # type: ignore[attr-defined]
    return out


async def _ok(r: Any) -> None:
    assert r.status_code < 300, r.text


def _steps() -> dict[str, Step]:
    """Route -> step: performs it on a fresh world; returns (kind, key, check on snapshot)."""

    async def create(w: Any) -> Any:
        r = await w.svc.client.post(
            "/communities", json={"name": "New", "kind": "internal"}, headers=w.h(w.operator)
        )
        await _ok(r)
        return "c", r.json()["id"], lambda d: d["name"] == "New"

    async def patch(w: Any) -> Any:
        await _ok(await w.svc.client.patch(w.url, json={"name": "Renamed"}, headers=w.h(w.owner)))
        return "c", w.community["id"], lambda d: d["name"] == "Renamed"

    async def archive(w: Any) -> Any:
        await _ok(await w.svc.client.post(w.url + "/archive", headers=w.h(w.owner)))
        return "c", w.community["id"], lambda d: d["archived"]

    async def restore_c(w: Any) -> Any:
        await _ok(await w.svc.client.post(w.url + "/archive", headers=w.h(w.owner)))
        await _ok(await w.svc.client.post(w.url + "/restore", headers=w.h(w.owner)))
        return "c", w.community["id"], lambda d: not d["archived"]

    async def ownership(w: Any) -> Any:
        body = {"new_owner_id": str(w.admin), "reason": "t"}
        await _ok(await w.svc.client.post(w.url + "/ownership", json=body, headers=w.h(w.operator)))
        return "c", w.community["id"], lambda d: d["owner_id"] == str(w.admin)

    async def join(w: Any) -> Any:
        who = uuid.uuid4()
        await _ok(await w.svc.client.post(w.url + "/members", headers=w.h(who)))
        return "m", (w.community["id"], str(who)), lambda d: d["status"] == "active"

    async def leave(w: Any) -> Any:
        await _ok(await w.svc.client.delete(w.url + "/members/me", headers=w.h(w.member)))
        return "m", (w.community["id"], str(w.member)), lambda d: d["status"] != "active"

    async def removal(w: Any) -> Any:
        u = f"{w.url}/members/{w.member}/removal"
        await _ok(await w.svc.client.post(u, json={"reason": "x"}, headers=w.h(w.mod)))
        return "m", (w.community["id"], str(w.member)), lambda d: d["status"] != "active"

    async def ban(w: Any) -> Any:
        u = f"{w.url}/members/{w.member}/ban"
        await _ok(await w.svc.client.post(u, json={"reason": "x"}, headers=w.h(w.admin)))
        return "m", (w.community["id"], str(w.member)), lambda d: d["status"] != "active"

    async def restore_m(w: Any) -> Any:
        u = f"{w.url}/members/{w.member}"
        await _ok(await w.svc.client.post(u + "/ban", json={"reason": "x"}, headers=w.h(w.admin)))
        await _ok(await w.svc.client.post(u + "/restore", headers=w.h(w.admin)))
        return "m", (w.community["id"], str(w.member)), lambda d: True

    async def role(w: Any) -> Any:
        u = f"{w.url}/members/{w.member}/role"
        await _ok(await w.svc.client.put(u, json={"role": "moderator"}, headers=w.h(w.owner)))
        return "m", (w.community["id"], str(w.member)), lambda d: d["role"] == "moderator"

    async def mute(w: Any) -> Any:
        u = f"{w.url}/members/{w.member}/mute"
        body = {"muted_until": "2099-01-01T00:00:00Z", "reason": "calm down"}
        await _ok(await w.svc.client.post(u, json=body, headers=w.h(w.mod)))
        await _ok(
            await w.svc.client.post(
                u, json={"muted_until": None, "reason": "ok"}, headers=w.h(w.mod)
            )
        )
        return (
            "m",
            (w.community["id"], str(w.member)),
            lambda d: (
                # A lift ends the mute now: muted_until is no longer the far future.
                not str(d["muted_until"]).startswith("2099")
            ),
        )

    notice = {"grounds": "violations", "reason": "Repeat violations.", "evidence_ref": "r/1"}

    async def notice_add(w: Any) -> Any:
        u = f"{w.url}/members/{w.member}/cleanup-notice"
        await _ok(await w.svc.client.post(u, json=notice, headers=w.h(w.admin)))
        return "m", (w.community["id"], str(w.member)), lambda d: d["status"] == "active"

    async def notice_remove(w: Any) -> Any:
        u = f"{w.url}/members/{w.member}/cleanup-notice"
        await _ok(await w.svc.client.post(u, json=notice, headers=w.h(w.admin)))
        await _ok(await w.svc.client.delete(u, headers=w.h(w.admin)))
        return "m", (w.community["id"], str(w.member)), lambda d: d["status"] == "active"

    async def approve(w: Any) -> Any:
        who = uuid.uuid4()
        r = await w.svc.client.patch(w.url, json={"join_policy": "approval"}, headers=w.h(w.owner))
        await _ok(r)
        r = await w.svc.client.post(w.url + "/applications", json={}, headers=w.h(who))
        await _ok(r)
        u = f"{w.url}/applications/{r.json()['id']}/approve"
        await _ok(await w.svc.client.post(u, json={}, headers=w.h(w.owner)))
        return "m", (w.community["id"], str(who)), lambda d: d["status"] == "active"

    async def redeem(w: Any) -> Any:
        who = uuid.uuid4()
        r = await w.svc.client.post(w.url + "/invites", json={}, headers=w.h(w.admin))
        await _ok(r)
        await _ok(await w.svc.client.post(f"/invites/{r.json()['token']}/redeem", headers=w.h(who)))
        return "m", (w.community["id"], str(who)), lambda d: d["status"] == "active"

    async def points(w: Any) -> Any:
        body = {"user_id": str(w.member), "points": 5000, "reason": "t"}
        u = w.url + "/points/adjustments"
        await _ok(await w.svc.client.post(u, json=body, headers=w.h(w.operator)))
        return "m", (w.community["id"], str(w.member)), lambda d: d["tier"] != "regular"

    async def tier_rules(w: Any) -> Any:
        body = {"user_id": str(w.member), "points": 5000, "reason": "t"}
        u = w.url + "/points/adjustments"
        await _ok(await w.svc.client.post(u, json=body, headers=w.h(w.operator)))
        r = await w.svc.client.get(w.url + "/tier-rules", headers=w.h(w.operator))
        await _ok(r)
        grants = {"core": ["early_access"], "active": ["early_access"]}
        rules = {**r.json(), "privileges": grants}
        r = await w.svc.client.put(w.url + "/tier-rules", json=rules, headers=w.h(w.operator))
        await _ok(r)
        return (
            "m",
            (w.community["id"], str(w.member)),
            lambda d: d["privileges"] == ["early_access"],
        )

    async def handover(w: Any) -> Any:
        successor = uuid.uuid4()
        body = {"from_user_id": str(w.owner), "to_user_id": str(successor), "reason": "left"}
        await _ok(await w.svc.client.post("/handovers", json=body, headers=w.h(w.operator)))
        return "c", w.community["id"], lambda d: d["owner_id"] == str(successor)

    async def cleanup_run(w: Any) -> Any:
        u = f"{w.url}/members/{w.member}/cleanup-notice"
        await _ok(
            await w.svc.client.post(u, json={**notice, "grace_days": 0}, headers=w.h(w.admin))
        )
        r = await w.svc.client.post("/cleanup/run", headers=w.h(w.operator))
        await _ok(r)
        assert r.json()["removed"] >= 1, r.text
        return "m", (w.community["id"], str(w.member)), lambda d: d["status"] == "removed"

    c = "/communities/{community_id}"
    return {
        "POST /communities": create,
        f"PATCH {c}": patch,
        f"POST {c}/archive": archive,
        f"POST {c}/restore": restore_c,
        f"POST {c}/ownership": ownership,
        f"POST {c}/members": join,
        f"DELETE {c}/members/me": leave,
        f"POST {c}/members/{{user_id}}/removal": removal,
        f"POST {c}/members/{{user_id}}/ban": ban,
        f"POST {c}/members/{{user_id}}/restore": restore_m,
        f"PUT {c}/members/{{user_id}}/role": role,
        f"POST {c}/members/{{user_id}}/mute": mute,
        f"POST {c}/members/{{user_id}}/cleanup-notice": notice_add,
        f"DELETE {c}/members/{{user_id}}/cleanup-notice": notice_remove,
        f"POST {c}/applications/{{application_id}}/approve": approve,
        "POST /invites/{token}/redeem": redeem,
        f"POST {c}/points/adjustments": points,
        f"PUT {c}/tier-rules": tier_rules,
        "POST /handovers": handover,
        "POST /cleanup/run": cleanup_run,
    }


def test_every_route_is_classified() -> None:
    """A new route must be put in a table: it cannot silently skip its snapshot."""
    known = set(_steps()) | set(NO_SNAPSHOT) | set(VIA_OTHER_STEPS)
    assert _routes() - known == set()
    assert known - _routes() == set()


async def _latest(nats: Any, prefix: str, kind: str, key: Any) -> dict | None:
    events = await published(nats, prefix, MS if kind == "m" else CS)
    datas = [e.data for e in events]
    if kind == "m":
        match = [d for d in datas if (d["community_id"], d["user_id"]) == tuple(key)]
    else:
        match = [d for d in datas if d["community_id"] == key]
    return max(match, key=lambda d: d["version"]) if match else None


async def test_changing_routes_publish_a_newer_snapshot(
    members: Any, identities: Any, make_world: Any, nats_client: Any, subject_prefix: str
) -> None:
    """Each changing route is followed by a snapshot with a higher version showing the change."""
    for route, step in _steps().items():
        w = await make_world(members, identities)
        before = {
            "c": await _latest(nats_client, subject_prefix, "c", w.community["id"]),
            "m": await _latest(
                nats_client, subject_prefix, "m", (w.community["id"], str(w.member))
            ),
        }
        kind, key, check = await step(w)
        prev = (
            before[kind] if key in (w.community["id"], (w.community["id"], str(w.member))) else None
        )
        floor = prev["version"] if prev else 0

        async def newer(
            kind: str = kind,
            key: Any = key,
            floor: int = floor,
            check: Any = check,
            route: str = route,
        ) -> dict:
            d = await _latest(nats_client, subject_prefix, kind, key)
            assert d is not None and d["version"] > floor, (route, d)
            # Two-step routes (mute then lift): wait for the last change's snapshot.
            assert check(d), (route, d)
            return d

        await eventually(newer, timeout=5)


async def test_failed_request_writes_no_snapshot(
    members: Any, identities: Any, make_world: Any, nats_client: Any, subject_prefix: str
) -> None:
    """A refused role change publishes nothing for that membership."""
    w = await make_world(members, identities)
    key = (w.community["id"], str(w.member))

    async def settled() -> dict:
        d = await _latest(nats_client, subject_prefix, "m", key)
        assert d is not None
        return d

    before = await eventually(settled, timeout=5)
    u = f"{w.url}/members/{w.member}/role"
    r = await members.client.put(u, json={"role": "nonsense"}, headers=w.h(w.owner))
    assert r.status_code == 422
    r = await members.client.put(u, json={"role": "admin"}, headers=w.h(w.mod))
    assert r.status_code == 403
    after = await _latest(nats_client, subject_prefix, "m", key)
    assert after is not None and after["version"] == before["version"]


async def test_republish_keeps_versions(
    members: Any, identities: Any, make_world: Any, nats_client: Any, subject_prefix: str
) -> None:
    """Republishing sends one more snapshot of everything, each with its current version."""
    w = await make_world(members, identities)
    u = f"{w.url}/members/{w.member}/role"
    await _ok(await members.client.put(u, json={"role": "moderator"}, headers=w.h(w.owner)))
    cid = w.community["id"]
    people = [w.operator, w.owner, w.admin, w.admin2, w.mod, w.member]
    keys = [("c", cid)] + [("m", (cid, str(p))) for p in people]

    async def snapshots(kind: str, key: Any) -> list[dict]:
        events = await published(nats_client, subject_prefix, MS if kind == "m" else CS)
        if kind == "m":
            return [e.data for e in events if (e.data["community_id"], e.data["user_id"]) == key]
        return [e.data for e in events if e.data["community_id"] == key]

    async def latest_all() -> dict:
        out = {}
        for kind, key in keys:
            s = await snapshots(kind, key)
            assert s, key
            out[(kind, key)] = (len(s), max(d["version"] for d in s))
        return out

    await eventually(latest_all, timeout=5)
    before = await latest_all()
    counts = await republish(members.runtime)
    assert counts["communities"] >= 1 and counts["memberships"] >= len(people)

    async def republished() -> bool:
        for (kind, key), (n, version) in before.items():
            s = await snapshots(kind, key)
            assert len(s) == n + 1, (key, len(s), n)
            assert s[-1]["version"] == version, (key, s[-1], version)
        return True

    await eventually(republished, timeout=10)

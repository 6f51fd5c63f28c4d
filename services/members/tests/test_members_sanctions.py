"""Moderation's sanctions, published as real envelopes on NATS, applied by members__sanctions."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from members_testkit import publish
from servicekit.ids import utcnow
from servicekit.testing.harness import Broker, Identities, RunningService, eventually

SANCTION = "hearth.moderation.sanction.applied.v1"


async def sanction(
    broker: Broker, nats_client: Any, w: Any, user: uuid.UUID, level: str, **extra: Any
) -> Any:
    """Publish moderation.sanction.applied.v1 as moderation's relay would."""
    data = {
        "sanction_id": str(uuid.uuid4()),
        "community_id": w.community["id"],
        "user_id": str(user),
        "level": level,
        "reason": f"{level} for spam",
        "evidence_ref": "moderation:decision:abc",
        "applied_at": utcnow().isoformat(),
        **extra,
    }
    return await publish(nats_client, broker.prefix, SANCTION, data, subject=w.community["id"])


async def test_mute_and_removal_sanctions_apply_publish_and_notify(
    members: RunningService,
    identities: Identities,
    make_world: Any,
    broker: Broker,
    nats_client: Any,
) -> None:
    w = await make_world(members, identities)
    until = utcnow() + timedelta(days=3)
    mute = await sanction(broker, nats_client, w, w.member, "mute", muted_until=until.isoformat())
    # A redelivery of the same event: applied once.
    await publish(nats_client, broker.prefix, SANCTION, mute.data, envelope=mute)

    async def muted() -> dict | None:
        r = await members.client.get(w.url + "/members?limit=200", headers=w.h(w.owner))
        m = next(m for m in r.json()["items"] if m["user_id"] == str(w.member))
        return m if m["muted_until"] else None

    membership = await eventually(muted)
    assert membership["muted_until"].startswith(until.strftime("%Y-%m-%dT%H:%M"))

    async def muted_event() -> list:
        return await broker.read(f"{broker.prefix}.members.member.muted.v1")

    [event] = await eventually(muted_event)
    assert event.data["user_id"] == str(w.member) and event.data["muted_until"]

    async def notices() -> list:
        r = await members.client.get("/me/notifications", headers=w.h(w.member))
        return [n for n in r.json()["items"] if n["kind"].startswith("sanction.")]

    assert [n["kind"] for n in await eventually(notices)] == ["sanction.mute"]

    await sanction(broker, nats_client, w, w.mod, "warning")
    await sanction(broker, nats_client, w, w.member, "removal")

    async def removed() -> dict | None:
        r = await members.client.get(w.url + "/members?status=removed", headers=w.h(w.owner))
        return next(iter(r.json()["items"]), None)

    gone = await eventually(removed)
    assert gone["user_id"] == str(w.member)
    assert gone["evidence_ref"] == "moderation:decision:abc"
    assert gone["end_reason"] == "removal for spam"

    async def warned() -> bool:
        r = await members.client.get("/me/notifications", headers=w.h(w.mod))
        return any(n["kind"] == "sanction.warning" for n in r.json()["items"])

    await eventually(warned)
    removed_events = await broker.read(f"{broker.prefix}.members.member.removed.v1")
    assert removed_events[-1].data["cause"] == "sanction"
    assert removed_events[-1].data["evidence_ref"] == "moderation:decision:abc"
    # A sanction for someone who is not a member changes nothing and does not poison the stream.
    await sanction(broker, nats_client, w, uuid.uuid4(), "mute", muted_until=until.isoformat())
    runtime = members.runtime.consumers[0]

    async def handled() -> bool:
        return runtime.stats["handled"] >= 4

    await eventually(handled)
    assert runtime.stats["dead_lettered"] == 0


async def test_moderators_mute_members_below_them(
    members: RunningService, identities: Identities, make_world: Any, broker: Broker
) -> None:
    w = await make_world(members, identities)
    until = (utcnow() + timedelta(hours=2)).isoformat()
    body = {"muted_until": until, "reason": "Cool down"}
    for who, target in ((w.member, w.mod), (w.mod, w.admin), (w.mod, w.mod)):
        r = await members.client.post(f"{w.url}/members/{target}/mute", json=body, headers=w.h(who))
        assert r.status_code == 403, (who, target)
    r = await members.client.post(
        f"{w.url}/members/{w.member}/mute", json={"muted_until": until}, headers=w.h(w.mod)
    )
    assert r.status_code == 422  # a reason is required
    r = await members.client.post(f"{w.url}/members/{w.member}/mute", json=body, headers=w.h(w.mod))
    assert r.status_code == 200 and r.json()["muted_until"]
    r = await members.client.post(
        f"{w.url}/members/{w.member}/mute",
        json={"muted_until": None, "reason": "Lifted"},
        headers=w.h(w.admin),
    )
    assert r.status_code == 200
    lifted = r.json()["muted_until"]

    async def two_mutes() -> list:
        found = await broker.read(f"{broker.prefix}.members.member.muted.v1")
        return found if len(found) == 2 else []

    first, second = await eventually(two_mutes)
    assert first.data["muted_until"] > second.data["muted_until"]
    assert lifted is not None and lifted <= utcnow().isoformat().replace("+00:00", "Z")
    # Ownership transfer also says it as role changes (what role read models consume).
    await members.client.post(
        w.url + "/ownership", json={"new_owner_id": str(w.admin)}, headers=w.h(w.owner)
    )

    async def roles() -> list:
        found = await broker.read(f"{broker.prefix}.members.member.role_changed.v1")
        return [
            (e.data["user_id"], e.data["old_role"], e.data["new_role"])
            for e in found
            if e.data["new_role"] == "owner" or e.data["old_role"] == "owner"
        ]

    changes = await eventually(roles)
    assert (str(w.admin), "admin", "owner") in changes
    assert (str(w.owner), "owner", "admin") in changes

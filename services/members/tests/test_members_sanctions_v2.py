"""Moderation's v2 sanctions, expiry, lifting and report outcomes, published as moderation's
own event models build them (servicekit.testing.contracts), applied by members__sanctions."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from members_testkit import publish
from servicekit.ids import utcnow
from servicekit.testing.harness import Broker, Identities, RunningService, eventually

APPLIED = "hearth.moderation.sanction.applied.v2"


def applied(w: Any, user: uuid.UUID, level: str, **extra: Any) -> dict[str, Any]:
    sanction_id = str(uuid.uuid4())
    return {
        "sanction_id": sanction_id,
        "community_id": w.community["id"],
        "user_id": str(user),
        "actor_id": str(uuid.uuid4()),
        "level": level,
        "cause": "manual",
        "reason": "scam links",
        "evidence_ref": f"moderation:sanction:{sanction_id}",
        "appeal_path": f"/api/moderation/sanctions/{sanction_id}/appeals",
        "notice": f'You were told: {level}. About your post: "buy now". You may appeal once.',
        "applied_at": utcnow().isoformat(),
        **extra,
    }


async def test_ban_expiry_lifting_and_report_outcomes(
    members: RunningService,
    identities: Identities,
    make_world: Any,
    broker: Broker,
    nats_client: Any,
) -> None:
    w = await make_world(members, identities)
    cid = w.community["id"]

    async def member_row(user: uuid.UUID, status: str = "active") -> dict | None:
        r = await members.client.get(
            w.url + f"/members?status={status}&limit=200", headers=w.h(w.owner)
        )
        return next((m for m in r.json()["items"] if m["user_id"] == str(user)), None)

    # A mute, then its expiry: the mute is lifted.
    until = utcnow() + timedelta(hours=1)
    mute = applied(w, w.member, "mute", muted_until=until.isoformat())
    await publish(nats_client, broker.prefix, APPLIED, mute, subject=cid)

    async def muted() -> bool:
        row = await member_row(w.member)
        return row is not None and row["muted_until"] is not None

    await eventually(muted)
    await publish(
        nats_client,
        broker.prefix,
        "hearth.moderation.sanction.expired.v1",
        {
            "sanction_id": mute["sanction_id"],
            "community_id": cid,
            "user_id": str(w.member),
            "level": "mute",
            "expired_at": utcnow().isoformat(),
        },
        subject=cid,
    )

    async def unmuted() -> bool:
        row = await member_row(w.member)
        return row is not None and row["muted_until"] is None

    await eventually(unmuted)

    async def notices(user: uuid.UUID, kind: str) -> list:
        r = await members.client.get("/me/notifications", headers=w.h(user))
        return [n for n in r.json()["items"] if n["kind"] == kind]

    (mute_notice,) = await eventually(lambda: notices(w.member, "sanction.mute"))
    assert '"buy now"' in mute_notice["body"] and "appeal" in mute_notice["body"]
    assert await eventually(lambda: notices(w.member, "sanction.unmuted"))

    # A ban: the membership ends and rejoining is refused; lifting it reinstates them.
    ban = applied(w, w.member, "ban")
    await publish(nats_client, broker.prefix, APPLIED, ban, subject=cid)
    banned = await eventually(lambda: member_row(w.member, "banned"))
    assert banned["evidence_ref"] == ban["evidence_ref"]
    r = await members.client.post(w.url + "/members", headers=w.h(w.member))
    assert r.status_code == 403 and r.json()["type"].endswith("banned")
    await publish(
        nats_client,
        broker.prefix,
        "hearth.moderation.sanction.lifted.v1",
        {
            "sanction_id": ban["sanction_id"],
            "community_id": cid,
            "user_id": str(w.member),
            "actor_id": str(uuid.uuid4()),
            "level": "ban",
            "outcome": "lifted",
            "reason": "appeal upheld",
            "lifted_at": utcnow().isoformat(),
        },
        subject=cid,
    )
    assert await eventually(lambda: member_row(w.member))
    assert await eventually(lambda: notices(w.member, "member.restored"))

    # A reporter is told the outcome of their report.
    await publish(
        nats_client,
        broker.prefix,
        "hearth.moderation.report.resolved.v1",
        {
            "report_id": str(uuid.uuid4()),
            "entry_id": str(uuid.uuid4()),
            "community_id": cid,
            "item_type": "post",
            "item_id": str(uuid.uuid4()),
            "user_id": str(w.member),
            "reporter_id": str(w.mod),
            "actor_id": str(uuid.uuid4()),
            "outcome": "upheld",
            "resolved_at": utcnow().isoformat(),
        },
        subject=cid,
    )
    (told,) = await eventually(lambda: notices(w.mod, "report.upheld"))
    assert "agreed" in told["body"]

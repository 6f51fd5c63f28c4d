"""Cleanup: every notice cites evidence (moderation's record for violations, metrics' inactivity
record for inactivity), and the cleanup loop on two replicas removes each due member once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col

from hearth_members.app import definition
from hearth_members.membership.models import Membership
from members_testkit import publish, took
from servicekit.ids import utcnow
from servicekit.testing.backends import Backends
from servicekit.testing.harness import Broker, Identities, RunningService, eventually

PROBLEM = "application/problem+json"


async def test_a_cleanup_notice_always_cites_evidence(
    members: RunningService,
    identities: Identities,
    make_world: Any,
    nats_client: Any,
    subject_prefix: str,
) -> None:
    w = await make_world(members, identities)
    c = members.client
    url = f"{w.url}/members/{w.member}/cleanup-notice"
    for body in (
        {"grounds": "violations", "reason": "Repeat violations."},
        {"grounds": "violations", "reason": "Repeat violations.", "evidence_ref": "  "},
        {"grounds": "inactivity", "reason": "Inactive."},  # metrics has not said so
    ):
        r = await c.post(url, json=body, headers=w.h(w.admin))
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, body
        assert r.json()["type"] == "urn:hearth:problem:evidence-required"
    r = await c.post(url, json={"reason": "No grounds given."}, headers=w.h(w.admin))
    assert r.status_code == 422
    # Metrics reports the member inactive: an inactivity notice cites that record by itself.
    inactive = await publish(
        nats_client,
        subject_prefix,
        "hearth.metrics.member.inactive.v1",
        {
            "community_id": w.community["id"],
            "user_id": str(w.member),
            "kind": "inactive",
            "last_active_at": (utcnow() - timedelta(days=200)).isoformat(),
            "inactive_days": 200,
            "detected_at": utcnow().isoformat(),
        },
    )
    await eventually(took(members, "members__tiers", 1))
    r = await c.post(
        url,
        json={"grounds": "inactivity", "reason": "Inactive for 200 days."},
        headers=w.h(w.admin),
    )
    assert r.status_code == 200, r.text
    assert r.json()["evidence_ref"] == f"metrics:inactive:{inactive.id}"
    r = await c.get("/me/notifications", headers=w.h(w.member))
    [notice] = [n for n in r.json()["items"] if n["kind"] == "cleanup.notice"]
    assert notice["data"]["grounds"] == "inactivity"
    assert notice["data"]["evidence_ref"] == f"metrics:inactive:{inactive.id}"
    r = await c.get(w.url + "/audit?limit=200", headers=w.h(w.owner))
    [audited] = [a for a in r.json()["items"] if a["action"] == "member.cleanup_notice"]
    assert audited["details"]["evidence_ref"] == f"metrics:inactive:{inactive.id}"
    # Activity after the quiet spell clears the record: no inactivity evidence any more.
    await publish(
        nats_client,
        subject_prefix,
        "hearth.metrics.member.active.v1",
        {
            "community_id": w.community["id"],
            "user_id": str(w.member),
            "active_at": (utcnow() + timedelta(seconds=1)).isoformat(),
        },
    )
    await eventually(took(members, "members__tiers", 2))
    r = await c.post(url, json={"grounds": "inactivity", "reason": "again"}, headers=w.h(w.admin))
    assert r.status_code == 422


async def test_two_replicas_remove_each_due_member_exactly_once(
    launch: Any,
    backends: Backends,
    identities: Identities,
    pii_settings: dict,
    make_world: Any,
    broker: Broker,
) -> None:
    # Two app instances of members on one database and one NATS, each running its cleanup loop.
    url = backends.database_url("members")
    settings = {**pii_settings, "cleanup_interval_seconds": 0.1}
    first = await launch(definition, database_url=url, **settings)
    second = await launch(definition, database_url=url, **settings)
    w = await make_world(first, identities)
    users = [uuid.uuid4() for _ in range(12)]
    notice = {"grounds": "violations", "reason": "Repeat spam.", "evidence_ref": "moderation:c:1"}
    for i, user in enumerate(users):
        svc = (first, second)[i % 2]
        assert (await svc.client.post(w.url + "/members", headers=w.h(user))).status_code == 201
        r = await svc.client.post(
            f"{w.url}/members/{user}/cleanup-notice",
            json={**notice, "grace_days": 1},
            headers=w.h(w.owner),
        )
        assert r.status_code == 200, r.text
    # Every notice period ends at the same moment (the loops' clock cannot be injected): both
    # loops find all twelve due on their next rounds, a tenth of a second apart at most.
    async with first.runtime.db.session() as session:
        await session.exec(
            update(Membership)
            .where(col(Membership.user_id).in_(users))
            .values(removal_due_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()

    async def all_removed() -> bool:
        r = await second.client.get(
            w.url + "/members?status=removed&limit=100", headers=w.h(w.owner)
        )
        gone = {m["user_id"] for m in r.json()["items"]}
        assert gone == {str(u) for u in users}, len(gone)
        return True

    await eventually(all_removed)
    await asyncio.sleep(0.5)  # several more rounds of both loops: nothing is removed twice
    r = await first.client.get(w.url + "/audit?limit=200", headers=w.h(w.owner))
    audited = Counter(
        a["target_id"] for a in r.json()["items"] if a["action"] == "member.removed.cleanup"
    )
    assert audited == Counter({str(u): 1 for u in users})
    for user in users:
        r = await second.client.get("/me/notifications", headers=w.h(user))
        kinds = [n["kind"] for n in r.json()["items"]]
        assert kinds.count("member.removed") == 1 and kinds.count("cleanup.notice") == 1

    async def removed_events() -> Counter:
        found = await broker.read(f"{broker.prefix}.members.member.removed.v1")
        by_user = Counter(e.data["user_id"] for e in {e.id: e for e in found}.values())
        assert by_user == Counter({str(u): 1 for u in users}), by_user
        return by_user

    await eventually(removed_events)

"""Inactivity: one member.inactive per quiet member, one member.active on return, on replicas;
the quiet top contributor; and members' care journey starting from it, end to end on NATS."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from hearth_members.app import definition as members_definition
from hearth_metrics.activity.consumers import activity
from hearth_metrics.communities.consumers import memberships
from hearth_metrics.communities.models import CommunityPolicy
from hearth_metrics.inactivity.events import MemberActive, MemberInactive
from hearth_metrics.inactivity.scheduler import run_pass
from hearth_metrics.inactivity.service import detect_all
from hearth_metrics.settings import MetricsSettings
from servicekit.deps import UnitOfWork
from servicekit.events import Envelope
from servicekit.ids import utcnow
from servicekit.runtime import settings_of
from servicekit.testing.contracts import producer_envelope
from servicekit.testing.harness import Identities, RunningService, eventually
from servicekit.testing.membership import Snapshots

INACTIVE = "hearth.metrics.member.inactive.v1"
ACTIVE = "hearth.metrics.member.active.v1"


def comment(community: uuid.UUID, user: uuid.UUID, at: datetime) -> Envelope:
    """content.comment.created.v1 as content publishes it."""
    return producer_envelope(
        "hearth.content.comment.created.v1",
        {
            "comment_id": str(uuid.uuid4()),
            "post_id": str(uuid.uuid4()),
            "community_id": str(community),
            "author_id": str(user),
            "parent_id": None,
            "body": "hi",
            "created_at": at.isoformat(),
        },
        subject=str(community),
    )


def joined(community: uuid.UUID, user: uuid.UUID, at: datetime) -> Envelope:
    """members.member.joined.v1 as members publishes it."""
    return producer_envelope(
        "hearth.members.member.joined.v1",
        {
            "community_id": str(community),
            "user_id": str(user),
            "membership_id": str(uuid.uuid4()),
            "role": "member",
            "joined_at": at.isoformat(),
            "channel": "invite",
        },
        subject=str(community),
    )


async def recorded(metrics: RunningService, ce_type: str) -> list[dict[str, Any]]:
    """The payloads of the events of this type in metrics' outbox."""
    outbox = metrics.runtime.tables.outbox
    async with metrics.runtime.db.session() as session:
        rows = await session.execute(
            sa.select(outbox.c.data).where(outbox.c.event_type == ce_type).order_by(outbox.c.seq)
        )
        return [r[0] for r in rows.all()]


async def test_one_inactive_per_quiet_member_one_active_on_return_on_two_replicas(
    metrics: RunningService,
) -> None:
    rt = metrics.runtime
    snaps = Snapshots()
    community, owner = uuid.uuid4(), uuid.uuid4()
    quiet, busy, top, left = (uuid.uuid4() for _ in range(4))
    others = [uuid.uuid4() for _ in range(6)]
    await memberships.handle(rt.db, rt.tables, snaps.community(community, owner))
    for user in (quiet, busy, top, *others):
        await memberships.handle(rt.db, rt.tables, snaps.membership(community, user))
    await memberships.handle(rt.db, rt.tables, snaps.membership(community, left, status="left"))
    async with rt.db.session() as session:
        session.add(CommunityPolicy(community_id=community, inactive_days=14))
        await session.commit()
    now = utcnow()
    envs = [joined(community, u, now - timedelta(days=40)) for u in (quiet, busy, top, left)]
    envs += [comment(community, quiet, now - timedelta(days=20))]
    envs += [comment(community, busy, now - timedelta(days=1))]
    envs += [comment(community, left, now - timedelta(days=30))]  # no longer a member
    envs += [comment(community, top, now - timedelta(days=10, hours=i)) for i in range(12)]
    envs += [comment(community, u, now - timedelta(days=2)) for u in others]
    assert await activity.handle_batch(rt.db, rt.tables, envs) == len(envs)

    settings = settings_of(rt, MetricsSettings)
    # Two replicas' passes at once: each member is announced once.
    counts = await asyncio.gather(*(_detect(metrics, settings, now) for _ in range(2)))
    assert sum(counts) == 2
    assert await _detect(metrics, settings, now + timedelta(hours=1)) == 0
    inactive = [MemberInactive.model_validate(d) for d in await recorded(metrics, INACTIVE)]
    assert sorted((e.user_id, e.kind) for e in inactive) == sorted(
        [(quiet, "inactive"), (top, "quiet_top_contributor")]
    )
    by_user = {e.user_id: e for e in inactive}
    assert by_user[quiet].inactive_days == 20 and by_user[top].inactive_days == 10
    assert by_user[quiet].last_active_at is not None

    # The quiet member comes back: one member.active; more activity announces nothing more.
    back = comment(community, quiet, utcnow())
    await activity.handle_batch(rt.db, rt.tables, [back, back])
    await activity.handle_batch(rt.db, rt.tables, [comment(community, quiet, utcnow())])
    # An old event arriving late is not a return.
    await activity.handle_batch(
        rt.db, rt.tables, [comment(community, top, now - timedelta(days=15))]
    )
    actives = [MemberActive.model_validate(d) for d in await recorded(metrics, ACTIVE)]
    assert [a.user_id for a in actives] == [quiet]
    # Quiet again later: announced again (a new transition), once.
    later = utcnow() + timedelta(days=15)
    assert await _detect(metrics, settings, later) >= 1
    again = [d for d in await recorded(metrics, INACTIVE) if d["user_id"] == str(quiet)]
    assert len(again) == 2


async def _detect(metrics: RunningService, settings: MetricsSettings, now: datetime) -> int:
    async with metrics.runtime.db.session() as session:
        return await detect_all(UnitOfWork(session, metrics.runtime), settings=settings, now=now)


async def test_a_quiet_member_starts_members_care_journey_end_to_end(
    launch: Any, metrics: RunningService, broker: Any, identities: Identities
) -> None:
    members = await launch(members_definition)
    staff = identities.headers(uuid.uuid4(), "admin")
    r = await members.client.post(
        "/communities", json={"name": "Quiet club", "kind": "customer"}, headers=staff
    )
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    user = uuid.uuid4()
    r = await members.client.post(f"/communities/{cid}/members", headers=identities.headers(user))
    assert r.status_code == 201, r.text
    r = await members.client.put(
        f"/communities/{cid}/care-settings",
        json={"enabled": True, "follow_up_after_hours": 48, "win_back_days": 10},
        headers=staff,
    )
    assert r.status_code == 200, r.text
    r = await metrics.client.patch(
        f"/communities/{cid}/policy", json={"inactive_days": 3}, headers=staff
    )
    assert r.status_code == 200, r.text
    # The member last commented 5 days ago (content's fact, as its relay publishes it).
    await broker.publish(comment(uuid.UUID(cid), user, utcnow() - timedelta(days=5)))

    async def learned() -> bool:
        # Metrics knows the membership (members' snapshot), the join and the comment.
        async with metrics.runtime.db.session() as session:
            from hearth_metrics.activity.models import MemberState
            from hearth_metrics.communities.models import Membership

            m = await session.get(Membership, (uuid.UUID(cid), user))
            rows = (
                (
                    await session.execute(
                        sa.select(MemberState).where(MemberState.community_id == uuid.UUID(cid))  # type: ignore[arg-type]
                    )
                )
                .scalars()
                .all()
            )
            states = [s for s in rows if s.user_id == user]
            return bool(m and states and states[0].last_active_at and states[0].joined_at)

    await eventually(learned, timeout=30)
    assert await run_pass(metrics.runtime)  # metrics announces the quiet member ...

    async def journey() -> list[dict]:
        r = await members.client.get(f"/communities/{cid}/care-journeys", headers=staff)
        assert r.status_code == 200, r.text
        found = r.json()["items"]
        assert len(found) == 1, found
        return found

    [started] = await eventually(journey, timeout=30)  # ... and members starts its journey
    assert started["trigger"] == "inactive" and started["status"] == "nudged"
    assert await run_pass(metrics.runtime) is None  # once per transition
    # The member comments again: metrics says member.active, members records the win-back.
    await broker.publish(comment(uuid.UUID(cid), user, utcnow() + timedelta(seconds=1)))

    async def won_back() -> bool:
        [j] = await journey()
        assert j["status"] == "won_back", j
        return True

    await eventually(won_back, timeout=30)
    assert len(await recorded(metrics, ACTIVE)) == 1


async def test_win_back_rate_of_care_journeys(
    metrics: RunningService, identities: Identities
) -> None:
    rt = metrics.runtime
    snaps = Snapshots()
    community, owner = uuid.uuid4(), uuid.uuid4()
    await memberships.handle(rt.db, rt.tables, snaps.community(community, owner, kind="customer"))
    await memberships.handle(rt.db, rt.tables, snaps.membership(community, owner, role="owner"))
    now = utcnow()
    envs = []
    journeys = [uuid.uuid4() for _ in range(4)]
    for i, journey in enumerate(journeys):
        user = uuid.uuid4()
        for step in ("first", "follow_up"):
            envs.append(
                producer_envelope(
                    "hearth.members.care.nudge_sent.v1",
                    {
                        "journey_id": str(journey),
                        "community_id": str(community),
                        "user_id": str(user),
                        "trigger": "inactive",
                        "step": step,
                        "sent_at": (now - timedelta(days=3)).isoformat(),
                    },
                )
            )
        if i == 0:
            envs.append(
                producer_envelope(
                    "hearth.members.member.won_back.v1",
                    {
                        "journey_id": str(journey),
                        "community_id": str(community),
                        "user_id": str(user),
                        "trigger": "inactive",
                        "nudges_sent": 2,
                        "started_at": (now - timedelta(days=3)).isoformat(),
                        "won_back_at": (now - timedelta(days=1)).isoformat(),
                        "days_to_win_back": 2.0,
                    },
                )
            )
    # Won back delivered before the nudge (another stream), and everything twice.
    envs.reverse()
    assert await activity.handle_batch(rt.db, rt.tables, envs + envs) == len(envs)
    r = await metrics.client.get(
        f"/communities/{community}/win-back", headers=identities.headers(owner)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["started"], body["won_back"], body["rate"]) == (4, 1, 0.25)

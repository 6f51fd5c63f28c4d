"""Metrics' report.published reaches the inbox of the community's owners and admins, once."""

from __future__ import annotations

import uuid
from typing import Any

from members_testkit import OPERATOR, join, make_community, staff, took
from servicekit.ids import utcnow, uuid7
from servicekit.testing.contracts import publish
from servicekit.testing.harness import Identities, RunningService, eventually

PUBLISHED = "hearth.metrics.report.published.v1"


async def inbox(members: RunningService, identities: Identities, user: uuid.UUID) -> list[dict]:
    r = await members.client.get("/me/notifications", headers=identities.headers(user))
    assert r.status_code == 200, r.text
    return [n for n in r.json()["items"] if n["kind"] == "metrics.report"]


async def test_a_published_report_reaches_owners_and_admins_once(
    members: RunningService, identities: Identities, nats_client: Any, subject_prefix: str
) -> None:
    cid = await make_community(members, identities)
    admin, member = uuid.uuid4(), uuid.uuid4()
    await join(members, identities, cid, admin)
    await join(members, identities, cid, member)
    r = await members.client.put(
        f"/communities/{cid}/members/{admin}/role",
        json={"role": "admin"},
        headers=staff(identities),
    )
    assert r.status_code == 200, r.text
    report_id = uuid7()
    url = f"/api/metrics/communities/{cid}/reports/{report_id}"
    # The payload is checked by metrics' own event model (the producer's contract).
    sent = await publish(
        nats_client,
        subject_prefix,
        PUBLISHED,
        {
            "report_id": str(report_id),
            "community_id": cid,
            "period": "week",
            "period_start": "2026-03-02",
            "period_end": "2026-03-09",
            "trigger": "scheduled",
            "url": url,
            "published_at": utcnow().isoformat(),
        },
        subject=cid,
    )
    await publish(nats_client, subject_prefix, PUBLISHED, sent.data, envelope=sent)
    await eventually(took(members, "members__metrics_reports", 2))
    for user in (OPERATOR, admin):
        [note] = await inbox(members, identities, user)
        assert note["community_id"] == cid
        assert note["title"] == "Your community's weekly report is ready"
        assert note["data"] == {
            "report_id": str(report_id),
            "period": "week",
            "period_start": "2026-03-02",
            "url": url,
        }
    assert await inbox(members, identities, member) == []

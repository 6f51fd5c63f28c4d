"""Races settled by the database: invite uses claimed by a conditional UPDATE."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from hearth_members.app import definition
from servicekit.testing.backends import Backends
from servicekit.testing.harness import Identities


async def _inbox(w: Any, who: uuid.UUID) -> list[dict]:
    r = await w.svc.client.get("/me/notifications", headers=w.h(who))
    return r.json()["items"]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_invite_max_uses_10_with_50_concurrent_joins_exactly_10(
    kind: str,
    launch: Any,
    backends: Backends,
    identities: Identities,
    pii_settings: dict,
    make_world: Any,
) -> None:
    if kind == "postgres" and not backends.postgres_admin_url:
        pytest.skip("PostgreSQL is not available in this session")
    svc = await launch(
        definition, database_url=backends.database_url("members", kind), **pii_settings
    )
    w = await make_world(svc, identities, join_policy="invite_only")
    w.community = (
        await svc.client.patch(
            w.url,
            json={
                "welcome_templates_by_channel": {"wechat": "Hi {name}, from WeChat: {community}"}
            },
            headers=w.h(w.owner),
        )
    ).json()
    r = await svc.client.post(
        w.url + "/invites", json={"max_uses": 10, "channel": "wechat"}, headers=w.h(w.admin)
    )
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    users = [uuid.uuid4() for _ in range(50)]
    results = await asyncio.gather(
        *(svc.client.post(f"/invites/{token}/redeem", headers=w.h(u)) for u in users)
    )
    codes = [r.status_code for r in results]
    assert codes.count(201) == 10, codes
    assert codes.count(409) == 40, codes
    invites = (await svc.client.get(w.url + "/invites", headers=w.h(w.owner))).json()
    assert invites[0]["uses"] == 10
    joined = [u for u, r in zip(users, results, strict=True) if r.status_code == 201]
    assert all(r.json()["channel"] == "wechat" for r in results if r.status_code == 201)
    welcome = [n for n in await _inbox(w, joined[0]) if n["kind"] == "welcome"]
    assert welcome[0]["body"] == "Hi there, from WeChat: Guild"


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_two_admins_approving_at_once_one_wins_on_each_database(
    kind: str,
    launch: Any,
    backends: Backends,
    identities: Identities,
    pii_settings: dict,
    make_world: Any,
) -> None:
    if kind == "postgres" and not backends.postgres_admin_url:
        pytest.skip("PostgreSQL is not available in this session")
    svc = await launch(
        definition, database_url=backends.database_url("members", kind), **pii_settings
    )
    w = await make_world(svc, identities, join_policy="approval")
    for _ in range(3):  # a few rounds: the outcome must never depend on timing
        applicant = uuid.uuid4()
        app = (
            await svc.client.post(w.url + "/applications", json={}, headers=w.h(applicant))
        ).json()
        results = await asyncio.gather(
            svc.client.post(
                f"{w.url}/applications/{app['id']}/approve", json={}, headers=w.h(w.admin)
            ),
            svc.client.post(
                f"{w.url}/applications/{app['id']}/reject",
                json={"reason": "no"},
                headers=w.h(w.admin2),
            ),
            svc.client.post(
                f"{w.url}/applications/{app['id']}/approve", json={}, headers=w.h(w.owner)
            ),
        )
        codes = sorted(r.status_code for r in results)
        assert codes == [200, 409, 409], [r.text for r in results]
        winner = next(r.json() for r in results if r.status_code == 200)
        r = await svc.client.get(w.url + "/members?limit=200", headers=w.h(w.owner))
        is_member = str(applicant) in [m["user_id"] for m in r.json()["items"]]
        assert is_member == (winner["status"] == "approved")

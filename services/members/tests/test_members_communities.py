"""Communities: profile and settings, archive/restore, welcome templates, visibility."""

from __future__ import annotations

import uuid
from typing import Any

from hearth_members.communities.service import render_template
from servicekit.testing.harness import Broker, Identities, RunningService, eventually

PROBLEM = "application/problem+json"


def test_welcome_templates_substitute_only_known_variables() -> None:
    values = {"name": "Ada", "community": "Guild"}
    assert render_template("Hi {name}, welcome to {community}!", values) == (
        "Hi Ada, welcome to Guild!"
    )
    # Format-string tricks stay literal text: nothing is evaluated or looked up.
    hostile = "{0.__class__} {name.__class__} {community!r} {{name}} {missing} %s"
    assert render_template(hostile, values) == (
        "{0.__class__} {name.__class__} {community!r} {Ada} {missing} %s"
    )


async def test_update_archive_restore_and_events(
    members: RunningService, identities: Identities, make_world: Any, broker: Broker
) -> None:
    w = await make_world(members, identities)
    change = {
        "positioning": "Where platform engineers help each other",
        "rules": "Be kind. No ads.",
        "announcement": "Town hall on Friday",
        "avatar_url": "https://example.com/a.png",
        "visibility": "private",
        "entry_questions": [{"id": "why", "text": "Why?", "required": True}],
        "auto_approve_email_domains": ["@Example.COM"],
        "welcome_template": "Welcome {name}!",
    }
    for who in (w.mod, w.member):  # refused: moderators and members cannot edit
        r = await members.client.patch(w.url, json=change, headers=w.h(who))
        assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await members.client.patch(w.url, json=change, headers=w.h(w.admin))
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["rules"] == "Be kind. No ads." and c["auto_approve_email_domains"] == ["example.com"]
    assert c["entry_questions"][0]["id"] == "why"
    # Bad input: 422, never 500.
    for bad in (
        {"avatar_url": "javascript:alert(1)"},
        {"kind": "club"},
        {"name": "  "},
        {"entry_questions": [{"id": "bad id!", "text": "x"}]},
        {"join_policy": "sometimes"},
    ):
        r = await members.client.patch(w.url, json=bad, headers=w.h(w.owner))
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (bad, r.text)
    # Private now: a non-member cannot read it (404, not revealed); a member can.
    outsider = uuid.uuid4()
    assert (await members.client.get(w.url, headers=w.h(outsider))).status_code == 404
    assert (await members.client.get(w.url + "/goals", headers=w.h(outsider))).status_code == 404
    assert (await members.client.get(w.url, headers=w.h(w.member))).status_code == 200
    listed = (await members.client.get("/communities", headers=w.h(outsider))).json()["items"]
    assert w.community["id"] not in [x["id"] for x in listed]
    # Archive: only the owner (or staff); archived communities take no joins.
    assert (await members.client.post(w.url + "/archive", headers=w.h(w.admin))).status_code == 403
    r = await members.client.post(w.url + "/archive", headers=w.h(w.owner))
    assert r.status_code == 200 and r.json()["archived_at"]
    assert (await members.client.post(w.url + "/archive", headers=w.h(w.owner))).status_code == 409
    r = await members.client.post(
        w.url + "/members",
        headers=w.h(
            uuid.uuid4(),
        ),
    )
    assert r.status_code in (404, 409)  # private and archived
    listed = (await members.client.get("/communities", headers=w.h(w.member))).json()["items"]
    assert w.community["id"] not in [x["id"] for x in listed]
    r = await members.client.post(w.url + "/restore", headers=w.h(w.owner))
    assert r.status_code == 200 and r.json()["archived_at"] is None
    prefix = broker.prefix

    async def published() -> bool:
        types = {e.type for e in await broker.read(f"{prefix}.members.community.>")}
        return {
            "hearth.members.community.updated.v1",
            "hearth.members.community.archived.v1",
            "hearth.members.community.restored.v1",
            "hearth.members.community.ownership_transferred.v1",
        } <= types

    await eventually(published)
    updated = [
        e
        for e in await broker.read(f"{prefix}.members.community.updated.v1")
        if "rules" in e.data["changed"]
    ]
    assert updated and updated[0].data["visibility"] == "private"


async def test_welcome_notification_uses_the_community_template(
    members: RunningService, identities: Identities, make_world: Any
) -> None:
    w = await make_world(members, identities)
    await members.client.patch(
        w.url,
        json={"welcome_template": "Hello {name} in {community} {0.__dict__}"},
        headers=w.h(w.owner),
    )
    newcomer = uuid.uuid4()
    await members.client.put("/me/profile", json={"display_name": "Grace"}, headers=w.h(newcomer))
    assert (await members.client.post(w.url + "/members", headers=w.h(newcomer))).status_code == 201
    r = await members.client.get("/me/notifications", headers=w.h(newcomer))
    [welcome] = [n for n in r.json()["items"] if n["kind"] == "welcome"]
    assert welcome["body"] == "Hello Grace in Guild {0.__dict__}"

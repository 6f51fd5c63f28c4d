"""Refusals the other files do not already show, and the permission matrix docs check."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from hearth_members.app import definition
from hearth_members.permissions import markdown_table
from servicekit.testing.harness import Identities, RunningService

README = Path(__file__).parents[1] / "README.md"
MY_TAGS = {"communities", "notifications", "profiles", "accounts"}


def test_readme_states_the_permission_matrix_and_every_route() -> None:
    text = README.read_text()
    assert markdown_table() in text, "README's matrix differs from permissions.MATRIX"
    from hearth_members.app import create_app

    app = create_app(definition.settings_cls(environment="test"))
    missing = [
        f"{method.upper()} {path}"
        for path, ops in app.openapi()["paths"].items()
        for method, op in ops.items()
        if set(op.get("tags", ())) & MY_TAGS and f"`{method.upper()} {path}`" not in text
    ]
    assert not missing, f"routes missing from README: {missing}"


async def test_remaining_refusals(
    members: RunningService, identities: Identities, make_world: Any
) -> None:
    w = await make_world(members, identities, join_policy="approval")
    c = members.client
    assert (await c.post(w.url + "/restore", headers=w.h(w.admin))).status_code == 403
    # Applying: a member is already in (409); an open community takes no applications (403).
    assert (
        await c.post(w.url + "/applications", json={}, headers=w.h(w.member))
    ).status_code == 409
    await c.patch(w.url, json={"join_policy": "open"}, headers=w.h(w.owner))
    r = await c.post(w.url + "/applications", json={}, headers=w.h(uuid.uuid4()))
    assert r.status_code == 403
    await c.patch(w.url, json={"join_policy": "approval"}, headers=w.h(w.owner))
    app = (await c.post(w.url + "/applications", json={}, headers=w.h(uuid.uuid4()))).json()
    r = await c.post(
        f"{w.url}/applications/{app['id']}/reject", json={"reason": "no"}, headers=w.h(w.member)
    )
    assert r.status_code == 403
    r = await c.post(
        f"{w.url}/applications/{uuid.uuid4()}/reject", json={"reason": "no"}, headers=w.h(w.admin)
    )
    assert r.status_code == 404
    invite = (await c.post(w.url + "/invites", json={}, headers=w.h(w.admin))).json()
    assert (
        await c.delete(f"{w.url}/invites/{invite['id']}", headers=w.h(w.mod))
    ).status_code == 403
    notice = {"grounds": "violations", "reason": "spam", "evidence_ref": "moderation:case:1"}
    r = await c.post(
        f"{w.url}/members/{w.member}/cleanup-notice", json=notice, headers=w.h(w.admin)
    )
    assert r.status_code == 200, r.text
    r = await c.delete(f"{w.url}/members/{w.member}/cleanup-notice", headers=w.h(w.mod))
    assert r.status_code == 403
    r = await c.delete(f"{w.url}/members/{w.admin}/cleanup-notice", headers=w.h(w.owner))
    assert r.status_code == 409  # no notice pending
    # An admin cannot give cleanup notice to the owner.
    r = await c.post(f"{w.url}/members/{w.owner}/cleanup-notice", json=notice, headers=w.h(w.admin))
    assert r.status_code == 403
    # Not a member of this private community: 404 for everything inside it.
    await c.patch(w.url, json={"visibility": "private"}, headers=w.h(w.owner))
    outsider = identities.headers(uuid.uuid4())
    for method, path in (
        ("GET", w.url),
        ("GET", w.url + "/members"),
        ("GET", w.url + "/goals"),
        ("POST", w.url + "/applications"),
        ("GET", w.url + "/invites"),
    ):
        r = await c.request(method, path, headers=outsider, json={} if method == "POST" else None)
        assert r.status_code == 404, (method, path, r.status_code)
    # Forged cursors (valid encoding, wrong content) are 422, never 500.
    import base64

    forged = base64.urlsafe_b64encode(b'["not-a-uuid"]').decode().rstrip("=")
    for path in ("/communities", w.url + "/members", "/me/notifications", "/me/applications"):
        r = await c.get(f"{path}?cursor={forged}", headers=w.h(w.owner))
        assert r.status_code == 422, (path, r.status_code)
    r = await c.get(f"/audit?cursor={forged}", headers=w.h(w.operator))
    assert r.status_code == 422
    # No identity: 401 on the caller's own resources.
    for method, path in (
        ("GET", "/me/applications"),
        ("GET", "/me/profile"),
        ("PUT", "/me/profile"),
        ("DELETE", "/me"),
        ("GET", "/me/notifications/unread-count"),
        ("POST", "/me/notifications/read-all"),
        ("POST", f"/invites/{invite['token']}/redeem"),
    ):
        assert (await c.request(method, path)).status_code == 401, (method, path)

"""No plaintext PII at rest: after a run, no database file, WAL or JetStream block holds it.

A platform of its own (its own nats-server with a store directory, SQLite files in one work
directory), driven through the gateway: members set an e-mail address and a phone number, are
looked up by them, export their data. Then every file is searched byte for byte. A canary put in
a post title (content a member chose to publish, so stored as written) must be found in the
content database and the JetStream store: that proves the search reads the places it claims to.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from servicekit.testing.backends import _stop_process, start_nats_server
from servicekit.testing.harness import eventually
from servicekit.testing.platform import CONTEXTS, Platform


@pytest.fixture
def own_platform(tmp_path: Path) -> Iterator[tuple[Platform, Path]]:
    """Gateway + services on SQLite files, with a nats-server whose store we can read."""
    store = tmp_path / "jetstream"
    proc, url = start_nats_server(store)
    work = tmp_path / "platform"
    work.mkdir()
    running = Platform(
        workdir=work,
        nats_url=url,
        subject_prefix="pii" + uuid.uuid4().hex[:8],
        database_urls={c: f"sqlite:///{work / (c + '.db')}" for c in CONTEXTS},
    )
    try:
        yield running.start(), store
    finally:
        running.stop()
        _stop_process(proc)


def _holders(roots: list[Path], needles: dict[str, bytes]) -> dict[str, list[str]]:
    """For each needle, the files under `roots` whose bytes contain it."""
    found: dict[str, list[str]] = {name: [] for name in needles}
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file():
                continue
            data = path.read_bytes()
            for name, needle in needles.items():
                if needle in data:
                    found[name].append(str(path.relative_to(root.parent)))
    return found


async def test_no_plaintext_pii_in_databases_or_nats_store(
    own_platform: tuple[Platform, Path],
) -> None:
    platform, store = own_platform
    tag = uuid.uuid4().hex[:10]
    email, phone = (
        f"pii.{tag}@example.org",
        f"+86 139 {tag[:4].translate(str.maketrans('abcdef', '123456'))} 0042",
    )
    canary = f"canary-{tag}"
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=10) as gw:

        async def login(name: str) -> dict[str, str]:
            r = await gw.post("/auth/token", json={"username": name, "password": f"hearth-{name}"})
            assert r.status_code == 200, r.text
            return {"authorization": f"Bearer {r.json()['access_token']}"}

        operator, member = await login("operator"), await login("member")
        r = await gw.put(
            "/api/members/me/profile",
            json={"display_name": "Pat", "email": email, "phone": phone},
            headers=member,
        )
        assert r.status_code == 200, r.text
        assert r.json()["email"] == email  # stored (encrypted) and given back to its owner
        r = await gw.post("/api/members/profiles/lookup", json={"email": email}, headers=operator)
        assert r.status_code == 200 and r.json()["user_id"], r.text
        r = await gw.get("/api/members/me/export", headers=member)
        assert r.status_code == 200 and email in r.text

        r = await gw.post(
            "/api/members/communities", json={"name": "Circle", "kind": "hybrid"}, headers=operator
        )
        assert r.status_code == 201, r.text
        community = r.json()["id"]
        r = await gw.post(f"/api/members/communities/{community}/members", headers=member)
        assert r.status_code == 201, r.text

        async def posted() -> bool:
            r = await gw.post(
                f"/api/content/communities/{community}/posts",
                json={"title": canary, "body": "hello", "format": "text"},
                headers=member,
            )
            return r.status_code == 201

        assert await eventually(posted)

    roots = [platform.workdir, store]
    needles = {
        "email": email.encode(),
        "email-upper": email.upper().encode(),
        "phone": phone.encode(),
        "phone-digits": "".join(ch for ch in phone if ch.isdigit()).encode(),
        "canary": canary.encode(),
    }

    async def canary_stored() -> dict[str, list[str]] | None:
        found = _holders(roots, needles)
        return found if any("jetstream" in p for p in found["canary"]) else None

    found = await eventually(canary_stored)
    assert found is not None
    # Stop everything, so SQLite checkpoints its WAL and NATS flushes its blocks, then look again.
    platform.stop()
    found = _holders(roots, needles)
    assert any(p.endswith("content.db") or "content.db" in p for p in found["canary"]), found
    assert any("jetstream" in p for p in found["canary"]), found
    leaks = {name: paths for name, paths in found.items() if name != "canary" and paths}
    assert leaks == {}, f"plaintext PII at rest: {leaks}"

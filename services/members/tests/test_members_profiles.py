"""Member data: PII encrypted at rest (never in the database file, outbox, events or logs),
blind-index lookups, key rotation, export and pseudonymising deletion."""

from __future__ import annotations

import logging
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest

from hearth_members.app import definition
from hearth_members.profiles.crypto import DecryptionError, keyring_from
from hearth_members.settings import MembersSettings
from members_testkit import adjust, join, make_community, publish, staff
from servicekit.ids import utcnow
from servicekit.testing.backends import Backends
from servicekit.testing.harness import Broker, Identities, RunningService, eventually

EMAIL = "ada.lovelace.pii-probe@example.com"
PHONE = "+8613800138000"


def test_keyring_binds_ciphertext_to_owner_and_field(tmp_path: Path) -> None:
    settings = MembersSettings(environment="development", keys_dir=tmp_path)
    ring = keyring_from(settings)  # development: generated on first use
    key_file = tmp_path / "members-pii.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert keyring_from(settings).keys == ring.keys  # and reused afterwards
    token = ring.encrypt(EMAIL, context="email:alice")
    assert token.startswith(f"v1.{ring.active_kid}.") and EMAIL not in token
    assert ring.decrypt(token, context="email:alice") == EMAIL
    with pytest.raises(DecryptionError):
        ring.decrypt(token, context="email:bob")  # copied to another row: refused
    # Tampered: one character inside the ciphertext changed (not the last ones, whose spare
    # base64 bits may decode to the same bytes, nor to itself).
    i = len(token) - 10
    tampered = token[:i] + ("B" if token[i] == "A" else "A") + token[i + 1 :]
    with pytest.raises(DecryptionError):
        ring.decrypt(tampered, context="email:alice")
    assert ring.blind_index(" Ada@Example.com ", field="email") == ring.blind_index(
        "ada@example.com", field="email"
    )


def test_production_refuses_to_start_without_pii_keys() -> None:
    with pytest.raises(ValueError, match="PII_KEYS"):
        MembersSettings(
            environment="production",
            database_url="postgresql://db/members",
            identity_public_key="x",
        )


async def test_pii_never_reaches_the_database_file_outbox_events_or_logs(
    launch: Any,
    backends: Backends,
    identities: Identities,
    pii_settings: dict,
    make_world: Any,
    broker: Broker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = backends.database_url("members", "sqlite")
    svc = await launch(definition, database_url=url, **pii_settings)
    w = await make_world(svc, identities)
    user = uuid.uuid4()
    h = identities.headers(user)
    r = await svc.client.put(
        "/me/profile", json={"display_name": "Ada", "email": EMAIL, "phone": PHONE}, headers=h
    )
    assert r.status_code == 200, r.text
    assert r.json()["email"] == EMAIL and r.json()["phone"] == PHONE
    assert (await svc.client.post(w.url + "/members", headers=h)).status_code == 201
    r = await svc.client.put("/me/profile", json={"email": "not-an-email"}, headers=h)
    assert r.status_code == 422
    # Lookup by blind index: staff only, with the PII in a JSON body (never in the URL).
    mixed_case = "Ada.Lovelace.PII-Probe@Example.COM"
    r = await svc.client.post("/profiles/lookup", json={"email": mixed_case}, headers=h)
    assert r.status_code == 403
    staff = identities.headers(uuid.uuid4(), "operator")
    r = await svc.client.post("/profiles/lookup", json={"email": mixed_case}, headers=staff)
    assert r.status_code == 200 and r.json() == {"user_id": str(user)}
    r = await svc.client.post(
        "/profiles/lookup", json={"phone": "+86 (138) 0013-8000"}, headers=staff
    )
    assert r.status_code == 200 and r.json() == {"user_id": str(user)}
    r = await svc.client.post("/profiles/lookup", json={"email": "nobody@x.org"}, headers=staff)
    assert r.json() == {"user_id": None}
    r = await svc.client.post("/profiles/lookup", json={}, headers=staff)
    assert r.status_code == 422
    # The old query-string form is gone (a URL lands in logs: httpx's own log line would carry
    # the address, which is why this probe uses another one).
    r = await svc.client.get("/profiles/lookup?email=someone@example.org", headers=staff)
    assert r.status_code == 405
    # Export: everything about me, as JSON.
    doc = (await svc.client.get("/me/export", headers=h)).json()
    assert doc["profile"]["email"] == EMAIL
    assert [m["community_id"] for m in doc["memberships"]] == [w.community["id"]]
    assert any(n["kind"] == "welcome" for n in doc["notifications"])
    # Rotation: a second process with k2 active re-encrypts; the first still reads (k1 kept).
    rotated = await launch(definition, database_url=url, **{**pii_settings, "pii_active_kid": "k2"})
    admin = identities.headers(uuid.uuid4(), "admin")
    assert (await rotated.client.post("/pii/rotate", headers=staff)).status_code == 403
    r = await rotated.client.post("/pii/rotate", headers=admin)
    assert r.json()["rewritten"] >= 1
    assert (await rotated.client.post("/pii/rotate", headers=admin)).json() == {"rewritten": 0}
    assert (await svc.client.get("/me/profile", headers=h)).json()["email"] == EMAIL

    async def events() -> list:
        return await broker.read(f"{broker.prefix}.members.>")

    published = await eventually(events)
    # The probe: the database file (and its WAL), the outbox, events and logs hold no PII.
    db_path = Path(url.removeprefix("sqlite:///"))
    for path in (db_path, Path(f"{db_path}-wal")):
        if path.exists():
            raw = path.read_bytes()
            assert EMAIL.encode() not in raw and PHONE.encode() not in raw, path
            assert b"ada.lovelace" not in raw.lower()
    async with svc.runtime.db.session() as session:
        rows = (await session.execute(svc.runtime.tables.outbox.select())).all()
    blob = repr(rows) + repr([e.data for e in published])
    assert rows and EMAIL not in blob and PHONE not in blob and "13800138000" not in blob
    assert EMAIL not in caplog.text and PHONE not in caplog.text
    # Deletion: the profile is wiped, the membership and the user id stay.
    assert (await svc.client.delete("/me", headers=h)).status_code == 204
    after = (await svc.client.get("/me/export", headers=h)).json()
    assert after["profile"]["email"] is None and after["profile"]["display_name"] == ""
    assert after["profile"]["pseudonymised_at"]
    assert [m["user_id"] for m in after["memberships"]] == [str(user)]
    r = await svc.client.post("/profiles/lookup", json={"email": EMAIL}, headers=staff)
    assert r.json() == {"user_id": None}
    r = await svc.client.put("/me/profile", json={"display_name": "again"}, headers=h)
    assert r.status_code == 409

    async def pseudonymised() -> list:
        return await broker.read(f"{broker.prefix}.members.member.pseudonymised.v1")

    [event] = await eventually(pseudonymised)
    assert event.data == {"user_id": str(user), "pseudonymised_at": event.data["pseudonymised_at"]}
    assert (await svc.client.get("/me/export")).status_code == 401


async def test_export_holds_account_incentives_tier_and_care_journeys(
    members: RunningService, identities: Identities, nats_client: Any, subject_prefix: str
) -> None:
    c = members.client
    admin = identities.headers(uuid.uuid4(), "admin")
    login = f"export.probe-{uuid.uuid4().hex[:6]}"
    r = await c.post(
        "/accounts",
        json={"login": login, "password": "correct horse battery", "name": "Expo"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    user = uuid.UUID(r.json()["id"])
    me = identities.headers(user)
    cid = await make_community(members, identities)
    await join(members, identities, cid, user)
    await adjust(members, identities, cid, user, 50)  # a ledger entry, a balance, a tier
    base = f"/communities/{cid}"
    title = (
        await c.post(
            base + "/badges",
            json={"name": "Pathfinder", "kind": "title"},
            headers=staff(identities),
        )
    ).json()
    r = await c.post(
        f"{base}/badges/{title['id']}/grants",
        json={"user_id": str(user)},
        headers=staff(identities),
    )
    assert r.status_code == 201, r.text
    perk = (
        await c.post(
            base + "/perks", json={"name": "Mug", "cost": 10, "stock": 3}, headers=staff(identities)
        )
    ).json()
    r = await c.post(f"{base}/perks/{perk['id']}/redemptions", headers=me)
    assert r.status_code == 201, r.text
    await publish(
        nats_client,
        subject_prefix,
        "hearth.metrics.member.inactive.v1",
        {
            "community_id": cid,
            "user_id": str(user),
            "kind": "inactive",
            "inactive_days": 40,
            "detected_at": utcnow().isoformat(),
        },
    )

    async def exported() -> dict:
        doc = (await c.get("/me/export", headers=me)).json()
        # Two consumers take metrics' fact: care (the journey) and tiers (the activity).
        assert doc["care_journeys"] and doc["activity"], "metrics' fact not consumed yet"
        return doc

    doc = await eventually(exported)
    assert doc["account"]["login"] == login and doc["account"]["status"] == "active"
    assert doc["account"]["id"] == str(user) and doc["account"]["name"] == "Expo"
    raw = str(doc)
    assert "password" not in raw and "argon2" not in raw and "login_key" not in raw
    assert [(b["name"], b["kind"]) for b in doc["badges"]] == [("Pathfinder", "title")]
    assert [(x["perk"], x["cost"]) for x in doc["redemptions"]] == [("Mug", 10)]
    # 50 points made them active; metrics' inactivity fact made them regular again.
    assert [(t["community_id"], t["tier"]) for t in doc["tiers"]] == [(cid, "regular")]
    assert [b["balance"] for b in doc["balances"]] == [40]
    assert sorted(e["points"] for e in doc["ledger"]) == [-10, 50]
    [journey] = doc["care_journeys"]
    assert journey["community_id"] == cid and journey["trigger"] == "inactive"
    assert [a["community_id"] for a in doc["activity"]] == [cid]

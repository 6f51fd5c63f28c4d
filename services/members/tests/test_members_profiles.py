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
from servicekit.testing.backends import Backends
from servicekit.testing.harness import Broker, Identities, eventually

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
    with pytest.raises(DecryptionError):
        ring.decrypt(token[:-2] + "AA", context="email:alice")  # tampered
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
    # Lookup by blind index: staff only.
    r = await svc.client.get(f"/profiles/lookup?email={EMAIL.upper()}", headers=h)
    assert r.status_code == 403
    staff = identities.headers(uuid.uuid4(), "operator")
    r = await svc.client.get(f"/profiles/lookup?email={EMAIL.upper()}", headers=staff)
    assert r.json() == {"user_id": str(user)}
    r = await svc.client.get("/profiles/lookup?phone=%2B86%20138%200013%208000", headers=staff)
    assert r.json() == {"user_id": str(user)}
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
    r = await svc.client.get(f"/profiles/lookup?email={EMAIL}", headers=staff)
    assert r.json() == {"user_id": None}
    r = await svc.client.put("/me/profile", json={"display_name": "again"}, headers=h)
    assert r.status_code == 409

    async def pseudonymised() -> list:
        return await broker.read(f"{broker.prefix}.members.member.pseudonymised.v1")

    [event] = await eventually(pseudonymised)
    assert event.data == {"user_id": str(user), "pseudonymised_at": event.data["pseudonymised_at"]}
    assert (await svc.client.get("/me/export")).status_code == 401

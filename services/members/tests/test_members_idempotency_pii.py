"""The idempotency store keeps no plaintext PII, and erasure (`DELETE /me`) empties it."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import select

from servicekit.testing.harness import Identities, RunningService

EMAIL = "grace.hopper.idem-probe@example.com"
PHONE = "+8613900139000"


def _file_and_wal(path: Path) -> bytes:
    assert path.exists(), path
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


async def test_replayed_profile_writes_store_no_pii_and_erasure_forgets_them(
    members: RunningService, identities: Identities
) -> None:
    user, other = uuid.uuid4(), uuid.uuid4()
    body = {"display_name": "Grace", "email": EMAIL, "phone": PHONE}
    for who in (user, other):
        h = {**identities.headers(who), "idempotency-key": f"profile-{who}"}
        first = await members.client.put("/me/profile", json=body, headers=h)
        again = await members.client.put("/me/profile", json=body, headers=h)
        assert first.status_code == 200 and first.json()["email"] == EMAIL
        assert again.headers.get("idempotent-replayed") == "true"
        assert again.json() == first.json()  # the replay decrypts what the store sealed
    table = members.runtime.tables.idempotency_keys
    async with members.runtime.db.session() as session:
        stored = (await session.execute(select(table.c.principal, table.c.body))).all()
    assert {row.principal for row in stored} == {user, other}
    raw = b"".join(row.body for row in stored)
    if members.runtime.db.is_sqlite:  # the whole file and its WAL, not just the column
        raw += _file_and_wal(Path(str(members.runtime.db.engine.url.database)))
    for probe in (EMAIL.encode(), PHONE.encode(), b"13900139000", b"grace.hopper"):
        assert probe not in raw
    # Erasure removes the person's keys (and sealed responses), nobody else's.
    h = identities.headers(user)
    assert (await members.client.delete("/me", headers=h)).status_code == 204
    async with members.runtime.db.session() as session:
        left = (await session.execute(select(table.c.principal))).scalars().all()
    assert left == [other]

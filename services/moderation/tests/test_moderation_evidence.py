"""Evidence: a hashed snapshot at every action on an item, kept past the item's deletion, purged
by retention unless a legal hold covers it, and exported as a bundle a receiver can verify."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from hearth_moderation.app import definition
from hearth_moderation.consumers import screening
from hearth_moderation.evidence import service as evidence
from hearth_moderation.evidence.models import Evidence
from hearth_moderation.items.consumers import items
from servicekit.deps import UnitOfWork
from servicekit.ids import utcnow, uuid7
from servicekit.testing.contracts import producer_envelope
from servicekit.testing.harness import Identities, RunningService
from servicekit.testing.membership import Snapshots
from servicekit.testing.plugin import Launch

SUBMITTED = "hearth.content.post.submitted.v1"


def _key_pem() -> str:
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


async def _post(service: RunningService, community: uuid.UUID, author: uuid.UUID, body: str):  # type: ignore[no-untyped-def]
    post_id = uuid7()
    envelope = producer_envelope(
        SUBMITTED,
        {
            "post_id": str(post_id),
            "community_id": str(community),
            "author_id": str(author),
            "title": "Offer",
            "body": body,
            "format": "text",
            "submitted_at": utcnow().isoformat(),
        },
    )
    runtime = service.runtime
    # Both of moderation's consumers read the submission; screening's verdict is the action.
    assert await screening.handle(runtime.db, runtime.tables, envelope)
    assert await items.handle(runtime.db, runtime.tables, envelope)
    return post_id


async def _moderator(service: RunningService, community: uuid.UUID) -> uuid.UUID:
    from hearth_moderation.consumers import memberships

    snaps = Snapshots()
    mod = uuid7()
    envelope = snaps.membership(community, mod, role="moderator")
    assert await memberships.handle(service.runtime.db, service.runtime.tables, envelope)
    member = snaps.membership(community, uuid.UUID(int=7))
    assert await memberships.handle(service.runtime.db, service.runtime.tables, member)
    return mod


async def _evidence(service: RunningService) -> list[Evidence]:
    async with service.runtime.db.session() as session:
        rows = await session.execute(select(Evidence).order_by(Evidence.captured_at))  # type: ignore[arg-type]
        return list(rows.scalars())


async def test_each_action_keeps_a_snapshot_that_outlives_the_item(
    moderation: RunningService, identities: Identities
) -> None:
    community, author = uuid7(), uuid7()
    mod = await _moderator(moderation, community)
    post_id = await _post(moderation, community, author, "加微信 for a discount code")
    [piece] = await _evidence(moderation)
    snapshot = json.loads(piece.snapshot)
    assert piece.action == "hearth.moderation.screening.completed.v1"
    assert (piece.item_type, piece.item_id, piece.community_id) == ("post", post_id, community)
    assert snapshot["text"] == "加微信 for a discount code" and snapshot["title"] == "Offer"
    assert snapshot["author_id"] == str(author) and snapshot["item_known"] is True
    assert piece.sha256 == hashlib.sha256(piece.snapshot.encode()).hexdigest()
    assert piece.audit_seq == 1  # the audit record of the same action

    deleted = producer_envelope(
        "hearth.content.post.deleted.v1",
        {
            "post_id": str(post_id),
            "community_id": str(community),
            "author_id": str(author),
            "deleted_by": str(author),
            "deleted_at": utcnow().isoformat(),
        },
    )
    assert await items.handle(moderation.runtime.db, moderation.runtime.tables, deleted)
    r = await moderation.client.get(
        f"/communities/{community}/evidence",
        params={"item_type": "post", "item_id": str(post_id)},
        headers=identities.headers(mod),
    )
    assert r.status_code == 200, r.text
    [shown] = r.json()["items"]
    assert shown["snapshot"]["text"] == "加微信 for a discount code"  # the item is gone, not this
    r = await moderation.client.get(
        f"/communities/{community}/evidence", headers=identities.headers(uuid.UUID(int=7))
    )
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"


async def test_retention_purges_unless_a_legal_hold_covers_it(
    moderation: RunningService, identities: Identities
) -> None:
    community, author = uuid7(), uuid7()
    mod = await _moderator(moderation, community)
    held_post = await _post(moderation, community, author, "keep me")
    other_post = await _post(moderation, community, author, "let me go")
    headers = identities.headers(mod)
    r = await moderation.client.put(
        f"/communities/{community}/evidence/retention", json={"days": 1}, headers=headers
    )
    assert r.status_code == 200 and r.json() == {
        "community_id": str(community),
        "days": 1,
        "default": False,
    }, r.text
    assert (
        await moderation.client.put(
            f"/communities/{community}/evidence/retention", json={"days": 0}, headers=headers
        )
    ).status_code == 422
    r = await moderation.client.post(
        f"/communities/{community}/legal-holds",
        json={"item_type": "post", "item_id": str(held_post), "reason": "court order 17"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    hold = r.json()["id"]
    r = await moderation.client.post(
        f"/communities/{community}/legal-holds",
        json={"item_type": "post", "item_id": str(uuid7()), "reason": "x"},
        headers=headers,
    )
    assert r.status_code == 404, r.text  # not an item of this community

    runtime = moderation.runtime

    async def purge(days_later: float) -> int:
        async with runtime.db.session() as session:
            return await evidence.purge(
                UnitOfWork(session, runtime),
                default_days=365,
                now=utcnow() + timedelta(days=days_later),
            )

    before = len(await _evidence(moderation))
    assert await purge(0.5) == 0  # inside retention
    assert await purge(2) == before - 2  # the unheld post's snapshot(s) only
    left = {e.item_id for e in await _evidence(moderation)}
    assert held_post in left and other_post not in left
    outbox = definition.tables.outbox
    async with runtime.db.session() as session:
        purged = (
            await session.execute(
                select(func.count()).where(
                    outbox.c.event_type == "hearth.moderation.evidence.purged.v1"
                )
            )
        ).scalar_one()
    assert purged == 1

    r = await moderation.client.post(
        f"/communities/{community}/legal-holds/{hold}/release", headers=headers
    )
    assert r.status_code == 200 and r.json()["released_at"], r.text
    # A community-wide hold suspends deletion of every item's evidence.
    r = await moderation.client.post(
        f"/communities/{community}/legal-holds", json={"reason": "regulator"}, headers=headers
    )
    assert r.status_code == 201, r.text
    assert await purge(2) == 0
    await moderation.client.post(
        f"/communities/{community}/legal-holds/{r.json()['id']}/release", headers=headers
    )
    # Placing and releasing holds are actions on the item too: they were snapshotted, and
    # with every hold released, retention takes all of them.
    remaining = await _evidence(moderation)
    assert {e.item_id for e in remaining} == {held_post} and len(remaining) >= 3
    assert await purge(2) == len(remaining)
    assert await _evidence(moderation) == []
    r = await moderation.client.get(
        f"/communities/{community}/legal-holds", params={"active": "true"}, headers=headers
    )
    assert r.status_code == 200 and r.json() == []


async def test_a_case_exports_as_a_bundle_a_receiver_verifies(
    launch: Launch, identities: Identities
) -> None:
    pem = _key_pem()
    moderation = await launch(definition, evidence_signing_key=pem)
    community, author = uuid7(), uuid7()
    mod = await _moderator(moderation, community)
    post_id = await _post(moderation, community, author, "click here")
    headers = identities.headers(mod)
    r = await moderation.client.post(
        f"/communities/{community}/legal-holds",
        json={"item_type": "post", "item_id": str(post_id), "reason": "case 42"},
        headers=headers,
    )
    assert r.status_code == 201

    async def reports(session, ref):  # type: ignore[no-untyped-def]
        return [{"reason": "spam", "item_id": str(ref.item_id)}]

    previous = evidence.SECTIONS.get("reports")  # the reports package's own section
    evidence.register_section("reports", reports)  # as the review queue does, at wiring time
    try:
        r = await moderation.client.post(
            f"/communities/{community}/cases/post/{post_id}/export", headers=headers
        )
    finally:
        evidence.SECTIONS.pop("reports")
        if previous is not None:
            evidence.register_section("reports", previous)
    assert r.status_code == 200, r.text
    export = r.json()

    # What a receiver does: check the signature over the bundle's exact bytes with the public
    # key it trusts (compare the key id), then read the bundle.
    public = Ed25519PrivateKey.from_private_bytes(
        serialization.load_pem_private_key(pem.encode(), password=None).private_bytes(  # type: ignore[union-attr]
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    ).public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert export["signature"]["key_id"] == hashlib.sha256(raw).hexdigest()[:16]
    signature = base64.b64decode(export["signature"]["value"])
    public.verify(signature, export["bundle"].encode())
    assert export["sha256"] == hashlib.sha256(export["bundle"].encode()).hexdigest()
    tampered = export["bundle"].replace("click here", "click hers")
    try:
        public.verify(signature, tampered.encode())
        raise AssertionError("a changed bundle must not verify")
    except InvalidSignature:
        pass

    bundle = json.loads(export["bundle"])
    assert bundle["format"] == "hearth.moderation.case-bundle.v1"
    assert bundle["case"] == {
        "community_id": str(community),
        "item_type": "post",
        "item_id": str(post_id),
    }
    sections = bundle["sections"]
    assert sections["item"]["text"] == "click here"
    assert sections["reports"] == [{"reason": "spam", "item_id": str(post_id)}]
    assert [h["reason"] for h in sections["legal_holds"]] == ["case 42"]
    for piece in sections["evidence"]:
        assert hashlib.sha256(piece["snapshot"].encode()).hexdigest() == piece["sha256"]
    types = [json.loads(a["body"])["event_type"] for a in sections["audit"]]
    assert types == [
        "hearth.moderation.screening.completed.v1",
        "hearth.moderation.legal_hold.placed.v1",
    ]
    for record in sections["audit"]:
        assert hashlib.sha256(record["body"].encode()).hexdigest() == record["hash"]
    assert bundle["audit_chain_head"]["seq"] >= sections["audit"][-1]["seq"]

    # A member may not export; an unknown item is a 404.
    r = await moderation.client.post(
        f"/communities/{community}/cases/post/{post_id}/export",
        headers=identities.headers(uuid.UUID(int=7)),
    )
    assert r.status_code == 403
    r = await moderation.client.post(
        f"/communities/{community}/cases/post/{uuid7()}/export", headers=headers
    )
    assert r.status_code == 404


async def test_export_without_a_signing_key_is_a_503(
    moderation: RunningService, identities: Identities
) -> None:
    community = uuid7()
    mod = await _moderator(moderation, community)
    post_id = await _post(moderation, community, uuid7(), "hello")
    r = await moderation.client.post(
        f"/communities/{community}/cases/post/{post_id}/export", headers=identities.headers(mod)
    )
    assert r.status_code == 503 and r.json()["type"].endswith(":signing-key-missing"), r.text

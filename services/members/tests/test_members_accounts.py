"""Accounts for the gateway's built-in issuer: argon2id, uniform failures, service-only routes."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from argon2 import PasswordHasher

from hearth_members.accounts import service as accounts_service
from hearth_members.settings import MembersSettings
from servicekit.identity import Principal
from servicekit.testing.harness import Identities, RunningService

GATEWAY = uuid.UUID("00000000-0000-7000-8000-0000000000ff")


def _gateway(identities: Identities, *scopes: str, subject: uuid.UUID = GATEWAY) -> dict[str, str]:
    principal = Principal(subject=subject, kind="service", name="gateway", scopes=frozenset(scopes))
    return {"x-hearth-identity": identities.signer.sign(principal)}


class SpyHasher(PasswordHasher):
    """The real argon2id hasher, recording which hash each verification ran against."""

    def __init__(self) -> None:
        super().__init__()
        self.verified: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified.append(hash if isinstance(hash, str) else hash.decode())
        return super().verify(hash, password)


def test_the_default_caller_is_the_gateways_own_subject() -> None:
    from hearth_gateway.accounts import GATEWAY_SERVICE_SUBJECT

    assert MembersSettings(environment="test").gateway_service_subject == GATEWAY_SERVICE_SUBJECT


async def test_create_verify_disable_and_refusals(
    members: RunningService, identities: Identities, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = identities.headers(uuid.uuid4(), "admin")
    body = {
        "login": "Ada.Lovelace",
        "password": "correct horse battery",
        "name": "Ada",
        "email": "ada@example.com",
        "roles": ["member", "operator"],
    }
    # Refused: an operator or a member cannot create accounts.
    for who in (identities.headers(uuid.uuid4(), "operator"), identities.headers()):
        assert (await members.client.post("/accounts", json=body, headers=who)).status_code == 403
    r = await members.client.post("/accounts", json={**body, "password": "short"}, headers=admin)
    assert r.status_code == 422
    r = await members.client.post("/accounts", json={**body, "roles": ["root"]}, headers=admin)
    assert r.status_code == 422
    # A login may not look like an e-mail address (that would be PII stored in plain text).
    r = await members.client.post(
        "/accounts", json={**body, "login": "ada@example.com"}, headers=admin
    )
    assert r.status_code == 422
    r = await members.client.post("/accounts", json=body, headers=admin)
    assert r.status_code == 201, r.text
    account = r.json()
    assert "password" not in r.text and "argon2" not in r.text
    r = await members.client.post(
        "/accounts", json={**body, "login": "ADA.LOVELACE"}, headers=admin
    )
    assert r.status_code == 409  # unique ignoring case
    gw = _gateway(identities, "accounts:verify", "accounts:provision")
    r = await members.client.post(
        "/internal/accounts/verify",
        json={"login": "ada.lovelace", "password": "correct horse battery"},
        headers=gw,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "subject": account["id"],
        "name": "Ada",
        "roles": ["member", "operator"],
        "status": "active",
    }
    # Wrong password and unknown login: the same problem, and both pay for one argon2
    # verification (the unknown login against the dummy hash), so timing tells them apart no
    # better than the answer does. Proven by watching the hasher, not by a stopwatch.
    spy = SpyHasher()
    monkeypatch.setattr(accounts_service, "_hasher", spy)
    for creds in (
        {"login": "ada.lovelace", "password": "wrong password!"},
        {"login": "nobody", "password": "wrong password!"},
    ):
        r = await members.client.post("/internal/accounts/verify", json=creds, headers=gw)
        assert r.status_code == 401 and r.json()["type"].endswith("invalid-credentials")
    [wrong, unknown] = spy.verified
    assert wrong.startswith("$argon2id$") and wrong != accounts_service._DUMMY_HASH
    assert unknown == accounts_service._DUMMY_HASH and unknown.startswith("$argon2id$")
    # Refused: users, admins, the gateway without the scope, and any other service principal
    # even with the scope (an API key's principal is a service too).
    for headers in (
        identities.headers(uuid.uuid4(), "admin"),
        _gateway(identities, "accounts:provision"),
        _gateway(identities, "accounts:verify", "accounts:provision", subject=uuid.uuid4()),
    ):
        r = await members.client.post(
            "/internal/accounts/verify",
            json={"login": "ada.lovelace", "password": "correct horse battery"},
            headers=headers,
        )
        assert r.status_code == 403
    # Disable: verify answers 403 account-disabled.
    r = await members.client.patch(
        f"/accounts/{account['id']}", json={"status": "disabled"}, headers=identities.headers()
    )
    assert r.status_code == 403
    r = await members.client.patch(
        f"/accounts/{account['id']}", json={"status": "disabled"}, headers=admin
    )
    assert r.status_code == 200 and r.json()["status"] == "disabled"
    r = await members.client.post(
        "/internal/accounts/verify",
        json={"login": "Ada.Lovelace", "password": "correct horse battery"},
        headers=gw,
    )
    assert r.status_code == 403 and r.json()["type"].endswith("account-disabled")
    r = await members.client.get(f"/accounts/{account['id']}", headers=admin)
    assert r.json()["status"] == "disabled"
    assert (await members.client.get(f"/accounts/{uuid.uuid4()}", headers=admin)).status_code == 404
    r = await members.client.get(f"/accounts/{account['id']}", headers=identities.headers())
    assert r.status_code == 403


async def test_provision_is_idempotent_per_issuer_subject(
    members: RunningService, identities: Identities
) -> None:
    gw = _gateway(identities, "accounts:provision")
    body = {
        "issuer": "https://idp.example.com",
        "external_subject": "abc-123",
        "email": "grace@example.com",
        "name": "Grace",
        "roles": ["member"],
    }
    results = await asyncio.gather(
        *(
            members.client.post("/internal/accounts/provision", json=body, headers=gw)
            for _ in range(5)
        )
    )
    assert {r.status_code for r in results} == {200}, [r.text for r in results]
    assert len({r.json()["subject"] for r in results}) == 1
    subject = results[0].json()["subject"]
    other = await members.client.post(
        "/internal/accounts/provision", json={**body, "issuer": "https://other"}, headers=gw
    )
    assert other.json()["subject"] != subject
    r = await members.client.post(
        "/internal/accounts/provision", json={**body, "roles": ["member", "operator"]}, headers=gw
    )
    assert r.json()["subject"] == subject and r.json()["roles"] == ["member", "operator"]
    # The e-mail arrived verified (the issuer vouches for it) and encrypted in the profile.
    me = identities.headers(uuid.UUID(subject))
    profile = (await members.client.get("/me/profile", headers=me)).json()
    assert profile["email"] == "grace@example.com" and profile["email_verified"] is True
    # Refused: without the scope, as a user, or as another service holding the scope.
    for headers in (
        _gateway(identities, "accounts:verify"),
        identities.headers(None, "admin"),
        _gateway(identities, "accounts:provision", subject=uuid.uuid4()),
    ):
        r = await members.client.post("/internal/accounts/provision", json=body, headers=headers)
        assert r.status_code == 403
    r = await members.client.post(
        "/internal/accounts/provision", json={**body, "roles": ["god"]}, headers=gw
    )
    assert r.status_code == 422
    # An issuer's malformed e-mail does not fail provisioning (it is just not stored).
    odd = {**body, "external_subject": "odd", "email": "not@valid"}
    r = await members.client.post("/internal/accounts/provision", json=odd, headers=gw)
    assert r.status_code == 200
    # Deleting my data closes the account and unlinks the external identity.
    assert (await members.client.delete("/me", headers=me)).status_code == 204
    admin = identities.headers(uuid.uuid4(), "admin")
    closed = (await members.client.get(f"/accounts/{subject}", headers=admin)).json()
    assert closed["status"] == "disabled" and closed["name"] == ""
    r = await members.client.post("/internal/accounts/provision", json=body, headers=gw)
    assert r.json()["subject"] != subject


async def test_internal_domain_auto_approval_from_verified_email(
    members: RunningService, identities: Identities, make_world
) -> None:
    w = await make_world(
        members, identities, join_policy="approval", auto_approve_email_domains=["example.com"]
    )
    gw = _gateway(identities, "accounts:provision")
    employee = await members.client.post(
        "/internal/accounts/provision",
        json={"issuer": "corp", "external_subject": "e1", "email": "bo@Example.com", "roles": []},
        headers=gw,
    )
    emp = uuid.UUID(employee.json()["subject"])
    r = await members.client.post(w.url + "/applications", json={}, headers=w.h(emp))
    assert r.status_code == 201 and r.json()["status"] == "approved", r.text
    # Self-declared (unverified) address in the same domain: a human reviews.
    stranger = uuid.uuid4()
    await members.client.put(
        "/me/profile", json={"email": "eve@example.com"}, headers=w.h(stranger)
    )
    r = await members.client.post(w.url + "/applications", json={}, headers=w.h(stranger))
    assert r.status_code == 201 and r.json()["status"] == "pending"

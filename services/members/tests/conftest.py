"""Members tests run the real service: its own database and real NATS."""

import base64
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from hearth_members.app import definition
from members_testkit import SmtpSink, WebhookReceiver
from servicekit.testing.backends import Backends
from servicekit.testing.harness import Identities, RunningService, running_service, test_settings


def _key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


# A keyring per test session (two keys, so rotation can be exercised by switching the active one).
PII: dict[str, Any] = {
    "pii_keys": {"k1": _key(), "k2": _key()},
    "pii_active_kid": "k1",
    "pii_index_key": _key(),
}


@pytest.fixture
async def members(
    backends: Backends, nats_url: str, subject_prefix: str, identities: Identities
) -> AsyncIterator[RunningService]:
    """A running members service."""
    settings = test_settings(
        definition,
        database_url=backends.database_url("members", migrations=definition.migrations_dir),
        nats_url=nats_url,
        subject_prefix=subject_prefix,
        identity_public_key=identities.public_pem,
        **PII,
    )
    async with running_service(definition, settings) as service:
        yield service


@pytest.fixture
def pii_settings() -> dict[str, Any]:
    """Settings values of the test keyring (for services started with `launch`)."""
    return dict(PII)


@dataclass
class World:
    svc: RunningService
    ids: Identities
    community: dict
    operator: uuid.UUID
    owner: uuid.UUID
    admin: uuid.UUID
    admin2: uuid.UUID
    mod: uuid.UUID
    member: uuid.UUID

    def h(self, who: uuid.UUID) -> dict[str, str]:
        if who == self.operator:
            return self.ids.headers(who, "operator")
        return self.ids.headers(who)

    @property
    def url(self) -> str:
        return f"/communities/{self.community['id']}"


async def _make_world(svc: RunningService, ids: Identities, **settings: object) -> World:
    """A community owned by a plain user, with an admin, a second admin, a moderator, a member."""
    operator = uuid.uuid4()
    body = {"name": "Guild", "kind": "internal", **settings, "join_policy": "open"}
    r = await svc.client.post("/communities", json=body, headers=ids.headers(operator, "operator"))
    assert r.status_code == 201, r.text
    w = World(svc, ids, r.json(), operator, *(uuid.uuid4() for _ in range(5)))
    for who in (w.owner, w.admin, w.admin2, w.mod, w.member):
        r = await svc.client.post(w.url + "/members", headers=w.h(who))
        assert r.status_code == 201, r.text
    r = await svc.client.post(
        w.url + "/ownership",
        json={"new_owner_id": str(w.owner), "reason": "setup"},
        headers=w.h(operator),
    )
    assert r.status_code == 200, r.text
    for who, role in ((w.admin, "admin"), (w.admin2, "admin"), (w.mod, "moderator")):
        r = await svc.client.put(
            f"{w.url}/members/{who}/role", json={"role": role}, headers=w.h(w.owner)
        )
        assert r.status_code == 200, r.text
    policy = settings.get("join_policy", "open")
    if policy != "open":
        r = await svc.client.patch(w.url, json={"join_policy": policy}, headers=w.h(w.owner))
        assert r.status_code == 200, r.text
    return w


@pytest.fixture
def make_world() -> Callable[..., Awaitable[World]]:
    """`await make_world(service, identities, **community settings)`: a staffed community."""
    return _make_world


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A real local webhook receiver, stopped after the test."""
    r = WebhookReceiver().start()
    yield r
    r.stop()


@pytest.fixture
async def smtp_sink() -> AsyncIterator[SmtpSink]:
    """A real local SMTP server, stopped after the test."""
    sink = await SmtpSink().start()
    yield sink
    await sink.stop()

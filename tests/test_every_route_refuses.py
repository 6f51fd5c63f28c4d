"""Every route of every service refuses a caller the gateway did not vouch for.

Walks each service's real route table, so a route added tomorrow is covered without anyone
remembering to write its test: no assertion, an assertion signed by a key the service does not
know, an expired one, and one minted for another audience all get a 401 problem — before any
handler, database or broker is touched (the app runs without its lifespan here, so a request
that slipped past the identity middleware would fail loudly instead of passing).
Role refusals inside each context (member vs admin, moderator vs owner…) are in the services'
own tests; this is the floor under them.
"""

from __future__ import annotations

import importlib
import re
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servicekit.identity import (
    ASSERTION_AUDIENCE,
    ASSERTION_ISSUER,
    AssertionSigner,
    Principal,
    generate_keypair,
)
from servicekit.testing.platform import CONTEXTS

# Served without an assertion on purpose: probes for the kubelet, metrics for Prometheus, and
# the service's OpenAPI document for the gateway's merged /docs. Nothing else may join them.
OPEN_PATHS = {"/healthz", "/readyz", "/metrics", "/openapi.json"}
PARAM = re.compile(r"{([^}:]+)(:[^}]+)?}")


def _app(context: str, public_key: str) -> Any:
    module = importlib.import_module(f"hearth_{context}.app")
    settings = module.definition.settings_cls(environment="test", identity_public_key=public_key)
    return module.create_app(settings)


def _operations(app: Any) -> list[tuple[str, str]]:
    """(method, concrete path) for every documented operation, parameters filled with UUIDs."""
    ops: list[tuple[str, str]] = []
    for path, operations in app.openapi()["paths"].items():
        if path in OPEN_PATHS:
            continue
        concrete = PARAM.sub(lambda _: str(uuid.uuid4()), path)
        ops.extend((method.upper(), concrete) for method in sorted(operations))
    return ops


def _forged(private_pem: str | None, **overrides: Any) -> str:
    """An assertion like the gateway's, with claims changed, or signed by a stranger's key."""
    now = int(time.time())
    claims = {
        "iss": ASSERTION_ISSUER,
        "aud": ASSERTION_AUDIENCE,
        "sub": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 60,
        "rol": ["admin"],
    } | overrides
    key = (
        serialization.load_pem_private_key(private_pem.encode(), password=None)
        if private_pem
        else Ed25519PrivateKey.generate()
    )
    return jwt.encode(claims, key, algorithm="EdDSA")  # type: ignore[arg-type]


@pytest.mark.parametrize("context", CONTEXTS)
async def test_every_route_refuses_callers_without_a_valid_assertion(context: str) -> None:
    private, public = generate_keypair()
    app = _app(context, public)
    ops = _operations(app)
    # The walk found the context's own routes, and the kit's admin routes among them.
    assert len(ops) >= 4, ops
    assert ("GET", "/admin/outbox") in ops, ops
    admin = AssertionSigner(private).sign(
        Principal(subject=uuid.uuid4(), roles=frozenset({"admin"}))
    )
    refused = {
        "no assertion": {},
        "unknown key": {"x-hearth-identity": _forged(None)},
        "expired": {"x-hearth-identity": _forged(private, iat=1, exp=2)},
        "other audience": {"x-hearth-identity": _forged(private, aud="somebody-else")},
        "not a token": {"x-hearth-identity": "admin"},
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        for method, path in ops:
            for why, headers in refused.items():
                r = await client.request(method, path, headers=headers, json={})
                assert r.status_code == 401, (why, method, path, r.status_code, r.text)
                assert r.headers["content-type"] == "application/problem+json", (why, path)
                assert r.json()["type"].endswith(":unauthenticated"), (why, path)
        # The control: a valid assertion gets past the middleware. The handler then fails for
        # want of the runtime the lifespan would install, which proves that the 401s above
        # came from identity alone.
        method, path = ops[0]
        try:
            r = await client.request(method, path, headers={"x-hearth-identity": admin}, json={})
            passed = r.status_code != 401
        except AttributeError:  # app.state.runtime: reached a dependency, past identity
            passed = True
        assert passed, (method, path)

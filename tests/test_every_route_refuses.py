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


# --- Input no database can hold --------------------------------------------------------------
# The same walk, on running services (real database: PostgreSQL in CI, SQLite with
# HEARTH_TEST_DB=sqlite): every JSON body gets a NUL in each string field, then an integer
# beyond 64 bits in each integer field. The answer is a 4xx problem, never a 500; a route whose
# dependencies refuse first (a 404 for the random ids, a 403) still proves no 500, and each
# service must show the refusal itself (a 422 naming the reason) on the routes it reaches.

NUL = "x\u0000y"


def _resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """The schema behind a $ref (one level of allOf/anyOf collapsed to its first object)."""
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _types(schema: dict[str, Any], doc: dict[str, Any]) -> set[str]:
    """The JSON types a property schema allows (anyOf/oneOf flattened)."""
    schema = _resolve(schema, doc)
    options = schema.get("anyOf") or schema.get("oneOf") or [schema]
    found: set[str] = set()
    for option in options:
        option = _resolve(option, doc)
        kind = option.get("type")
        found.update(kind if isinstance(kind, list) else [kind] if kind else ["object"])
    return found


def _filler(types: set[str]) -> Any:
    """A plain value of one of the types (so only the planted value is unusual)."""
    for kind, value in (("string", "x"), ("integer", 1), ("number", 1), ("boolean", False)):
        if kind in types:
            return value
    return [] if "array" in types else None if "null" in types else {}


def _bodies(doc: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(what, method, path, body): one body per planted value kind the schema has room for."""
    out: list[tuple[str, str, str, dict[str, Any]]] = []
    for path, operations in doc["paths"].items():
        if path in OPEN_PATHS:
            continue
        concrete = PARAM.sub(lambda _: str(uuid.uuid4()), path)
        for method, op in operations.items():
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            schema = _resolve(content["application/json"]["schema"], doc)
            props = {k: _types(v, doc) for k, v in schema.get("properties", {}).items()}
            for what, kind, planted in (("nul", "string", NUL), ("int", "integer", 10**30)):
                if any(kind in t for t in props.values()):
                    body = {k: planted if kind in t else _filler(t) for k, t in props.items()}
                    out.append((what, method.upper(), concrete, body))
    return out


@pytest.mark.parametrize("context", CONTEXTS)
async def test_every_json_body_refuses_what_no_database_can_hold(
    context: str, launch: Any, identities: Any
) -> None:
    definition = importlib.import_module(f"hearth_{context}.app").definition
    svc = await launch(definition)
    bodies = _bodies(svc.app.openapi())
    headers = identities.headers(uuid.uuid4(), "admin", "operator")
    seen: dict[str, int] = {"nul": 0, "int": 0}
    for what, method, path, body in bodies:
        r = await svc.client.request(method, path, json=body, headers=headers)
        assert 400 <= r.status_code < 500, (what, method, path, r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json", (what, path, r.text)
        reason = {"nul": "control character U+0000", "int": "out of the 64-bit range"}[what]
        if r.status_code == 422 and reason in r.text:
            seen[what] += 1
    # Each kind planted at least once must have been refused for its own reason somewhere.
    for what in {what for what, *_ in bodies}:
        assert seen[what] >= 1, (context, what, seen, len(bodies))
    if context in ("members", "content", "events"):  # the contexts that take JSON bodies
        assert seen["nul"] >= 1, (context, seen)


# --- Roles refused on content's discussion routes ---------------------------------------------
# Every comment and reaction route (and search), called on a published post by someone who
# must be refused: a stranger to a private community (404: the post is not revealed; search
# finds nothing), a muted member (403 that names the mute's end) and, for edit/delete, a member
# who did not write the comment (403).


async def test_discussion_routes_refuse_outsiders_muted_and_non_authors(
    launch: Any, identities: Any
) -> None:
    from datetime import timedelta

    from hearth_content.app import definition
    from hearth_content.consumers import memberships, screening
    from servicekit.events import Envelope
    from servicekit.ids import utcnow, uuid7
    from servicekit.testing.membership import Snapshots

    svc = await launch(definition)
    runtime = svc.runtime
    snaps = Snapshots()
    owner, author, muted, stranger, other = (uuid.uuid4() for _ in range(5))
    community = uuid.uuid4()
    assert await memberships.handle(
        runtime.db, runtime.tables, snaps.community(community, owner, visibility="private")
    )
    for user, state in ((owner, {}), (author, {}), (other, {})):
        assert await memberships.handle(
            runtime.db, runtime.tables, snaps.membership(community, user, **state)
        )
    until = utcnow() + timedelta(hours=1)
    assert await memberships.handle(
        runtime.db, runtime.tables, snaps.membership(community, muted, muted_until=until)
    )
    r = await svc.client.post(
        f"/communities/{community}/posts",
        json={"title": "t", "body": "b", "format": "text"},
        headers=identities.headers(author),
    )
    post = r.json()["id"]
    verdict = Envelope(
        id=uuid7(),
        source="/hearth/moderation",
        type="hearth.moderation.screening.completed.v1",
        time=utcnow(),
        data={
            "screening_id": str(uuid7()),
            "target_type": "post",
            "target_id": post,
            "community_id": str(community),
            "author_id": None,
            "decision": "approved",
            "reasons": [],
            "screened_at": utcnow().isoformat(),
        },
    )
    assert await screening.handle(runtime.db, runtime.tables, verdict)
    r = await svc.client.post(
        f"/posts/{post}/comments", json={"body": "mine"}, headers=identities.headers(author)
    )
    assert r.status_code == 201, r.text
    comment = r.json()["id"]

    calls = [
        ("POST", f"/posts/{post}/comments", {"body": "x"}),
        ("GET", f"/posts/{post}/comments", None),
        ("PUT", f"/posts/{post}/reactions", {"kind": "like"}),
        ("DELETE", f"/posts/{post}/reactions/like", None),
        ("GET", f"/posts/{post}/reactions", None),
        ("PATCH", f"/comments/{comment}", {"body": "x"}),
        ("DELETE", f"/comments/{comment}", None),
    ]
    writes = {("POST", calls[0][1]), ("PUT", calls[2][1]), ("DELETE", calls[3][1])}
    for method, path, body in calls:
        r = await svc.client.request(method, path, json=body, headers=identities.headers(stranger))
        assert r.status_code == 404, ("stranger", method, path, r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        if (method, path) in writes:
            r = await svc.client.request(method, path, json=body, headers=identities.headers(muted))
            assert r.status_code == 403, ("muted", method, path, r.text)
            assert r.json()["muted_until"], r.text
    # Search refuses by finding nothing: a stranger gets none of the private community's words.
    r = await svc.client.get("/search", params={"q": "mine"}, headers=identities.headers(stranger))
    assert r.status_code == 200 and r.json() == [], r.text
    r = await svc.client.get("/search", params={"q": "mine"}, headers=identities.headers(other))
    assert [h["id"] for h in r.json()] == [comment], r.text  # the control: a member finds it
    for method, path, body in calls[5:]:
        r = await svc.client.request(method, path, json=body, headers=identities.headers(other))
        assert r.status_code == 403, ("not the author", method, path, r.text)
        assert r.json()["type"].endswith(":not-the-author")


# --- Roles refused on content's polls, ranking and column routes -----------------------------
# A stranger to a private community gets 404 (nothing is revealed) or 403 on every poll and
# list route; a muted member's writes (open a poll, vote) are 403 with the mute's end; a member
# who neither wrote the poll nor runs the community cannot close it, change or delete a column,
# or list flagged content (403).


async def test_poll_ranking_and_column_routes_refuse_outsiders_muted_and_members(
    launch: Any, identities: Any
) -> None:
    from datetime import timedelta

    from hearth_content.app import definition
    from hearth_content.consumers import memberships
    from servicekit.ids import utcnow
    from servicekit.testing.membership import Snapshots

    svc = await launch(definition)
    runtime = svc.runtime
    snaps = Snapshots()
    owner, member, muted, stranger = (uuid.uuid4() for _ in range(4))
    community = uuid.uuid4()
    assert await memberships.handle(
        runtime.db, runtime.tables, snaps.community(community, owner, visibility="private")
    )
    assert await memberships.handle(
        runtime.db, runtime.tables, snaps.membership(community, owner, role="owner")
    )
    assert await memberships.handle(runtime.db, runtime.tables, snaps.membership(community, member))
    until = utcnow() + timedelta(hours=1)
    assert await memberships.handle(
        runtime.db, runtime.tables, snaps.membership(community, muted, muted_until=until)
    )
    as_owner = identities.headers(owner)
    r = await svc.client.post(
        f"/communities/{community}/polls",
        json={"question": "q", "options": ["a", "b"]},
        headers=as_owner,
    )
    assert r.status_code == 201, r.text
    poll, option = r.json()["id"], r.json()["options"][0]["id"]
    r = await svc.client.post(
        f"/communities/{community}/columns",
        json={"name": "weekly", "cadence": "weekly", "weekday": 0, "hour": 9},
        headers=as_owner,
    )
    assert r.status_code == 201, r.text
    column = r.json()["id"]

    calls = [
        ("POST", f"/communities/{community}/polls", {"question": "q", "options": ["a", "b"]}),
        ("GET", f"/communities/{community}/polls", None),
        ("GET", f"/polls/{poll}", None),
        ("PUT", f"/polls/{poll}/vote", {"option_ids": [option]}),
        ("POST", f"/polls/{poll}/close", None),
        ("GET", f"/communities/{community}/hot", None),
        ("GET", f"/communities/{community}/unanswered", None),
        ("PATCH", f"/columns/{column}", {"description": "x"}),
        ("DELETE", f"/columns/{column}", None),
        ("GET", f"/communities/{community}/flagged", None),
    ]
    writes = {("POST", calls[0][1]), ("PUT", calls[3][1])}
    for method, path, body in calls:
        r = await svc.client.request(method, path, json=body, headers=identities.headers(stranger))
        assert r.status_code in (403, 404), ("stranger", method, path, r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        if (method, path) in writes:
            r = await svc.client.request(method, path, json=body, headers=identities.headers(muted))
            assert r.status_code == 403, ("muted", method, path, r.text)
            assert r.json()["muted_until"], r.text
    for method, path, body in calls[4:5] + calls[7:]:
        r = await svc.client.request(method, path, json=body, headers=identities.headers(member))
        assert r.status_code == 403, ("member", method, path, r.text)
    # The control: the member may vote, the owner may close.
    r = await svc.client.put(
        f"/polls/{poll}/vote", json={"option_ids": [option]}, headers=identities.headers(member)
    )
    assert r.status_code == 200, r.text
    r = await svc.client.post(f"/polls/{poll}/close", headers=as_owner)
    assert r.status_code == 200 and r.json()["is_closed"], r.text


# --- Roles refused on content's surveys and suggestion box ------------------------------------
# Every survey and suggestion route (the walk checks it has them all), called by someone who
# must be refused: a stranger to a private community (404: nothing is revealed), a muted member
# on the routes that write (403 naming the mute's end), and a plain member on the team's routes
# (close, export, status, official replies: 403).


async def test_survey_and_suggestion_routes_refuse_outsiders_muted_and_members(
    launch: Any, identities: Any
) -> None:
    from datetime import timedelta

    from hearth_content.app import definition
    from hearth_content.consumers import memberships
    from servicekit.ids import utcnow
    from servicekit.testing.membership import Snapshots

    svc = await launch(definition)
    runtime = svc.runtime
    snaps = Snapshots()
    owner, member, muted, stranger = (uuid.uuid4() for _ in range(4))
    community = uuid.uuid4()
    assert await memberships.handle(
        runtime.db, runtime.tables, snaps.community(community, owner, visibility="private")
    )
    for user in (owner, member):
        assert await memberships.handle(
            runtime.db, runtime.tables, snaps.membership(community, user)
        )
    until = utcnow() + timedelta(hours=1)
    assert await memberships.handle(
        runtime.db, runtime.tables, snaps.membership(community, muted, muted_until=until)
    )
    survey_body = {
        "title": "t",
        "questions": [{"prompt": "p", "kind": "scale_1_5"}],
        "closes_at": (utcnow() + timedelta(days=1)).isoformat(),
    }
    r = await svc.client.post(
        f"/communities/{community}/surveys", json=survey_body, headers=identities.headers(owner)
    )
    assert r.status_code == 201, r.text
    survey = r.json()["id"]
    r = await svc.client.post(
        f"/communities/{community}/suggestions",
        json={"title": "idea"},
        headers=identities.headers(owner),
    )
    assert r.status_code == 201, r.text
    idea = r.json()["id"]

    calls = [
        ("POST", f"/communities/{community}/surveys", survey_body),
        ("GET", f"/communities/{community}/surveys", None),
        ("GET", f"/surveys/{survey}", None),
        ("PUT", f"/surveys/{survey}/responses/me", {"answers": {"q1": 3}}),
        ("GET", f"/surveys/{survey}/responses/me", None),
        ("POST", f"/surveys/{survey}/close", None),
        ("GET", f"/surveys/{survey}/results", None),
        ("GET", f"/surveys/{survey}/export.csv", None),
        ("POST", f"/communities/{community}/suggestions", {"title": "x"}),
        ("GET", f"/communities/{community}/suggestions", None),
        ("GET", f"/suggestions/{idea}", None),
        ("PUT", f"/suggestions/{idea}/votes/me", None),
        ("DELETE", f"/suggestions/{idea}/votes/me", None),
        ("POST", f"/suggestions/{idea}/status", {"status": "under_review"}),
        ("POST", f"/suggestions/{idea}/replies", {"body": "x"}),
        ("GET", f"/suggestions/{idea}/replies", None),
    ]
    # Every survey and suggestion route is in the list above.
    doc = svc.app.openapi()
    tagged = {
        (method.upper(), path)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if {"surveys", "suggestions"} & set(op.get("tags", []))
    }
    templated = {
        (m, p.replace(str(community), "{community_id}").replace(survey, "{survey_id}"))
        for m, p, _ in calls
    }
    templated = {(m, p.replace(idea, "{suggestion_id}")) for m, p in templated}
    assert templated == tagged, tagged ^ templated
    writes = {0, 3, 8, 11, 12}
    team = {5, 7, 13, 14}
    for i, (method, path, body) in enumerate(calls):
        r = await svc.client.request(method, path, json=body, headers=identities.headers(stranger))
        assert r.status_code == 404, ("stranger", method, path, r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert str(community) not in r.text or path.startswith("/communities"), r.text
        if i in writes:
            r = await svc.client.request(method, path, json=body, headers=identities.headers(muted))
            assert r.status_code == 403, ("muted", method, path, r.text)
            assert r.json()["muted_until"], r.text
        if i in team:
            r = await svc.client.request(
                method, path, json=body, headers=identities.headers(member)
            )
            assert r.status_code == 403, ("member", method, path, r.text)
            assert r.headers["content-type"] == "application/problem+json"
    # The control: a member reads both (the refusals above came from who asked, not the path).
    for path in (f"/surveys/{survey}", f"/suggestions/{idea}"):
        r = await svc.client.get(path, headers=identities.headers(member))
        assert r.status_code == 200, (path, r.text)


# --- Roles refused on moderation's audit, evidence and sentiment routes -----------------------
# Each route is refused (403 problem) to a plain member of the community and to an outsider;
# the community-scoped ones admit its moderators (the control), the platform-wide audit routes
# only platform staff. The walk checks that it covers every such route moderation serves.


async def test_moderation_audit_evidence_sentiment_routes_refuse_members(
    launch: Any, identities: Any
) -> None:
    from hearth_moderation.app import definition
    from hearth_moderation.consumers import memberships
    from servicekit.testing.membership import Snapshots

    svc = await launch(definition)
    runtime = svc.runtime
    snaps = Snapshots()
    community = uuid.uuid4()
    member, moderator, outsider = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for user, role in ((member, "member"), (moderator, "moderator")):
        assert await memberships.handle(
            runtime.db, runtime.tables, snaps.membership(community, user, role=role)
        )
    c, x = community, uuid.uuid4()
    staff_only = [("GET", "/audit/verify", None), ("GET", "/audit/records", None)]
    community_routes = [
        ("GET", f"/communities/{c}/audit", None),
        ("GET", f"/communities/{c}/evidence", None),
        ("GET", f"/communities/{c}/evidence/retention", None),
        ("PUT", f"/communities/{c}/evidence/retention", {"days": 30}),
        ("GET", f"/communities/{c}/legal-holds", None),
        ("POST", f"/communities/{c}/legal-holds", {"reason": "court order"}),
        ("POST", f"/communities/{c}/legal-holds/{x}/release", None),
        ("POST", f"/communities/{c}/cases/post/{x}/export", None),
        ("GET", f"/communities/{c}/sentiment", None),
        ("GET", f"/communities/{c}/sentiment/alerts", None),
        ("POST", f"/communities/{c}/sentiment/alerts/{x}/acknowledge", {}),
        ("POST", f"/communities/{c}/sentiment/alerts/{x}/resolve", {}),
    ]
    covered = {
        (m, PARAM.sub("{}", p.replace(str(c), "{community_id}").replace(str(x), "{id}")))
        for m, p, _ in staff_only + community_routes
    }
    served = {
        (method.upper(), PARAM.sub("{}", path.replace("{item_type}", "post")))
        for path, ops in svc.app.openapi()["paths"].items()
        if path.startswith("/audit")
        or any(
            f"/{part}" in path
            for part in ("audit", "evidence", "legal-holds", "cases", "sentiment")
        )
        for method in ops
    }
    assert served == covered, served ^ covered
    for method, path, body in staff_only + community_routes:
        for who in (member, outsider):
            r = await svc.client.request(method, path, json=body, headers=identities.headers(who))
            assert r.status_code == 403, (who == member, method, path, r.status_code, r.text)
            assert r.headers["content-type"] == "application/problem+json"
    for method, path, _ in staff_only:
        r = await svc.client.request(method, path, headers=identities.headers(moderator))
        assert r.status_code == 403, (method, path)
        r = await svc.client.request(method, path, headers=identities.headers(None, "operator"))
        assert r.status_code == 200, (method, path, r.text)  # the control: staff get in
    for method, path, body in community_routes:
        r = await svc.client.request(method, path, json=body, headers=identities.headers(moderator))
        assert r.status_code != 403, (method, path, r.text)  # the control: moderators get in
        assert r.status_code < 500, (method, path, r.text)


# --- Roles refused on moderation's case routes -------------------------------------------------
# Every sanction, report, queue and appeal route, called by someone who must be refused: a plain
# member of the community (403: not its team; not the member concerned), and, for filing a
# report, a stranger to the community (403). `GET /me/reports` shows only the caller's own.


async def test_moderation_case_routes_refuse_members_who_are_not_the_team(
    launch: Any, identities: Any
) -> None:
    from hearth_moderation.app import definition
    from hearth_moderation.consumers import memberships
    from servicekit.testing.membership import Snapshots

    svc = await launch(definition)
    runtime = svc.runtime
    snaps = Snapshots()
    community = uuid.uuid4()
    sanctioned, member, stranger = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for user in (sanctioned, member):
        assert await memberships.handle(
            runtime.db, runtime.tables, snaps.membership(community, user)
        )
    staff = identities.headers(uuid.uuid4(), "operator")
    r = await svc.client.post(
        f"/communities/{community}/sanctions",
        json={"user_id": str(sanctioned), "level": "mute", "reason": "r"},
        headers=staff,
    )
    sanction = r.json()[0]["id"]
    r = await svc.client.post(
        f"/communities/{community}/reports",
        json={"item_type": "member", "item_id": str(sanctioned), "reason": "spam"},
        headers=identities.headers(member),
    )
    assert r.status_code == 201, r.text
    entry = r.json()["entry_id"]
    r = await svc.client.post(
        f"/sanctions/{sanction}/appeals", json={"text": "t"}, headers=identities.headers(sanctioned)
    )
    appeal = r.json()["id"]
    r = await svc.client.post(
        f"/queue/{entry}/decision", json={"decision": "uphold"}, headers=staff
    )
    assert r.status_code == 200, r.text
    r = await svc.client.post(
        f"/communities/{community}/reports",
        json={"item_type": "member", "item_id": str(member), "reason": "spam"},
        headers=identities.headers(sanctioned),
    )
    open_entry = r.json()["entry_id"]

    c = f"/communities/{community}"
    calls = [
        ("GET", f"{c}/sanctions/ladder", None),
        ("PATCH", f"{c}/sanctions/ladder", {"mute_at": 2}),
        ("POST", f"{c}/sanctions", {"user_id": str(sanctioned), "reason": "r"}),
        ("GET", f"{c}/sanctions", None),
        ("GET", f"{c}/members/{sanctioned}/standing", None),
        ("GET", f"/sanctions/{sanction}", None),
        ("POST", f"/sanctions/{sanction}/lift", {"reason": "r"}),
        ("POST", f"/sanctions/{sanction}/appeals", {"text": "t"}),
        ("GET", f"{c}/reports/policy", None),
        ("PATCH", f"{c}/reports/policy", {"hide_threshold": 1}),
        ("GET", f"{c}/queue", None),
        ("GET", f"/queue/{open_entry}", None),
        ("POST", f"/queue/{open_entry}/claim", None),
        ("POST", f"/queue/{open_entry}/assign", {"assignee_id": str(member)}),
        ("POST", f"/queue/{open_entry}/decision", {"decision": "dismiss"}),
        ("POST", f"{c}/queue/decisions", {"entry_ids": [open_entry], "decision": "dismiss"}),
        ("POST", f"/queue/{entry}/appeals", {"text": "t"}),
        ("GET", f"/appeals/{appeal}", None),
        ("POST", f"/appeals/{appeal}/messages", {"body": "b"}),
        ("POST", f"/appeals/{appeal}/decision", {"outcome": "lifted", "reason": "r"}),
    ]
    for method, path, body in calls:
        r = await svc.client.request(method, path, json=body, headers=identities.headers(member))
        assert r.status_code == 403, ("member", method, path, r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    r = await svc.client.post(
        f"{c}/reports",
        json={"item_type": "member", "item_id": str(member), "reason": "spam"},
        headers=identities.headers(stranger),
    )
    assert r.status_code == 403, r.text
    r = await svc.client.get("/me/reports", headers=identities.headers(stranger))
    assert r.status_code == 200 and r.json()["items"] == []
    # The controls: the member concerned reads their own sanction and appeal.
    for path in (f"/sanctions/{sanction}", f"/appeals/{appeal}"):
        r = await svc.client.get(path, headers=identities.headers(sanctioned))
        assert r.status_code == 200, (path, r.text)


# --- Roles refused on the events context's day-of-activity routes ----------------------------
# Check-in, draws and Q&A (hearth_events.checkin / draws / questions), called on a real activity
# with a seat, a question and a draw: a stranger to the community gets a 403 on every route; a
# plain member a 403 on every organiser route; a muted member a 403 naming the mute's end on
# what needs a voice (ask, vote, register).


async def test_activity_day_routes_refuse_strangers_members_and_the_muted(
    launch: Any, identities: Any
) -> None:
    from datetime import timedelta

    from hearth_events.app import definition
    from hearth_events.consumers import memberships
    from servicekit.ids import utcnow
    from servicekit.testing.membership import Snapshots

    svc = await launch(definition)
    runtime = svc.runtime
    snaps = Snapshots()
    owner, member, muted, stranger = (uuid.uuid4() for _ in range(4))
    community = uuid.uuid4()
    until = utcnow() + timedelta(hours=1)
    for user, state in ((owner, {"role": "owner"}), (member, {}), (muted, {})):
        assert await memberships.handle(
            runtime.db, runtime.tables, snaps.membership(community, user, **state)
        )
    staff = identities.headers(uuid.uuid4(), "operator")
    starts = utcnow() + timedelta(minutes=30)
    r = await svc.client.post(
        "/activities",
        json={
            "community_id": str(community),
            "title": "Day",
            "kind": "meetup",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=1)).isoformat(),
            "capacity": 10,
        },
        headers=staff,
    )
    activity = r.json()["id"]
    for user in (member, muted):
        r = await svc.client.post(
            f"/activities/{activity}/registrations", headers=identities.headers(user)
        )
        assert r.status_code == 201, r.text
    r = await svc.client.post(
        f"/activities/{activity}/questions", json={"text": "Q"}, headers=identities.headers(member)
    )
    question = r.json()["id"]
    r = await svc.client.post(
        f"/activities/{activity}/draws",
        json={"title": "D", "prizes": [{"name": "P", "count": 1}]},
        headers=staff,
    )
    draw = r.json()["id"]
    assert await memberships.handle(
        runtime.db, runtime.tables, snaps.membership(community, muted, muted_until=until)
    )
    code = f"/activities/{activity}/registrations/me/check-in-code"
    member_routes = [
        ("GET", code, None),
        ("GET", f"{code}/qr.png", None),
        ("GET", f"{code}/qr.svg", None),
        ("GET", f"/activities/{activity}/check-in-policy", None),
        ("GET", f"/activities/{activity}/draws", None),
        ("GET", f"/draws/{draw}", None),
        ("GET", f"/draws/{draw}/proof", None),
        ("GET", f"/activities/{activity}/questions", None),
        ("GET", f"/activities/{activity}/qa-policy", None),
    ]
    voice_routes = [
        ("POST", f"/activities/{activity}/questions", {"text": "Q"}),
        ("PUT", f"/questions/{question}/vote", None),
        ("DELETE", f"/questions/{question}/vote", None),
        ("POST", f"/activities/{activity}/registrations", None),
    ]
    organiser_routes = [
        ("POST", f"/activities/{activity}/check-ins", {"user_id": str(member)}),
        ("GET", f"/activities/{activity}/check-ins", None),
        ("PUT", f"/activities/{activity}/check-in-policy", {"walk_ins": True}),
        (
            "POST",
            f"/activities/{activity}/draws",
            {"title": "D", "prizes": [{"name": "P", "count": 1}]},
        ),
        ("PATCH", f"/draws/{draw}", {"title": "E"}),
        ("POST", f"/draws/{draw}/commit", None),
        ("POST", f"/draws/{draw}/reveal", None),
        ("POST", f"/draws/{draw}/redraws", {"registration_id": str(uuid.uuid4())}),
        ("POST", f"/draws/{draw}/complete", None),
        ("PATCH", f"/questions/{question}", {"pinned": True}),
        ("PUT", f"/activities/{activity}/qa-policy", {"anonymous_allowed": True}),
    ]
    for method, path, body in member_routes + voice_routes + organiser_routes:
        r = await svc.client.request(method, path, json=body, headers=identities.headers(stranger))
        assert r.status_code == 403, ("stranger", method, path, r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    for method, path, body in organiser_routes:
        r = await svc.client.request(method, path, json=body, headers=identities.headers(member))
        assert r.status_code == 403, ("member", method, path, r.status_code, r.text)
    for method, path, body in voice_routes:
        r = await svc.client.request(method, path, json=body, headers=identities.headers(muted))
        assert r.status_code == 403 and r.json()["muted_until"], ("muted", method, path, r.text)
    # The controls: the member reaches every member route, the owner an organiser route.
    for method, path, body in member_routes:
        r = await svc.client.request(method, path, json=body, headers=identities.headers(member))
        assert r.status_code == 200, ("member", method, path, r.status_code, r.text)
    r = await svc.client.get(f"/activities/{activity}/check-ins", headers=identities.headers(owner))
    assert r.status_code == 200, r.text
    # Every on-the-day operation events serves has a case above.
    called = [(m, p) for m, p, _ in member_routes + voice_routes + organiser_routes]
    for path, operations in svc.app.openapi()["paths"].items():
        if not EVENTS_DAY_PATH.search(path):
            continue
        shape = re.compile("^" + PARAM.sub("[^/]+", path) + "$")
        for method in operations:
            assert any(m == method.upper() and shape.match(p) for m, p in called), (
                f"no refusal case for events {method.upper()} {path}"
            )


# --- Roles refused on events' activity routes -------------------------------------------------
# Every events route, called by someone who must be refused: a member of the community who is
# neither an organiser nor a host (403 on management, reports and series; 403 for feedback on
# an activity they did not attend), and a stranger to the community (403 on reading; 404 for a
# feed token that is not theirs or not a token). The walk covers every events operation: a new
# route without a case here fails the test.

# Scoped to the caller's own rows, so there is nobody to refuse: a member's feed tokens.
EVENTS_OWN_ROWS = {("POST", "/calendar/tokens"), ("GET", "/calendar/tokens")}
# On-the-day routes (check-in, draws, Q&A): walked by
# test_activity_day_routes_refuse_strangers_members_and_the_muted.
EVENTS_DAY_PATH = re.compile(
    r"^/(draws|questions)/|/(check-in-code|check-ins|check-in-policy|draws|questions|qa-policy)(/|$)"
)


async def test_events_routes_refuse_members_and_strangers(launch: Any, identities: Any) -> None:
    from datetime import timedelta

    from hearth_events.app import definition
    from hearth_events.consumers import memberships
    from servicekit.ids import utcnow
    from servicekit.testing.membership import Snapshots

    svc = await launch(definition)
    runtime = svc.runtime
    snaps = Snapshots()
    owner, member, stranger = (uuid.uuid4() for _ in range(3))
    community = uuid.uuid4()
    for user, role in ((owner, "owner"), (member, "member")):
        assert await memberships.handle(
            runtime.db, runtime.tables, snaps.membership(community, user, role=role)
        )
    staff = identities.headers(uuid.uuid4(), "operator")
    starts = utcnow() + timedelta(days=3)
    plan = {
        "community_id": str(community),
        "title": "t",
        "kind": "other",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=1)).isoformat(),
        "capacity": 5,
    }
    r = await svc.client.post("/activities", json=plan, headers=staff)
    activity = r.json()["id"]
    r = await svc.client.post(
        "/series", json={"activity": plan, "rrule": "FREQ=WEEKLY;COUNT=2"}, headers=staff
    )
    series = r.json()["id"]
    occurrence = r.json()["occurrences"][0]
    r = await svc.client.post(
        f"/activities/{activity}/registrations", headers=identities.headers(owner)
    )
    registration = r.json()["id"]
    ended = (await svc.client.post("/activities", json=plan, headers=staff)).json()["id"]
    for to in ("ongoing", "ended"):
        await svc.client.post(f"/activities/{ended}/transitions", json={"to": to}, headers=staff)
    r = await svc.client.post("/calendar/tokens", headers=identities.headers(owner))
    token_id = r.json()["id"]

    a, c = f"/activities/{activity}", f"/communities/{community}"
    as_member = [
        ("POST", "/activities", plan, 403),
        ("PATCH", a, {"title": "x"}, 403),
        ("GET", f"{a}/registrations", None, 403),
        ("POST", f"{a}/transitions", {"to": "cancelled"}, 403),
        ("PUT", f"{a}/capacity", {"capacity": 9}, 403),
        ("POST", f"{a}/registrations/{registration}/approve", None, 403),
        ("POST", f"{a}/registrations/{registration}/reject", None, 403),
        ("PUT", f"{c}/activity-settings", {"max_waitlists": 1}, 403),
        ("GET", f"{a}/summary", None, 403),
        ("GET", f"{a}/summary.csv", None, 403),
        ("GET", f"{a}/attendees.csv", None, 403),
        ("GET", f"{a}/feedback", None, 403),
        ("PUT", f"/activities/{ended}/feedback/me", {"satisfaction": 5, "nps": 9}, 403),
        ("POST", "/series", {"activity": plan, "rrule": "FREQ=WEEKLY"}, 403),
        (
            "PATCH",
            f"/series/{series}/occurrences/{occurrence}",
            {"changes": {"title": "x"}},
            403,
        ),
        ("DELETE", f"/calendar/tokens/{token_id}", None, 404),
        ("GET", "/calendar/feeds/not-a-token.ics", None, 404),
    ]
    as_stranger = [
        ("GET", f"/activities?community_id={community}", None, 403),
        ("GET", a, None, 403),
        ("POST", f"{a}/registrations", None, 403),
        ("DELETE", f"{a}/registrations/me", None, 404),
        ("GET", f"{a}/calendar.ics", None, 403),
        ("GET", f"{c}/activities.ics", None, 403),
        ("GET", f"{c}/activity-settings", None, 403),
        ("GET", f"/series/{series}", None, 403),
        ("GET", f"{a}/feedback/me", None, 404),
    ]
    for who, calls in ((member, as_member), (stranger, as_stranger)):
        for method, path, body, expected in calls:
            r = await svc.client.request(method, path, json=body, headers=identities.headers(who))
            assert r.status_code == expected, (method, path, r.status_code, r.text)
            assert r.headers["content-type"] == "application/problem+json", (path, r.text)
    # Every events operation has a refusal case above, or only touches the caller's own rows.
    ids = [activity, community, series, occurrence, registration, token_id, ended, "not-a-token"]
    pattern = "|".join(re.escape(str(i)) for i in ids)
    covered = {(m, re.sub(pattern, "{}", p.split("?")[0])) for m, p, *_ in as_member + as_stranger}
    for path, operations in svc.app.openapi()["paths"].items():
        if path in OPEN_PATHS or path.startswith("/admin"):
            continue
        for method in operations:
            if (method.upper(), path) in EVENTS_OWN_ROWS or EVENTS_DAY_PATH.search(path):
                continue
            op = (method.upper(), PARAM.sub("{}", path))
            assert op in covered, f"no refusal case for events {method.upper()} {path}"


# --- Roles refused on metrics' community routes -----------------------------------------------
# Every per-community metrics route, called by someone who must be refused: a stranger (404:
# whether a community has metrics is not revealed), a plain member while the community publishes
# nothing (403), and an API key without `metrics:read` (403 naming the scope). The control: the
# owner reads each, and a member reads the leaderboard once the community publishes it.


async def test_metrics_routes_refuse_strangers_members_and_unscoped_keys(
    launch: Any, identities: Any
) -> None:
    from hearth_metrics.app import definition
    from hearth_metrics.communities.consumers import memberships
    from servicekit.testing.membership import Snapshots

    svc = await launch(definition)
    runtime = svc.runtime
    snaps = Snapshots()
    owner, member, stranger = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    community = uuid.uuid4()
    await memberships.handle(
        runtime.db, runtime.tables, snaps.community(community, owner, kind="customer")
    )
    for user, role in ((owner, "owner"), (member, "member")):
        await memberships.handle(
            runtime.db, runtime.tables, snaps.membership(community, user, role=role)
        )
    base = f"/communities/{community}"
    reads = [
        f"{base}/policy",
        f"{base}/activity/daily",
        f"{base}/activity/active",
        f"{base}/activity/members",
        f"{base}/retention",
        f"{base}/win-back",
        f"{base}/leaderboard",
    ]
    ours = {
        path.replace(str(community), "{community_id}")
        for path in svc.app.openapi()["paths"]
        if path.startswith("/communities/{community_id}/")
        and not path.endswith("/counts")
        and not path.startswith(tuple(f"/communities/{{community_id}}/{b}" for b in BUSINESS))
    }
    assert ours == {p.replace(str(community), "{community_id}") for p in reads}, ours
    key = {
        "x-hearth-identity": identities.signer.sign(
            Principal(subject=uuid.uuid4(), kind="service", roles=frozenset({"service"}))
        )
    }
    for path in reads:
        r = await svc.client.get(path, headers=identities.headers(stranger))
        assert r.status_code == 404, ("stranger", path, r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        r = await svc.client.get(path, headers=identities.headers(member))
        assert r.status_code == 403, ("member", path, r.status_code, r.text)
        r = await svc.client.get(path, headers=key)
        assert r.status_code == 403 and r.json()["required_scope"] == "metrics:read", path
        r = await svc.client.get(path, headers=identities.headers(owner))
        assert r.status_code == 200, ("owner", path, r.text)
    for who in (stranger, member):
        r = await svc.client.patch(
            f"{base}/policy", json={"published": ["leaderboard"]}, headers=identities.headers(who)
        )
        assert r.status_code in (403, 404), (who, r.status_code, r.text)
    r = await svc.client.patch(f"{base}/policy", json={"published": ["leaderboard"]}, headers=key)
    assert r.status_code == 404, r.text
    r = await svc.client.patch(
        f"{base}/policy", json={"published": ["leaderboard"]}, headers=identities.headers(owner)
    )
    assert r.status_code == 200, r.text
    r = await svc.client.get(f"{base}/leaderboard", headers=identities.headers(member))
    assert r.status_code == 200, r.text
    r = await svc.client.get(f"{base}/retention", headers=identities.headers(member))
    assert r.status_code == 403, r.text


BUSINESS = ("conversions", "funnel", "measures", "health", "analysis", "reports", "goals")
"""metrics' business routes: refused in the next test."""


# --- Roles refused on metrics' business routes -------------------------------------------------
# Every conversions, funnel, measures, health, analysis, goal and report route of one community,
# called by a member the community publishes nothing to (403), by a stranger (404: whether the
# community has metrics is not revealed), and by an API key without `metrics:read` (403);
# reporting a conversion needs `metrics:conversions:write` (403 for a member or a read key).


async def test_metrics_business_routes_refuse_members_strangers_and_unscoped_keys(
    launch: Any, identities: Any
) -> None:
    from hearth_metrics.app import definition
    from hearth_metrics.communities.consumers import memberships
    from servicekit.testing.membership import Snapshots

    svc = await launch(definition)
    runtime = svc.runtime
    snaps = Snapshots()
    owner, member, stranger = (uuid.uuid4() for _ in range(3))
    community = uuid.uuid4()
    assert await memberships.handle(
        runtime.db, runtime.tables, snaps.community(community, owner, kind="customer")
    )
    for user, role in ((owner, "owner"), (member, "member")):
        assert await memberships.handle(
            runtime.db, runtime.tables, snaps.membership(community, user, role=role)
        )
    r = await svc.client.post(
        f"/communities/{community}/reports",
        json={"period": "week"},
        headers=identities.headers(owner),
    )
    assert r.status_code == 201, r.text  # the control: the owner may
    report = r.json()["id"]
    base = f"/communities/{community}"
    calls = [
        ("GET", f"{base}/conversions/rates", None),
        ("GET", f"{base}/funnel", None),
        ("GET", f"{base}/measures/content", None),
        ("GET", f"{base}/measures/activities", None),
        ("GET", f"{base}/measures/moderation", None),
        ("GET", f"{base}/health", None),
        ("GET", f"{base}/analysis", None),
        ("GET", f"{base}/goals/progress", None),
        ("GET", f"{base}/reports", None),
        ("POST", f"{base}/reports", {"period": "week"}),
        ("GET", f"{base}/reports/{report}", None),
        *(("GET", f"{base}/reports/{report}/{fmt}", None) for fmt in ("json", "csv", "svg", "png")),
    ]

    # Every business route of the service is in `calls` (a new one must join them).
    served = {
        path
        for path in svc.app.openapi()["paths"]
        if path.startswith(tuple(f"/communities/{{community_id}}/{b}" for b in BUSINESS))
    }
    walked = {
        re.sub(r"/(json|csv|svg|png)$", "/{fmt}", path)
        .replace(str(community), "{community_id}")
        .replace(report, "{report_id}")
        for _, path, _ in calls
    }
    assert served == walked, served ^ walked

    def key(*scopes: str) -> dict[str, str]:
        principal = Principal(
            subject=uuid.uuid4(),
            kind="service",
            roles=frozenset({"service"}),
            scopes=frozenset(scopes),
        )
        return {"x-hearth-identity": identities.signer.sign(principal)}

    for method, path, body in calls:
        for who, headers, status in (
            ("member", identities.headers(member), 403),
            ("stranger", identities.headers(stranger), 404),
            ("unscoped key", key("metrics:conversions:write"), 403),
        ):
            r = await svc.client.request(method, path, json=body, headers=headers)
            assert r.status_code == status, (who, method, path, r.status_code, r.text)
            assert r.headers["content-type"] == "application/problem+json", (who, path)
        r = await svc.client.request(method, path, json=body, headers=identities.headers(owner))
        assert r.status_code in (200, 201), (method, path, r.text)  # the control
    conversion = {
        "id": "o-1",
        "kind": "purchase",
        "community_id": str(community),
        "occurred_at": "2026-03-02T00:00:00Z",
    }
    for who, headers in (
        ("member", identities.headers(member)),
        ("owner", identities.headers(owner)),
        ("read key", key("metrics:read")),
    ):
        r = await svc.client.post("/conversions", json=conversion, headers=headers)
        assert r.status_code == 403, (who, r.text)
        assert r.json()["type"].endswith(":insufficient-scope")

"""Communities and joining, through the members API with real NATS and database."""

import asyncio
import uuid

import nats.js.errors

from servicekit.events import Envelope
from servicekit.testing.harness import Identities, RunningService, eventually

PROBLEM = "application/problem+json"


async def _community(members: RunningService, identities: Identities, **extra: object) -> dict:
    body = {"name": "Platform guild", "kind": "internal", **extra}
    r = await members.client.post(
        "/communities", json=body, headers=identities.headers(None, "operator")
    )
    assert r.status_code == 201, r.text
    return r.json()


async def test_create_and_join_publishes_member_joined(
    members: RunningService, identities: Identities, nats_client, subject_prefix: str
) -> None:
    community = await _community(members, identities)
    user = uuid.uuid4()
    r = await members.client.post(
        f"/communities/{community['id']}/members", headers=identities.headers(user)
    )
    assert r.status_code == 201, r.text
    assert r.json()["role"] == "member"

    js = nats_client.jetstream()

    async def subscribed():  # the relay creates the stream on its first publish
        try:
            return await js.subscribe(
                f"{subject_prefix}.members.member.joined.v1", ordered_consumer=True
            )
        except nats.js.errors.NotFoundError:
            return None

    sub = await eventually(subscribed)
    seen: list[Envelope] = []

    async def joined_for_user() -> bool:
        try:
            msg = await sub.next_msg(timeout=1)
        except Exception:
            return False
        seen.append(Envelope.from_message(msg.headers, msg.data))
        return any(e.data["user_id"] == str(user) for e in seen)

    await eventually(joined_for_user)
    env = next(e for e in seen if e.data["user_id"] == str(user))
    assert env.type == "hearth.members.member.joined.v1"
    assert env.subject == community["id"]
    assert msg_headers_are_cloudevents(env)


def msg_headers_are_cloudevents(env: Envelope) -> bool:
    return env.specversion == "1.0" and env.source == "/hearth/members" and env.id.version == 7


async def test_join_twice_is_idempotent_and_concurrent_joins_make_one_membership(
    members: RunningService, identities: Identities
) -> None:
    community = await _community(members, identities)
    user = uuid.uuid4()
    headers = identities.headers(user)
    url = f"/communities/{community['id']}/members"
    responses = await asyncio.gather(*(members.client.post(url, headers=headers) for _ in range(8)))
    assert sorted(r.status_code for r in responses) == [200] * 7 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    listing = await members.client.get(url, headers=headers)
    assert [m["user_id"] for m in listing.json()["items"]].count(str(user)) == 1


async def test_bad_input(members: RunningService, identities: Identities) -> None:
    r = await members.client.post(
        f"/communities/{uuid.uuid4()}/members", headers=identities.headers()
    )
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    r = await members.client.post(
        "/communities",
        json={"name": "", "kind": "nope"},
        headers=identities.headers(None, "operator"),
    )
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert {tuple(e["loc"])[-1] for e in r.json()["errors"]} >= {"name", "kind"}
    r = await members.client.get("/communities/not-a-uuid", headers=identities.headers())
    assert r.status_code == 422


async def test_refusals(members: RunningService, identities: Identities) -> None:
    r = await members.client.get("/communities")
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    r = await members.client.get("/communities", headers={"x-hearth-identity": "forged"})
    assert r.status_code == 401
    # A member may not create communities.
    r = await members.client.post(
        "/communities", json={"name": "x", "kind": "internal"}, headers=identities.headers()
    )
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    # A private community is invisible to non-members, visible to its owner.
    private = await _community(members, identities, visibility="private")
    r = await members.client.get(f"/communities/{private['id']}", headers=identities.headers())
    assert r.status_code == 404
    r = await members.client.get(
        f"/communities/{private['id']}/members", headers=identities.headers()
    )
    assert r.status_code == 404
    r = await members.client.get(
        f"/communities/{private['id']}",
        headers=identities.headers(uuid.UUID(private["created_by"])),
    )
    assert r.status_code == 200

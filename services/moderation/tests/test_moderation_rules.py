"""Community rule sets over HTTP and through real NATS: versions, dry run, refusals, verdicts.

Members, content and moderation run together: moderation learns who owns the community from
members' membership snapshots, the owner publishes rules, and a post submitted to content comes
back as a verdict naming the rule-set version and its hits.
"""

# ruff: noqa: RUF001  (full-width characters are the point of the sample posts)

from __future__ import annotations

import uuid

from hearth_content.app import definition as content_definition
from hearth_members.app import definition as members_definition
from hearth_moderation.app import definition as moderation_definition
from hearth_moderation.models import Membership
from servicekit.testing.harness import Identities, eventually

PROBLEM = "application/problem+json"
RULES = {
    "words": [
        {"term": "發財", "action": "censor"},
        {"term": "spam", "action": "tag", "tag": "spammy"},
    ],
    "regexes": [{"pattern": r"(a+)+$", "action": "flag"}],
    "detectors": [
        {"detector": "evasion", "action": "require_approval", "reason": "advertising"},
        {"detector": "link", "action": "require_approval", "reason": "advertising"},
    ],
    "allowed_domains": ["hearth.example"],
}


async def test_rules_versions_dry_run_refusals_and_verdict_through_nats(
    launch, identities: Identities, stream_events, subject_prefix: str
) -> None:
    members = await launch(members_definition)
    content = await launch(content_definition)
    moderation = await launch(moderation_definition)

    owner, author = uuid.uuid4(), uuid.uuid4()
    r = await members.client.post(
        "/communities",
        json={"name": "Makers", "kind": "customer"},
        headers=identities.headers(owner, "operator"),
    )
    assert r.status_code == 201, r.text
    community_id = r.json()["id"]
    r = await members.client.post(
        f"/communities/{community_id}/members", headers=identities.headers(author)
    )
    assert r.status_code == 201

    async def known(user: uuid.UUID) -> Membership | None:
        async with moderation.runtime.db.session() as session:
            return await session.get(Membership, (uuid.UUID(community_id), user))

    assert (await eventually(lambda: known(owner))).role == "owner"
    assert (await eventually(lambda: known(author))).role == "member"

    base = f"/communities/{community_id}/rules"
    as_owner = identities.headers(owner)  # no platform role: the community role decides
    as_author = identities.headers(author)
    stranger = identities.headers(uuid.uuid4())

    # Refused roles: a plain member and a stranger, on every rules route; no assertion: 401.
    for headers in (as_author, stranger):
        for method, path, body in (
            ("GET", base, None),
            ("GET", f"{base}/versions", None),
            ("PUT", base, {"rules": RULES}),
            ("POST", f"{base}/dry-run", {"text": "hi"}),
        ):
            r = await moderation.client.request(method, path, json=body, headers=headers)
            assert r.status_code == 403 and r.headers["content-type"] == PROBLEM, (method, path)
    r = await moderation.client.put(base, json={"rules": RULES})
    assert r.status_code == 401

    # No rules yet; bad rules are a 422 problem, never stored.
    r = await moderation.client.get(base, headers=as_owner)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    bad = {"rules": {"regexes": [{"pattern": r"(a)\1"}]}}
    r = await moderation.client.put(base, json=bad, headers=as_owner)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM

    # Every publish is a new version.
    r = await moderation.client.put(base, json={"rules": {"words": []}}, headers=as_owner)
    assert r.status_code == 201 and r.json()["version"] == 1
    r = await moderation.client.put(base, json={"rules": RULES, "note": "ads"}, headers=as_owner)
    assert r.status_code == 201 and r.json()["version"] == 2
    r = await moderation.client.get(base, headers=as_owner)
    assert r.json()["version"] == 2 and r.json()["rules"]["allowed_domains"] == ["hearth.example"]
    r = await moderation.client.get(f"{base}/versions", headers=identities.headers(None, "admin"))
    assert [v["version"] for v in r.json()["items"]] == [2, 1]

    # Dry run against a draft: each hit with its position, rule and action; nothing stored.
    sample = "恭喜發財! 加　Ｖ see https://docs.hearth.example and cheap.top"
    r = await moderation.client.post(
        f"{base}/dry-run", json={"text": sample, "rules": RULES}, headers=as_owner
    )
    assert r.status_code == 200, r.text
    dry = r.json()
    assert dry["rule_set_version"] is None and dry["verdict"] == "require_approval"
    found = [(h["rule"], h["action"], sample[h["start"] : h["end"]]) for h in dry["hits"]]
    assert found == [
        ("community:word:0", "censor", "發財"),
        ("community:detector:evasion", "require_approval", "加　Ｖ"),
        ("platform:word:17", "require_approval", "加　Ｖ"),  # the platform's 加v, normalized
        ("community:detector:link", "require_approval", "cheap.top"),
    ]
    assert dry["censored_text"].startswith("恭喜＊＊!")
    # Without a draft: the current version.
    r = await moderation.client.post(f"{base}/dry-run", json={"text": "spam"}, headers=as_owner)
    assert r.json()["rule_set_version"] == 2 and r.json()["tags"] == ["spammy"]
    r = await moderation.client.post(
        f"{base}/dry-run", json={"text": "x", "rules": {"words": "no"}}, headers=as_owner
    )
    assert r.status_code == 422

    # A post through content: the verdict over NATS names version 2 and its hits.
    async def member_in_content() -> bool:
        r = await content.client.get(f"/communities/{community_id}/posts", headers=as_author)
        return r.status_code == 200

    await eventually(member_in_content)
    r = await content.client.post(
        f"/communities/{community_id}/posts",
        json={"title": "好物", "body": "私聊 加 . Ｖ 详谈", "format": "text"},
        headers=as_author,
    )
    assert r.status_code == 201, r.text
    post_id = r.json()["id"]

    async def verdict() -> list:
        found = await stream_events(f"{subject_prefix}.moderation.screening.completed.v1")
        return [e for e in found if e.data["target_id"] == post_id]

    [event] = await eventually(verdict)
    assert event.data["decision"] == "held"
    assert event.data["verdict"] == "require_approval"
    assert event.data["rule_set_version"] == 2
    assert event.data["reasons"] == ["advertising", "banned_term:advertising"]
    hits = event.data["hits"]
    assert [h["rule"] for h in hits] == ["community:detector:evasion", "platform:word:17"]
    assert {"好物\n私聊 加 . Ｖ 详谈"[h["start"] : h["end"]] for h in hits} == {"加 . Ｖ"}

    async def held() -> dict:
        r = await content.client.get(f"/posts/{post_id}", headers=as_author)
        return r.json() if r.json()["status"] != "pending_review" else {}

    assert (await eventually(held))["hold_reasons"] == ["advertising", "banned_term:advertising"]
    published = await stream_events(f"{subject_prefix}.moderation.rule_set.published.v1")
    assert [e.data["version"] for e in published if e.data["community_id"] == community_id] == [
        1,
        2,
    ]

"""The dry run with a sample author: flood, duplicate and newcomer rules show their hits too."""

from __future__ import annotations

import uuid

from hearth_moderation.app import definition as moderation_definition
from servicekit.testing.harness import Identities

PROBLEM = "application/problem+json"
DRAFT = {
    "words": [{"term": "团购", "action": "flag"}],
    "include_platform_defaults": False,  # the platform's 加v would hold every sample
    "flood": {"max_items": 3, "per_seconds": 60, "action": "require_approval"},
    "duplicates": {"window_seconds": 600, "min_length": 10, "action": "flag"},
    "newcomers": {
        "joined_within_days": 7,
        "tiers": ["regular"],
        "detectors": ["link", "evasion"],
        "action": "require_approval",
        "reason": "newcomer",
    },
}
SAMPLE = "团购价格 see cheap-stuff.top 加V详聊"


async def test_a_sample_author_brings_in_flood_duplicate_and_newcomer_hits(
    launch, identities: Identities
) -> None:
    moderation = await launch(moderation_definition)
    url = f"/communities/{uuid.uuid4()}/rules/dry-run"
    staff = identities.headers(uuid.uuid4(), "operator")

    async def dry(author: dict | None) -> dict:
        body: dict = {"text": SAMPLE, "rules": DRAFT}
        if author is not None:
            body["author"] = author
        r = await moderation.client.post(url, json=body, headers=staff)
        assert r.status_code == 200, r.text
        return r.json()

    # No author: the text alone (the word flags).
    alone = await dry(None)
    assert alone["verdict"] == "flag"
    assert [h["rule"] for h in alone["hits"]] == ["community:word:0"]

    # An established member under the flood limit: the same as the text alone.
    settled = await dry({"joined_days": 400, "tier": "core", "recent_items": 2})
    assert [h["rule"] for h in settled["hits"]] == ["community:word:0"]

    # A newcomer: the newcomer detectors apply, and the word's flag is raised to approval.
    fresh = await dry({"joined_days": 2, "tier": "core"})
    assert fresh["verdict"] == "require_approval"
    by_rule = {h["rule"]: h for h in fresh["hits"]}
    assert set(by_rule) == {
        "community:word:0",
        "community:detector:link",
        "community:detector:evasion",
    }
    assert by_rule["community:word:0"]["action"] == "require_approval"
    assert by_rule["community:detector:link"]["reason"] == "newcomer"
    assert (
        SAMPLE[
            by_rule["community:detector:link"]["start"] : by_rule["community:detector:link"]["end"]
        ]
        == "cheap-stuff.top"
    )

    # A low tier counts as a newcomer whatever the join date.
    low = await dry({"joined_days": 900, "tier": "regular"})
    assert "community:detector:evasion" in {h["rule"] for h in low["hits"]}

    # Flooding (this sample would be the fourth item in the window) and a duplicate elsewhere.
    busy = await dry({"joined_days": 400, "recent_items": 3, "duplicate_elsewhere": True})
    kinds = {h["kind"]: h for h in busy["hits"]}
    assert set(kinds) == {"word", "flood", "duplicate"}
    assert kinds["flood"]["action"] == "require_approval" and kinds["flood"]["reason"] == "flood"
    assert busy["verdict"] == "require_approval"

    # A sample too short for the duplicate rule is never a duplicate.
    r = await moderation.client.post(
        url,
        json={"text": "团购", "rules": DRAFT, "author": {"duplicate_elsewhere": True}},
        headers=staff,
    )
    assert {h["kind"] for h in r.json()["hits"]} == {"word"}


async def test_a_bad_sample_author_is_a_422_problem(launch, identities: Identities) -> None:
    moderation = await launch(moderation_definition)
    url = f"/communities/{uuid.uuid4()}/rules/dry-run"
    staff = identities.headers(uuid.uuid4(), "operator")
    for author in ({"joined_days": -1}, {"recent_items": "many"}, {"karma": 3}):
        r = await moderation.client.post(
            url, json={"text": "hi", "rules": DRAFT, "author": author}, headers=staff
        )
        assert r.status_code == 422, author
        assert r.headers["content-type"].startswith(PROBLEM)
    # A member who is not on the community's team is refused, author or not.
    r = await moderation.client.post(
        url,
        json={"text": "hi", "author": {"joined_days": 1}},
        headers=identities.headers(uuid.uuid4()),
    )
    assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM)

"""The summary's community activity the week before vs the week after an activity.

Content's facts are built and checked by content's own event models
(servicekit.testing.contracts), handed to the real consumer on the real database; the summary
is read through the service (JSON and CSV).
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime, timedelta
from typing import Any

from hearth_events.reports.activity import (
    CommentCreatedFact,
    PostPublishedFact,
    ReactionAddedFact,
    community_activity,
)
from servicekit.events import Envelope
from servicekit.ids import utcnow
from servicekit.testing.contracts import contract, producer_envelope
from servicekit.testing.harness import Identities, RunningService

OPERATOR = uuid.UUID("00000000-0000-7000-8000-000000000001")
POSTED = "hearth.content.post.published.v1"
COMMENTED = "hearth.content.comment.created.v1"
REACTED = "hearth.content.reaction.added.v1"


def post(community_id: uuid.UUID, at: datetime) -> Envelope:
    return producer_envelope(
        POSTED,
        {
            "post_id": str(uuid.uuid4()),
            "community_id": str(community_id),
            "author_id": str(uuid.uuid4()),
            "title": "Hello",
            "format": "text",
            "published_at": at.isoformat(),
        },
    )


def comment(community_id: uuid.UUID, at: datetime) -> Envelope:
    return producer_envelope(
        COMMENTED,
        {
            "comment_id": str(uuid.uuid4()),
            "post_id": str(uuid.uuid4()),
            "community_id": str(community_id),
            "author_id": str(uuid.uuid4()),
            "created_at": at.isoformat(),
        },
    )


def reaction(community_id: uuid.UUID, at: datetime) -> Envelope:
    return producer_envelope(
        REACTED,
        {
            "post_id": str(uuid.uuid4()),
            "community_id": str(community_id),
            "post_author_id": str(uuid.uuid4()),
            "member_id": str(uuid.uuid4()),
            "kind": "like",
            "reacted_at": at.isoformat(),
        },
    )


def test_the_facts_read_only_fields_content_sends_and_requires() -> None:
    for fact, ce_type in (
        (PostPublishedFact, POSTED),
        (CommentCreatedFact, COMMENTED),
        (ReactionAddedFact, REACTED),
    ):
        producer = contract(ce_type).model_fields
        assert set(fact.model_fields) <= set(producer), (fact, ce_type)
        # What the fact needs, content always sends (a required field there).
        assert all(producer[name].is_required() for name in fact.model_fields), ce_type


async def test_summary_compares_the_week_before_with_the_week_after(
    events: RunningService, identities: Identities, directory
) -> None:
    community_id, _ = await directory.community(events)
    other, _ = await directory.community(events)
    staff = identities.headers(OPERATOR, "operator")
    starts = (utcnow() + timedelta(days=10)).replace(hour=12, minute=0, second=0, microsecond=0)
    ends = starts + timedelta(hours=2)
    r = await events.client.post(
        "/activities",
        json={
            "community_id": str(community_id),
            "title": "Launch",
            "kind": "online_lecture",
            "starts_at": starts.isoformat(),
            "ends_at": ends.isoformat(),
            "capacity": 10,
        },
        headers=staff,
    )
    assert r.status_code == 201, r.text
    url = f"/activities/{r.json()['id']}"

    day = timedelta(days=1)
    before = [post(community_id, starts - 3 * day), comment(community_id, starts - 7 * day)]
    before += [reaction(community_id, starts - day), reaction(community_id, starts - 2 * day)]
    after = [post(community_id, ends + day), post(community_id, ends + 7 * day)]
    after += [comment(community_id, ends + 2 * day) for _ in range(3)]
    after += [reaction(community_id, ends + 3 * day) for _ in range(4)]
    outside = [
        post(community_id, starts - 8 * day),  # before the week before
        post(community_id, starts),  # on the day itself
        comment(community_id, ends + 8 * day),  # after the week after
        post(other, starts - day),  # another community
    ]
    rt = events.runtime
    for envelope in before + after + outside:
        assert await community_activity.handle(rt.db, rt.tables, envelope)
    # Redelivered facts are counted once (the consumer's inbox).
    for envelope in (before[0], after[2]):
        await community_activity.handle(rt.db, rt.tables, envelope)

    r = await events.client.get(f"{url}/summary", headers=staff)
    assert r.status_code == 200, r.text
    change = r.json()["community_activity"]
    assert change["before"] == {
        "first_day": (starts - 7 * day).date().isoformat(),
        "last_day": (starts - day).date().isoformat(),
        "posts": 1,
        "comments": 1,
        "reactions": 2,
        "total": 4,
    }
    assert change["after"]["first_day"] == (ends + day).date().isoformat()
    assert change["after"]["last_day"] == (ends + 7 * day).date().isoformat()
    assert (change["after"]["posts"], change["after"]["comments"]) == (2, 3)
    assert change["after"]["reactions"] == 4 and change["after"]["total"] == 9
    assert change["change_posts"] == 1 and change["change_comments"] == 2
    assert change["change_reactions"] == 2 and change["change_total"] == 5
    assert change["change_total_pct"] == 125.0
    assert change["after_complete"] is False  # the week after is still to come

    r = await events.client.get(f"{url}/summary.csv", headers=staff)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows: dict[str, Any] = {
        row["metric"]: row["value"] for row in csv.DictReader(io.StringIO(r.text))
    }
    assert rows["capacity"] == "10" and rows["registrations"] == "0"
    assert rows["community_activity.before.total"] == "4"
    assert rows["community_activity.after.total"] == "9"
    assert rows["community_activity.change_total"] == "5"
    assert rows["community_activity.change_total_pct"] == "125.0"
    assert rows["satisfaction_avg"] == ""  # no feedback yet: empty, not "None"


async def test_an_unknown_activity_has_no_summary_csv(
    events: RunningService, identities: Identities
) -> None:
    r = await events.client.get(
        f"/activities/{uuid.uuid4()}/summary.csv", headers=identities.headers(OPERATOR, "operator")
    )
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"

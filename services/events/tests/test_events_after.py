"""After the activity: reminder leads, feedback, the summary report, conversions and summarized.

Real database and NATS; metrics' conversion fact is handed to the consumer as metrics would
publish it (its fields per the contract the metrics context defines).
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col

from hearth_events.feedback.models import Feedback
from hearth_events.models import GoalMetric
from hearth_events.reports.consumers import ConversionRecordedFact, conversions
from hearth_events.service import remind_due
from servicekit.events import Envelope
from servicekit.ids import utcnow, uuid7
from servicekit.testing.harness import Identities, RunningService

OPERATOR = uuid.UUID("00000000-0000-7000-8000-000000000001")


def staff(identities: Identities) -> dict[str, str]:
    return identities.headers(OPERATOR, "operator")


async def create(
    events: RunningService, identities: Identities, community_id: uuid.UUID, **extra: Any
) -> dict[str, Any]:
    starts = utcnow() + timedelta(days=2)
    r = await events.client.post(
        "/activities",
        json={
            "community_id": str(community_id),
            "title": "Demo day",
            "kind": "product_trial",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "capacity": 2,
            **extra,
        },
        headers=staff(identities),
    )
    assert r.status_code == 201, r.text
    return r.json()


async def move(events: RunningService, identities: Identities, activity: dict, *states: str):
    for to in states:
        r = await events.client.post(
            f"/activities/{activity['id']}/transitions", json={"to": to}, headers=staff(identities)
        )
        assert r.status_code == 200, r.text


async def check_in(events: RunningService, identities: Identities, activity: dict, *users) -> None:
    """Check people in by hand (staff), with a window wide enough for an activity days away."""
    url = f"/activities/{activity['id']}"
    wide = {"opens_minutes_before": 7 * 24 * 60}
    r = await events.client.put(f"{url}/check-in-policy", json=wide, headers=staff(identities))
    assert r.status_code == 200, r.text
    for user in users:
        r = await events.client.post(
            f"{url}/check-ins", json={"user_id": str(user)}, headers=staff(identities)
        )
        assert r.status_code == 201, r.text


async def test_each_reminder_lead_goes_out_once_per_seat(
    events: RunningService, identities: Identities, directory, stream_events, subject_prefix: str
) -> None:
    community_id, users = await directory.community(events, members=2)
    activity = await create(events, identities, community_id, reminder_minutes=[60, 1440, 180])
    assert activity["reminder_minutes"] == [1440, 180, 60]
    for user in users:
        r = await events.client.post(
            f"/activities/{activity['id']}/registrations", headers=identities.headers(user)
        )
        assert r.status_code == 201
    starts = utcnow() + timedelta(days=2)
    rt = events.runtime
    # Two days out: nothing. A day out: the 24 h lead, once. Two hours out: the 3 h lead.
    assert await remind_due(rt, now=utcnow()) == 0
    assert await remind_due(rt, now=starts - timedelta(hours=23)) == 2
    assert await remind_due(rt, now=starts - timedelta(hours=23)) == 0
    assert await remind_due(rt, now=starts - timedelta(hours=2)) == 2
    # A pass that skipped the 1 h lead's window and comes 10 minutes before: one reminder, and
    # then no more, ever (the stage is stored with the event).
    assert await remind_due(rt, now=starts - timedelta(minutes=10)) == 2
    assert await remind_due(rt, now=starts - timedelta(minutes=5)) == 0
    found = await stream_events(f"{subject_prefix}.events.registration.reminder_due.v1")
    assert len(found) == 6
    # Moving the start reschedules what is left: an hour later, the 1 h lead is already sent.
    r = await events.client.patch(
        f"/activities/{activity['id']}",
        json={
            "starts_at": (starts + timedelta(hours=1)).isoformat(),
            "ends_at": (starts + timedelta(hours=3)).isoformat(),
        },
        headers=staff(identities),
    )
    assert r.status_code == 200, r.text
    assert await remind_due(rt, now=starts + timedelta(minutes=5)) == 0


async def test_feedback_from_attendees_editable_for_a_week(
    events: RunningService, identities: Identities, directory, published
) -> None:
    community_id, [a, b, c] = await directory.community(events, members=3)
    activity = await create(events, identities, community_id)
    url = f"/activities/{activity['id']}"
    for user in (a, b, c):  # C is waitlisted: not an attendee
        await events.client.post(f"{url}/registrations", headers=identities.headers(user))
    mine = f"{url}/feedback/me"
    good = {"satisfaction": 5, "nps": 10, "comment": "great"}
    r = await events.client.put(mine, json=good, headers=identities.headers(a))
    assert r.status_code == 409 and r.json()["type"].endswith(":feedback-not-open")
    await check_in(events, identities, activity, a, b)  # attendees are who checked in
    await move(events, identities, activity, "ongoing", "ended")
    r = await events.client.put(mine, json=good, headers=identities.headers(a))
    assert r.status_code == 201, r.text
    first = r.json()
    r = await events.client.put(
        mine, json={"satisfaction": 4, "nps": 6}, headers=identities.headers(a)
    )
    assert r.status_code == 200 and r.json()["id"] == first["id"] and r.json()["nps"] == 6
    r = await events.client.put(
        mine, json={"satisfaction": 2, "nps": 3}, headers=identities.headers(b)
    )
    assert r.status_code == 201
    r = await events.client.put(mine, json=good, headers=identities.headers(c))
    assert r.status_code == 403
    for bad in ({"satisfaction": 0, "nps": 5}, {"satisfaction": 3, "nps": 11}):
        r = await events.client.put(mine, json=bad, headers=identities.headers(a))
        assert r.status_code == 422
    # A week later the feedback is final.
    async with events.runtime.db.session() as session:
        await session.execute(
            update(Feedback)
            .where(col(Feedback.id) == uuid.UUID(first["id"]))
            .values(submitted_at=utcnow() - timedelta(days=7, minutes=1))
        )
        await session.commit()
    r = await events.client.put(mine, json=good, headers=identities.headers(a))
    assert r.status_code == 409 and r.json()["type"].endswith(":feedback-locked")
    assert r.json()["editable_until"]
    r = await events.client.get(mine, headers=identities.headers(a))
    assert r.json()["satisfaction"] == 4
    r = await events.client.get(f"{url}/feedback", headers=identities.headers(a))
    assert r.status_code == 403
    r = await events.client.get(f"{url}/feedback", headers=staff(identities))
    assert [f["satisfaction"] for f in r.json()["items"]] == [4, 2]
    sent = await published("events.feedback.submitted.v1", 3)
    assert [(e.data["user_id"], e.data["edited"]) for e in sent] == [
        (str(a), False),
        (str(a), True),
        (str(b), False),
    ]
    assert all(e.data["community_id"] == str(community_id) for e in sent)


def conversion(activity_id: str | None, community_id: uuid.UUID, value: float) -> Envelope:
    """metrics' conversion.recorded.v1 as its producer defines it (fields per the contract)."""
    return Envelope(
        id=uuid7(),
        source="/hearth/metrics",
        type="hearth.metrics.conversion.recorded.v1",
        time=utcnow(),
        data={
            "conversion_id": str(uuid.uuid4()),
            "kind": "trial_started",
            "community_id": str(community_id),
            "user_id": str(uuid.uuid4()),
            "activity_id": activity_id,
            "invite_channel": "wechat",
            "value": value,
            "occurred_at": utcnow().isoformat(),
            "some_future_field": 1,
        },
    )


async def test_summary_report_csv_conversions_and_summarized(
    events: RunningService, identities: Identities, directory, published
) -> None:
    community_id, [host, a, b, c] = await directory.community(events, members=4)
    activity = await create(
        events,
        identities,
        community_id,
        hosts=[str(host)],
        questions=[{"id": "team", "prompt": "Team", "required": False}],
    )
    url = f"/activities/{activity['id']}"
    await events.client.post(
        f"{url}/registrations", json={"answers": {"team": "Ops"}}, headers=identities.headers(a)
    )
    for user in (b, c):
        await events.client.post(f"{url}/registrations", headers=identities.headers(user))
    rt = events.runtime
    # Conversions attributed to the activity count (once each, even redelivered); others do not.
    mine = conversion(activity["id"], community_id, 30.0)
    for envelope in (mine, mine, conversion(None, community_id, 99.0)):
        await conversions.handle(rt.db, rt.tables, envelope)
    await conversions.handle(rt.db, rt.tables, conversion(activity["id"], community_id, 12.5))
    await check_in(events, identities, activity, a, b)
    await move(events, identities, activity, "ongoing", "ended")
    for user, score, nps in ((a, 5, 10), (b, 3, 5)):
        r = await events.client.put(
            f"{url}/feedback/me",
            json={"satisfaction": score, "nps": nps},
            headers=identities.headers(user),
        )
        assert r.status_code == 201

    r = await events.client.get(f"{url}/summary", headers=identities.headers(a))
    assert r.status_code == 403
    r = await events.client.get(f"{url}/summary", headers=identities.headers(host))
    assert r.status_code == 200, r.text
    summary = r.json()
    assert summary["registrations"] == 3 and summary["confirmed"] == 2
    assert summary["waitlisted"] == 1 and summary["attended"] == 2
    assert summary["attendance_rate"] == 1.0 and summary["no_shows"] == 0
    assert summary["feedback_count"] == 2 and summary["satisfaction_avg"] == 4.0
    assert summary["nps"] == 0.0  # one promoter, one detractor
    assert summary["conversions"] == 2 and summary["conversion_value"] == 42.5
    assert summary["conversions_by_kind"] == {"trial_started": 2}

    # The CSV: hosts see who and their answers; platform staff who is not a host does not.
    r = await events.client.get(f"{url}/attendees.csv", headers=identities.headers(host))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["user_id"] for row in rows] == [str(a), str(b), str(c)]
    assert rows[0]["answers"] == '{"team": "Ops"}' and rows[0]["satisfaction"] == "5"
    assert rows[2]["status"] == "waitlisted" and rows[2]["satisfaction"] == ""
    r = await events.client.get(f"{url}/attendees.csv", headers=staff(identities))
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 3 and "user_id" not in rows[0] and "answers" not in rows[0]
    r = await events.client.get(f"{url}/attendees.csv", headers=identities.headers(a))
    assert r.status_code == 403

    await move(events, identities, activity, "summarized")
    [done] = await published("events.activity.summarized.v1", 1)
    assert done.data["activity_id"] == activity["id"]
    assert done.data["community_id"] == str(community_id)
    assert done.data["confirmed"] == 2 and done.data["conversions"] == 2
    assert done.data["satisfaction_avg"] == 4.0 and done.data["nps"] == 0.0


def test_the_conversion_fact_is_tolerant_and_the_goal_metrics_match_the_catalogue() -> None:
    from typing import get_args

    fact = ConversionRecordedFact.model_validate(
        {
            "conversion_id": str(uuid.uuid4()),
            "kind": "purchase",
            "occurred_at": utcnow().isoformat(),
            "unknown": "ignored",
        }
    )
    assert fact.activity_id is None and fact.value is None
    try:
        from hearth_metrics.counters.events import MetricName
    except ImportError:  # pragma: no cover - metrics is part of the workspace
        raise AssertionError("metrics must be installed in the workspace") from None
    assert set(get_args(GoalMetric)) == set(get_args(MetricName))

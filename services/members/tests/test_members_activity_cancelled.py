"""Events' registration facts in members' inbox: a cancelled activity (registration.voided) and a
promotion from the waitlist (registration.promoted), each once.

The event is built and checked by events' own model (servicekit.testing.contracts), so a field
events renames or drops breaks this test rather than the inbox.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from members_testkit import publish, took
from servicekit.ids import utcnow
from servicekit.testing.harness import Identities, RunningService, eventually

VOIDED = "hearth.events.registration.voided.v1"


async def test_every_registrant_of_a_cancelled_activity_is_told_once(
    members: RunningService, identities: Identities, nats_client: Any, subject_prefix: str
) -> None:
    activity, community = uuid.uuid4(), uuid.uuid4()
    users = [uuid.uuid4() for _ in range(3)]
    starts = datetime(2031, 6, 1, 19, 0, tzinfo=timezone(timedelta(hours=8)))
    sent = []
    for user, was in zip(users, ("confirmed", "waitlisted", "pending"), strict=True):
        sent.append(
            await publish(
                nats_client,
                subject_prefix,
                VOIDED,
                {
                    "registration_id": str(uuid.uuid4()),
                    "activity_id": str(activity),
                    "community_id": str(community),
                    "user_id": str(user),
                    "title": "Night market",
                    "starts_at": starts.isoformat(),
                    "was": was,
                    "voided_at": utcnow().isoformat(),
                },
                subject=str(activity),
            )
        )
    # A redelivery of the first one: still one notification.
    await publish(nats_client, subject_prefix, VOIDED, sent[0].data, envelope=sent[0])
    await eventually(took(members, "members__reminders", 4))
    for user in users:
        r = await members.client.get("/me/notifications", headers=identities.headers(user))
        notes = [n for n in r.json()["items"] if n["kind"] == "event.cancelled"]
        assert len(notes) == 1, (user, r.json())
        assert notes[0]["title"] == "Cancelled: Night market"
        assert notes[0]["body"] == "Night market on 2031-06-01 11:00 UTC has been cancelled."
        assert notes[0]["community_id"] == str(community)
        assert notes[0]["data"]["activity_id"] == str(activity)


async def test_a_promoted_registrant_is_told_their_seat_is_confirmed(
    members: RunningService, identities: Identities, nats_client: Any, subject_prefix: str
) -> None:
    user, activity, community = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await publish(
        nats_client,
        subject_prefix,
        "hearth.events.registration.promoted.v1",
        {
            "registration_id": str(uuid.uuid4()),
            "activity_id": str(activity),
            "community_id": str(community),
            "user_id": str(user),
            "promoted_at": utcnow().isoformat(),
        },
        subject=str(activity),
    )
    await eventually(took(members, "members__reminders", 1))
    r = await members.client.get("/me/notifications", headers=identities.headers(user))
    [note] = [n for n in r.json()["items"] if n["kind"] == "event.promoted"]
    assert note["community_id"] == str(community)
    assert note["data"]["activity_id"] == str(activity)

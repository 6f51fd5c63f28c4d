"""Content, activity and moderation measures from their producers' facts (tolerant of planned)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from metrics_testkit import PROBLEM, commented, community, produced, published

from hearth_metrics.measures.consumers import measures
from servicekit.ids import utcnow, uuid7
from servicekit.testing.harness import Identities, RunningService, relay_envelope
from servicekit.testing.membership import redelivered

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
H = timedelta(hours=1)
PARAMS = {"start": "2026-03-02", "end": "2026-03-08"}


async def feed(metrics: RunningService, *envelopes: Any) -> None:
    rt = metrics.runtime
    for env in envelopes:
        assert await measures.handle(rt.db, rt.tables, env)


async def get(metrics: RunningService, identities: Identities, owner: uuid.UUID, path: str) -> Any:
    r = await metrics.client.get(path, params=PARAMS, headers=identities.headers(owner))
    assert r.status_code == 200, r.text
    return r.json()


async def test_content_measures_per_post_and_column(
    metrics: RunningService, identities: Identities
) -> None:
    cid, owner, _ = await community(metrics)
    author, reader = uuid.uuid4(), uuid.uuid4()
    column = uuid.uuid4()
    a, b, c = uuid7(), uuid7(), uuid7()
    first_comment = commented(cid, a, reader, T0 + 2 * H)
    await feed(
        metrics,
        published(cid, author, T0, post_id=a, column_id=column),
        published(cid, author, T0 + H, post_id=b, column_id=column),
        published(cid, author, T0 + 2 * H, post_id=c),
        commented(cid, a, author, T0 + H),  # the author's own comment: not a response
        first_comment,
        commented(cid, a, reader, T0 + 5 * H),
        commented(cid, b, reader, T0 + 5 * H),  # b answered after 4 h
        produced(
            "hearth.content.post.shared.v1",
            post_id=a,
            share_id=uuid7(),
            community_id=cid,
            to_community_id=uuid.uuid4(),
            author_id=author,
            sharer_id=reader,
            shared_at=T0 + 3 * H,
        ),
        # Planned by content (tolerant models): reactions and batched views.
        relay_envelope(
            "hearth.content.reaction.added.v1",
            community_id=str(cid),
            post_id=str(a),
            user_id=str(reader),
            kind="like",
        ),
        relay_envelope(
            "hearth.content.reaction.added.v1",
            community_id=str(cid),
            target_type="post",
            target_id=str(c),
            kind="thanks",
        ),
        relay_envelope(
            "hearth.content.reaction.added.v1",
            community_id=str(cid),
            target_type="comment",
            target_id=str(uuid7()),
            kind="like",
        ),
        # Content's shape (ViewsCounted on its branch): no top-level community.
        relay_envelope(
            "hearth.content.views.counted.v1",
            posts=[
                {
                    "post_id": str(a),
                    "community_id": str(cid),
                    "author_id": str(author),
                    "column_id": str(column),
                    "views": 7,
                },
                {
                    "post_id": str(b),
                    "community_id": str(cid),
                    "author_id": str(author),
                    "column_id": str(column),
                    "views": 2,
                },
            ],
            views=9,
            counted_at=T0.isoformat(),
        ),
        relay_envelope(
            "hearth.content.views.counted.v1", community_id=str(cid), post_id=str(c), count=1
        ),
    )
    # A redelivered comment changes nothing (the inbox).
    rt = metrics.runtime
    assert not await measures.handle(rt.db, rt.tables, first_comment)
    got = await get(metrics, identities, owner, f"/communities/{cid}/measures/content")
    assert (got["posts"], got["reads"], got["reactions"], got["comments"], got["shares"]) == (
        3,
        10,
        2,
        4,
        1,
    )
    assert got["median_first_response_seconds"] == 3 * 3600.0  # 2 h and 4 h
    assert got["unanswered_share"] == round(1 / 3, 6)
    by_column = {c_["column_id"]: c_ for c_ in got["by_column"]}
    assert by_column[str(column)]["posts"] == 2 and by_column[str(column)]["reads"] == 9
    assert by_column[None]["posts"] == 1
    top = got["top"]
    assert top[0]["post_id"] == str(a) and top[0]["first_response_seconds"] == 7200.0
    assert [t["comments"] for t in top] == [3, 1, 0]
    # comment.deleted takes one off.
    await feed(
        metrics,
        produced(
            "hearth.content.comment.deleted.v1",
            comment_id=uuid7(),
            post_id=a,
            community_id=cid,
            deleted_by=reader,
            deleted_at=T0 + 6 * H,
        ),
    )
    got = await get(metrics, identities, owner, f"/communities/{cid}/measures/content")
    assert got["comments"] == 3


def registration(cid: uuid.UUID, activity: uuid.UUID, user: uuid.UUID, at: datetime) -> Any:
    return produced(
        "hearth.events.registration.confirmed.v1",
        registration_id=uuid7(),
        activity_id=activity,
        community_id=cid,
        user_id=user,
        registered_at=at,
    )


async def test_activity_measures_attendance_no_shows_satisfaction_nps(
    metrics: RunningService, identities: Identities
) -> None:
    cid, owner, _ = await community(metrics)
    activity = uuid.uuid4()
    people = [uuid.uuid4() for _ in range(6)]
    envs = [
        produced(
            "hearth.events.activity.published.v1",
            activity_id=activity,
            community_id=cid,
            title="Meetup",
            kind="meetup",
            starts_at=T0 + 24 * H,
            ends_at=T0 + 26 * H,
            capacity=10,
            published_by=owner,
            published_at=T0,
        )
    ]
    envs += [registration(cid, activity, u, T0 + H) for u in people]
    envs.append(
        produced(
            "hearth.events.registration.cancelled.v1",
            registration_id=uuid7(),
            activity_id=activity,
            community_id=cid,
            user_id=people[5],
            was="confirmed",
            cancelled_at=T0 + 2 * H,
        )
    )
    for u in people[:3]:
        envs.append(
            produced(
                "hearth.events.attendance.checked_in.v1",
                activity_id=activity,
                community_id=cid,
                user_id=u,
                checked_in_at=T0 + 24 * H,
            )
        )
    for u in people[3:5]:
        envs.append(
            produced(
                "hearth.events.attendance.no_show.v1",
                activity_id=activity,
                community_id=cid,
                user_id=u,
                activity_ended_at=T0 + 26 * H,
            )
        )
    # Feedback is planned by events: satisfaction 1-5, NPS 0-10; the newest edit wins.
    for u, sat, nps, at in (
        (people[0], 5, 10, T0 + 27 * H),
        (people[1], 4, 9, T0 + 27 * H),
        (people[2], 2, 3, T0 + 27 * H),
        (people[2], 3, 7, T0 + 28 * H),  # edited: now a passive
    ):
        envs.append(
            relay_envelope(
                "hearth.events.feedback.submitted.v1",
                activity_id=str(activity),
                community_id=str(cid),
                user_id=str(u),
                satisfaction=sat,
                nps=nps,
                submitted_at=at.isoformat(),
            )
        )
    # The older edit arriving last changes nothing.
    envs.append(
        relay_envelope(
            "hearth.events.feedback.updated.v1",
            activity_id=str(activity),
            community_id=str(cid),
            user_id=str(people[2]),
            satisfaction=1,
            nps=0,
            updated_at=(T0 + 27.5 * H).isoformat(),
        )
    )
    await feed(metrics, *envs)
    got = await get(metrics, identities, owner, f"/communities/{cid}/measures/activities")
    assert (got["activities"], got["registrations"], got["attended"], got["no_shows"]) == (
        1,
        5,
        3,
        2,
    )
    assert got["attendance_rate"] == 0.6
    assert got["satisfaction"] == 4.0  # (5 + 4 + 3) / 3
    assert got["nps"] == round(100 * (2 - 0) / 3, 2)  # two promoters, one passive
    item = got["items"][0]
    assert (item["title"], item["feedback"], item["registrations"]) == ("Meetup", 3, 5)


async def test_activity_measures_of_a_small_internal_community_are_suppressed(
    metrics: RunningService, identities: Identities
) -> None:
    cid, owner, people = await community(metrics, kind="internal", members=3)
    activity = uuid.uuid4()
    await feed(
        metrics,
        produced(
            "hearth.events.activity.published.v1",
            activity_id=activity,
            community_id=cid,
            title="Offsite",
            kind="meetup",
            starts_at=T0 + 24 * H,
            ends_at=T0 + 26 * H,
            capacity=10,
            published_by=owner,
            published_at=T0,
        ),
        *(registration(cid, activity, u, T0) for u in people),
    )
    got = await get(metrics, identities, owner, f"/communities/{cid}/measures/activities")
    assert got["registrations"] is None and got["suppressed"]
    assert got["items"][0]["registrations"] is None and got["items"][0]["suppressed"]


async def test_moderation_measures(metrics: RunningService, identities: Identities) -> None:
    cid, owner, _ = await community(metrics)
    member = uuid.uuid4()
    reports = [uuid7() for _ in range(3)]
    appeal = uuid7()
    sanction = produced(
        "hearth.moderation.sanction.applied.v1",
        sanction_id=uuid7(),
        community_id=cid,
        user_id=member,
        level="warning",
        reason="spam",
        evidence_ref="ev-1",
        applied_at=T0 + 3 * H,
    )
    envs = [sanction]
    for i, rid in enumerate(reports):
        envs.append(
            relay_envelope(
                "hearth.moderation.report.filed.v1",
                report_id=str(rid),
                community_id=str(cid),
                filed_at=(T0 + i * H).isoformat(),
            )
        )
    # Resolved before filed arrives is fine (rows merge in any order).
    envs.insert(
        0,
        relay_envelope(
            "hearth.moderation.report.resolved.v1",
            report_id=str(reports[0]),
            community_id=str(cid),
            outcome="upheld",
            resolved_at=(T0 + 2 * H).isoformat(),
        ),
    )
    envs.append(
        relay_envelope(
            "hearth.moderation.report.resolved.v1",
            report_id=str(reports[1]),
            community_id=str(cid),
            outcome="dismissed",
            resolved_at=(T0 + 5 * H).isoformat(),
        )
    )
    envs.append(
        relay_envelope(
            "hearth.moderation.appeal.filed.v1",
            appeal_id=str(appeal),
            community_id=str(cid),
            user_id=str(member),
            filed_at=(T0 + 4 * H).isoformat(),
        )
    )
    envs.append(
        relay_envelope(
            "hearth.moderation.appeal.decided.v1",
            appeal_id=str(appeal),
            community_id=str(cid),
            decision="overturned",
            decided_at=(T0 + 9 * H).isoformat(),
        )
    )
    envs.append(
        relay_envelope(
            "hearth.moderation.sentiment.alert_opened.v1",
            alert_id=str(uuid7()),
            community_id=str(cid),
            opened_at=(T0 + H).isoformat(),
        )
    )
    await feed(metrics, *envs)
    rt = metrics.runtime
    assert await measures.handle(rt.db, rt.tables, redelivered(sanction))  # a republish
    got = await get(metrics, identities, owner, f"/communities/{cid}/measures/moderation")
    assert (got["reports"], got["reports_actioned"]) == (3, 2)
    assert got["median_time_to_action_seconds"] == 3 * 3600.0  # 2 h and 4 h
    assert got["report_outcomes"] == {"dismissed": 1, "upheld": 1}
    assert (got["sanctions"], got["sanctions_by_level"]) == (1, {"warning": 1})
    assert (got["appeals"], got["appeals_decided"], got["appeal_outcomes"]) == (
        1,
        1,
        {"overturned": 1},
    )
    assert got["sentiment_alerts"] == 1
    # A member of the community does not read moderation health.
    stranger = uuid.uuid4()
    r = await metrics.client.get(
        f"/communities/{cid}/measures/moderation", headers=identities.headers(stranger)
    )
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM


async def test_health_score_shows_its_parts_from_the_measures(
    metrics: RunningService, identities: Identities
) -> None:
    from metrics_testkit import joined

    from hearth_metrics.funnels.consumers import funnel

    rt = metrics.runtime
    cid, owner, _ = await community(metrics)
    people = [uuid.uuid4() for _ in range(10)]
    for i, user in enumerate(people):  # 4 joined the week before, 6 in the window
        at = T0 - 3 * 24 * H if i < 4 else T0 + i * H
        assert await funnel.handle(rt.db, rt.tables, joined(cid, user, at))
    post = uuid7()
    envs = [published(cid, people[4], T0 + 12 * H, post_id=post)]
    envs.append(commented(cid, post, people[5], T0 + 13 * H))  # answered after 1 h
    for env in envs:
        assert await funnel.handle(rt.db, rt.tables, env)
        assert await measures.handle(rt.db, rt.tables, env)
    r = await metrics.client.get(
        f"/communities/{cid}/health",
        params={"start": "2026-03-02", "end": "2026-03-08"},
        headers=identities.headers(owner),
    )
    assert r.status_code == 200, r.text
    got = r.json()
    parts = {p["name"]: p for p in got["parts"]}
    assert parts["activity"]["inputs"] == {"members": 10, "active_contributors": 2}
    assert parts["activity"]["value"] == 1.0  # 20 % of members contributed: full
    assert parts["responsiveness"]["value"] == 1.0  # answered, within the hour
    assert parts["growth"]["inputs"] == {"new_members": 6, "new_members_before": 4}
    assert parts["growth"]["value"] == 0.75
    assert parts["conversion"]["value"] == 1.0  # 2 of 6 new members contributed (> 30 %)
    assert parts["safety"]["value"] == 1.0 and parts["events"]["value"] is None
    weights = {n: p["weight"] for n, p in parts.items() if p["value"] is not None}
    values = {n: p["value"] for n, p in parts.items() if p["value"] is not None}
    want = 100 * sum(weights[n] * values[n] for n in values) / sum(weights.values())
    assert got["score"] == round(want, 2) and got["suppressed"] is None


def test_reactions_and_votes_read_contents_own_events() -> None:
    """Content's reaction.added and poll.voted (its models) give metrics' activity facts."""
    from hearth_metrics.activity.facts import fact_of
    from hearth_metrics.measures.consumers import ReactionFact
    from servicekit.testing.contracts import producer_envelope

    community, post, member, at = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), utcnow()
    reacted = producer_envelope(
        "hearth.content.reaction.added.v1",
        {
            "post_id": str(post),
            "community_id": str(community),
            "post_author_id": str(uuid.uuid4()),
            "member_id": str(member),
            "kind": "like",
            "reacted_at": at.isoformat(),
        },
    )
    fact = fact_of(reacted)
    assert fact is not None and (fact.what, fact.user_id, fact.at) == ("reactions", member, at)
    assert ReactionFact.model_validate(reacted.data).post() == post
    vote = {
        "poll_id": str(uuid.uuid4()),
        "community_id": str(community),
        "author_id": str(uuid.uuid4()),
        "anonymous": False,
        "voter_id": str(member),
        "ballot_id": str(uuid.uuid4()),
        "option_ids": [str(uuid.uuid4())],
        "voted_at": at.isoformat(),
    }
    fact = fact_of(producer_envelope("hearth.content.poll.voted.v1", vote))
    assert fact is not None and (fact.what, fact.user_id) == ("votes", member)
    # A changed vote and an anonymous one are nobody's new activity.
    assert (
        fact_of(producer_envelope("hearth.content.poll.voted.v1", vote | {"changed": True})) is None
    )
    anonymous = vote | {"anonymous": True, "voter_id": None}
    assert fact_of(producer_envelope("hearth.content.poll.voted.v1", anonymous)) is None

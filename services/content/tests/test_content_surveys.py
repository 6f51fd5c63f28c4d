"""Surveys (调查): questions checked, a window, one response per member under any concurrency,
results per question (counts, means, NPS), and a streamed CSV export that no spreadsheet runs.
"""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from hearth_content.app import definition
from hearth_content.surveys import service as surveys
from hearth_content.surveys.models import SurveyResponse
from servicekit.ids import utcnow
from servicekit.testing.harness import Identities, RunningService, eventually

PROBLEM = "application/problem+json"
QUESTIONS = [
    {"prompt": "Which city?", "kind": "single", "options": ["上海", "北京", "深圳"]},
    {
        "prompt": "Which topics?",
        "kind": "multiple",
        "options": ["AI", "Design", "Ops", "Growth"],
        "max_choices": 2,
        "required": False,
    },
    {"prompt": "How useful were the meetups?", "kind": "scale_1_5"},
    {"prompt": "Would you recommend us?", "kind": "scale_0_10"},
    {"prompt": "Anything else?", "kind": "text", "required": False},
]


class Room:
    """A community with an owner, a moderator, members, and one of each refused kind."""

    def __init__(self, content: RunningService, feed: Any, identities: Identities) -> None:
        self.content, self.feed, self.ids = content, feed, identities
        self.owner, self.mod, self.author = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        self.members = [uuid.uuid4() for _ in range(4)]
        self.muted, self.removed, self.banned = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        self.stranger = uuid.uuid4()

    async def setup(self, visibility: str = "private") -> Room:
        self.id = await self.feed.community(owner=self.owner, visibility=visibility)
        await self.feed.member(self.id, self.mod, role="moderator")
        for user in (self.author, *self.members):
            await self.feed.member(self.id, user)
        self.mute_end = utcnow() + timedelta(hours=3)
        await self.feed.member(self.id, self.muted, muted_until=self.mute_end)
        await self.feed.member(self.id, self.removed, status="removed")
        await self.feed.member(self.id, self.banned, status="banned")
        return self

    async def call(self, method: str, path: str, user: uuid.UUID, body: Any = None) -> Any:
        return await self.content.client.request(
            method, path, headers=self.ids.headers(user), json=body
        )

    async def survey(self, **over: Any) -> str:
        body = {
            "title": "社区满意度调查",
            "questions": QUESTIONS,
            "closes_at": (utcnow() + timedelta(days=7)).isoformat(),
        } | over
        r = await self.call("POST", f"/communities/{self.id}/surveys", self.author, body)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def answer(self, survey: str, user: uuid.UUID, answers: dict[str, Any]) -> Any:
        return await self.call("PUT", f"/surveys/{survey}/responses/me", user, {"answers": answers})


GOOD = {"q1": 0, "q2": [1, 2], "q3": 4, "q4": 10, "q5": "很好"}


async def test_answers_are_checked_against_the_questions(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    room = await Room(content, feed, identities).setup()
    survey = await room.survey()
    r = await room.call("GET", f"/surveys/{survey}", room.members[0])
    assert r.status_code == 200 and r.json()["state"] == "open", r.text
    assert [q["id"] for q in r.json()["questions"]] == ["q1", "q2", "q3", "q4", "q5"]
    bad = {
        "unknown question": GOOD | {"q9": 1},
        "required missing": {k: v for k, v in GOOD.items() if k != "q3"},
        "option out of range": GOOD | {"q1": 3},
        "too many choices": GOOD | {"q2": [0, 1, 2]},
        "scale out of range": GOOD | {"q3": 6},
        "0-10 below zero": GOOD | {"q4": -1},
        "text for a scale": GOOD | {"q3": "4"},
        "list for a single": GOOD | {"q1": [0]},
        "number for text": GOOD | {"q5": 5},
    }
    for why, answers in bad.items():
        r = await room.answer(survey, room.members[0], answers)
        assert r.status_code == 422, (why, r.status_code, r.text)
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["type"].endswith(":invalid-answers"), (why, r.text)
        assert r.json()["errors"], why
    r = await room.answer(survey, room.members[0], bad["required missing"] | {"q1": 9})
    assert {e["question"] for e in r.json()["errors"]} == {"q1", "q3"}  # every bad one listed
    # Malformed bodies are the framework's 422, still a problem.
    r = await room.call("PUT", f"/surveys/{survey}/responses/me", room.members[0], {"x": 1})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    # Optional questions may be left out; nothing was stored by the refused attempts.
    r = await room.answer(survey, room.members[0], {"q1": 2, "q3": 3, "q4": 7})
    assert r.status_code == 200, r.text
    assert r.json()["answers"] == {"q1": 2, "q3": 3, "q4": 7} and r.json()["revision"] == 1
    # Bad questions are refused when the survey is made.
    for why, questions in {
        "one option": [{"prompt": "p", "kind": "single", "options": ["a"]}],
        "duplicate options": [{"prompt": "p", "kind": "single", "options": ["a", "a"]}],
        "options on a scale": [{"prompt": "p", "kind": "scale_1_5", "options": ["a", "b"]}],
        "max over options": [
            {"prompt": "p", "kind": "multiple", "options": ["a", "b"], "max_choices": 3}
        ],
        "no questions": [],
    }.items():
        r = await room.call(
            "POST",
            f"/communities/{room.id}/surveys",
            room.author,
            {"title": "t", "questions": questions, "closes_at": "2099-01-01T00:00:00Z"},
        )
        assert r.status_code == 422, (why, r.text)
    r = await room.call(
        "POST",
        f"/communities/{room.id}/surveys",
        room.author,
        {"title": "t", "questions": QUESTIONS, "closes_at": utcnow().isoformat()},
    )
    assert r.status_code == 422, r.text  # a window already over
    r = await room.call(
        "POST",
        f"/communities/{room.id}/surveys",
        room.author,
        {
            "title": "t",
            "questions": QUESTIONS,
            "opens_at": "2020-01-01T00:00:00Z",
            "closes_at": "2020-02-01T00:00:00Z",
        },
    )
    assert r.status_code == 422, r.text  # a window in the past, however well ordered


async def test_results_count_average_and_score_nps(
    content: RunningService,
    feed: Any,
    identities: Identities,
    stream_events: Any,
    subject_prefix: str,
) -> None:
    room = await Room(content, feed, identities).setup()
    survey = await room.survey()
    given = [
        {"q1": 0, "q2": [0, 1], "q3": 5, "q4": 10},
        {"q1": 0, "q2": [1], "q3": 4, "q4": 9},
        {"q1": 1, "q3": 3, "q4": 8},
        {"q1": 2, "q2": [3, 1], "q3": 1, "q4": 3, "q5": "more talks"},
    ]
    for user, answers in zip(room.members, given, strict=True):
        assert (await room.answer(survey, user, answers)).status_code == 200
    r = await room.call("GET", f"/surveys/{survey}/results", room.members[0])
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["responses"] == 4 and res["state"] == "open"
    q1, q2, q3, q4, q5 = res["questions"]
    assert q1["counts"] == {"上海": 2, "北京": 1, "深圳": 1}
    assert q2["counts"] == {"AI": 1, "Design": 3, "Ops": 0, "Growth": 1} and q2["answered"] == 3
    assert q3["counts"] == {"1": 1, "2": 0, "3": 1, "4": 1, "5": 1} and q3["mean"] == 3.25
    assert q3["nps"] is None
    # 2 promoters (9, 10), 1 passive (8), 1 detractor (3): (2 - 1) / 4 = +25.
    assert q4["nps"] == 25.0 and q4["mean"] == 7.5
    assert q5["answered"] == 1
    subject = f"{subject_prefix}.content.survey.answered.v1"

    async def four() -> list[dict]:
        events = await stream_events(subject)
        found = [e.data for e in events if e.data["survey_id"] == survey]
        return found if len(found) == 4 else []

    await eventually(four, timeout=10)
    mine = await four()
    assert len(mine) == 4 and {e["respondent_id"] for e in mine} == {str(u) for u in room.members}
    assert {e["community_id"] for e in mine} == {room.id}
    assert all(e["answered_at"] and e["revision"] == 1 for e in mine)


async def test_the_window_editing_and_closing(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    room = await Room(content, feed, identities).setup()
    later = await room.survey(opens_at=(utcnow() + timedelta(days=1)).isoformat())
    r = await room.answer(later, room.members[0], GOOD)
    assert r.status_code == 409 and r.json()["type"].endswith(":survey-not-open"), r.text
    once = await room.survey(editable=False)
    assert (await room.answer(once, room.members[0], GOOD)).status_code == 200
    r = await room.answer(once, room.members[0], GOOD | {"q3": 1})
    assert r.status_code == 409 and r.json()["type"].endswith(":already-answered"), r.text
    survey = await room.survey()
    assert (await room.answer(survey, room.members[0], GOOD)).status_code == 200
    r = await room.answer(survey, room.members[0], GOOD | {"q3": 1})
    assert r.status_code == 200 and r.json()["revision"] == 2 and r.json()["answers"]["q3"] == 1
    r = await room.call("GET", f"/surveys/{survey}/responses/me", room.members[0])
    assert r.json()["answers"]["q3"] == 1
    r = await room.call("GET", f"/surveys/{survey}/responses/me", room.members[1])
    assert r.status_code == 404
    # Only its author and the community's admins close it; a member is refused.
    r = await room.call("POST", f"/surveys/{survey}/close", room.members[1])
    assert r.status_code == 403, r.text
    r = await room.call("POST", f"/surveys/{survey}/close", room.owner)
    assert r.status_code == 200 and r.json()["state"] == "closed", r.text
    assert r.json()["response_count"] == 1
    r = await room.answer(survey, room.members[0], GOOD)
    assert r.status_code == 409 and r.json()["type"].endswith(":survey-closed")
    r = await room.answer(survey, room.members[1], GOOD)
    assert r.status_code == 409
    r = await room.call("POST", f"/surveys/{survey}/close", room.author)
    assert r.status_code == 409
    r = await room.call("GET", f"/communities/{room.id}/surveys", room.members[2])
    assert [s["id"] for s in r.json()["items"]] == [survey, once, later]


async def test_who_may_answer_create_and_read(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    room = await Room(content, feed, identities).setup()
    survey = await room.survey(results_public=False)
    r = await room.answer(survey, room.muted, GOOD)
    assert r.status_code == 403 and r.json()["type"].endswith(":muted"), r.text
    assert r.json()["muted_until"] == room.mute_end.isoformat()
    assert room.mute_end.isoformat() in r.json()["detail"]
    for user, slug in ((room.removed, "removed"), (room.banned, "banned")):
        r = await room.answer(survey, user, GOOD)
        assert r.status_code == 403 and r.json()["type"].endswith(f":{slug}"), r.text
    r = await room.answer(survey, room.stranger, GOOD)
    assert r.status_code == 404, r.text  # a private community's survey is not revealed
    r = await room.call(
        "POST",
        f"/communities/{room.id}/surveys",
        room.muted,
        {"title": "t", "questions": QUESTIONS, "closes_at": "2099-01-01T00:00:00Z"},
    )
    assert r.status_code == 403 and r.json()["muted_until"], r.text
    # Results kept to the team: members are refused, the author and moderators read them.
    assert (
        await room.call("GET", f"/surveys/{survey}/results", room.members[0])
    ).status_code == 403
    assert (await room.call("GET", f"/surveys/{survey}/results", room.author)).status_code == 200
    assert (await room.call("GET", f"/surveys/{survey}/results", room.mod)).status_code == 200
    # An archived community is read-only.
    snapshot = feed.snapshots.community(uuid.UUID(room.id), room.owner, archived=True)
    assert await feed.deliver(_memberships(), snapshot)
    r = await room.answer(survey, room.members[0], GOOD)
    assert r.status_code == 409 and r.json()["type"].endswith(":community-archived"), r.text
    assert (await room.call("GET", f"/surveys/{survey}", room.members[0])).status_code == 200


def _memberships() -> Any:
    from hearth_content.consumers import memberships

    return memberships


async def _rows(content: RunningService, survey: str) -> list[SurveyResponse]:
    async with content.runtime.db.session() as session:
        stmt = select(SurveyResponse).where(col(SurveyResponse.survey_id) == uuid.UUID(survey))
        return list((await session.exec(stmt)).all())


@pytest.mark.parametrize("editable", [False, True])
async def test_one_response_per_member_under_concurrent_submission(
    launch: Any, any_database_url: str, feed_for: Any, identities: Identities, editable: bool
) -> None:
    """30 simultaneous submissions by one member leave one row, on SQLite and PostgreSQL; a
    survey that allows no edits takes exactly one of them."""
    content = await launch(definition, database_url=any_database_url)
    room = await Room(content, feed_for(content), identities).setup()
    survey = await room.survey(editable=editable)
    user = room.members[0]
    answers = [GOOD | {"q3": 1 + i % 5} for i in range(30)]
    results = await asyncio.gather(*(room.answer(survey, user, a) for a in answers))
    codes = sorted(r.status_code for r in results)
    if editable:
        assert codes == [200] * 30, [r.text for r in results if r.status_code != 200]
    else:
        assert codes == [200] + [409] * 29, codes
        assert all(
            r.json()["type"].endswith(":already-answered") for r in results if r.status_code == 409
        )
    rows = await _rows(content, survey)
    assert len(rows) == 1
    assert rows[0].revision == (30 if editable else 1)
    r = await room.call("GET", f"/surveys/{survey}/results", user)
    assert r.json()["responses"] == 1


async def test_csv_export_streams_every_row_neutralised_for_the_team_only(
    content: RunningService,
    feed: Any,
    identities: Identities,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    room = await Room(content, feed, identities).setup()
    survey = await room.survey(
        questions=[
            {"prompt": '=HYPERLINK("http://evil")', "kind": "text"},
            {"prompt": "Pick", "kind": "multiple", "options": ["@SUM(A1)", "安全"]},
            {"prompt": "Score", "kind": "scale_0_10"},
        ]
    )
    texts = ["=cmd|' /C calc'!A0", "+1+2", "-2+3", "@SUM(1)", "\tTab", "普通的回答, with a comma"]
    users = [*room.members, room.author, room.owner]
    # Three rows per query: the export must walk several batches and lose none.
    monkeypatch.setattr(surveys, "BATCH", 3)
    for user, text in zip(users, texts, strict=False):
        r = await room.answer(survey, user, {"q1": text, "q2": [0, 1], "q3": 5})
        assert r.status_code == 200, r.text
    r = await room.call("GET", f"/surveys/{survey}/export.csv", room.members[0])
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await room.call("GET", f"/surveys/{survey}/export.csv", room.mod)
    assert r.status_code == 403  # the survey's author and the community's admins only
    r = await room.call("GET", f"/surveys/{survey}/export.csv", room.stranger)
    assert r.status_code == 404
    for who in (room.author, room.owner):
        r = await room.call("GET", f"/surveys/{survey}/export.csv", who)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        assert r.text.startswith("\ufeff")
        table = list(csv.reader(io.StringIO(r.text.removeprefix("\ufeff"))))
        header, rows = table[0], table[1:]
        assert header[:3] == ["respondent_id", "submitted_at", "updated_at"]
        assert header[3] == 'q1: =HYPERLINK("http://evil")'  # prefixed by its id: inert
        assert len(rows) == len(texts)
        assert {row[0] for row in rows} == {str(u) for u in users[: len(texts)]}
        cells = {row[3] for row in rows}
        assert cells == {
            "'=cmd|' /C calc'!A0",
            "'+1+2",
            "'-2+3",
            "'@SUM(1)",
            "'\tTab",
            "普通的回答, with a comma",
        }
        for row in rows:
            assert not row[3].startswith(("=", "+", "-", "@"))
            assert row[4] == "'@SUM(A1); 安全" and row[5] == "5"


async def test_a_survey_event_is_announced_when_created_and_closed(
    content: RunningService,
    feed: Any,
    identities: Identities,
    stream_events: Any,
    subject_prefix: str,
) -> None:
    room = await Room(content, feed, identities).setup()
    survey = await room.survey()
    assert (await room.call("POST", f"/surveys/{survey}/close", room.author)).status_code == 200

    async def both() -> bool:
        created = await stream_events(f"{subject_prefix}.content.survey.created.v1")
        closed = await stream_events(f"{subject_prefix}.content.survey.closed.v1")
        return any(
            e.data["survey_id"] == survey and e.data["questions"] == 5 for e in created
        ) and any(
            e.data["survey_id"] == survey and e.data["closed_by"] == str(room.author)
            for e in closed
        )

    await eventually(both, timeout=10)

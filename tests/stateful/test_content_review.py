"""The two-stage review (初审 + 复审) as a state machine, against the real content service.

An author submits posts; moderators, admins and the owner approve or reject them stage by
stage in any order Hypothesis finds; the author resubmits rejected ones (a new round, screened
again). After every step each post's state over HTTP must equal a model, and: a post is visible
to another member only once both stages approved it in one round, one person never decides both
stages of one round, and a rejected post is never visible.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from hearth_content.app import definition
from hearth_content.consumers import memberships, screening
from servicekit.events import Envelope
from servicekit.ids import utcnow, uuid7
from servicekit.testing.harness import RunningService
from servicekit.testing.membership import Snapshots
from servicekit.testing.stateful import Stage, bounded

ROLES = ("moderator", "moderator", "admin", "admin", "owner")
STAGE_ROLES = {1: {"moderator", "admin", "owner"}, 2: {"admin", "owner"}}


@dataclass
class Model:
    """One post as the model sees it."""

    id: str
    status: str = "in_review"
    stage: int = 1
    round: int = 0
    deciders: dict[int, set[uuid.UUID]] = field(default_factory=dict)  # round -> reviewers


class World:
    """The running content service; upstream facts are handed to its consumers directly."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.service: RunningService = stage.start(definition)
        self.snapshots = Snapshots()

    def deliver(self, consumer: Any, envelope: Envelope) -> None:
        runtime = self.service.runtime
        assert self.stage.loop.run(consumer.handle(runtime.db, runtime.tables, envelope))

    def call(self, method: str, url: str, user: uuid.UUID, **body: Any) -> Any:
        headers = self.stage.identities.headers(user)
        return self.stage.loop.run(
            self.service.client.request(method, url, headers=headers, json=body or None)
        )

    def screened(self, post_id: str) -> None:
        """Moderation's screening approved the post (so it enters the human stages)."""
        data = {
            "screening_id": str(uuid7()),
            "target_type": "post",
            "target_id": post_id,
            "community_id": str(uuid.uuid4()),
            "author_id": None,
            "decision": "approved",
            "reasons": [],
            "screened_at": utcnow().isoformat(),
        }
        envelope = Envelope(
            id=uuid7(),
            source="/hearth/moderation",
            type="hearth.moderation.screening.completed.v1",
            time=utcnow(),
            data=data,
        )
        self.deliver(screening, envelope)


@pytest.fixture(scope="module")
def world(stage: Stage) -> World:
    return World(stage)


class Review(RuleBasedStateMachine):
    """One fresh community per example (two-stage review), its team, an author and a reader."""

    posts = Bundle("posts")

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world
        self.community_id = uuid.uuid4()
        self.team = [uuid.uuid4() for _ in ROLES]
        self.owner = self.team[ROLES.index("owner")]
        self.author, self.reader = uuid.uuid4(), uuid.uuid4()
        snaps = world.snapshots
        world.deliver(memberships, snaps.community(self.community_id, self.owner))
        for user, role in zip(self.team, ROLES, strict=True):
            world.deliver(memberships, snaps.membership(self.community_id, user, role=role))
        for user in (self.author, self.reader):
            world.deliver(memberships, snaps.membership(self.community_id, user))
        r = world.call(
            "PUT",
            f"/communities/{self.community_id}/review-policy",
            self.owner,
            mode="two_stages",
        )
        assert r.status_code == 200, r.text
        self.model: dict[str, Model] = {}

    @precondition(lambda self: len(self.model) < 3)
    @rule(target=posts)
    def submit(self) -> str:
        r = self.world.call(
            "POST",
            f"/communities/{self.community_id}/posts",
            self.author,
            title="Weekly notes",
            body="What happened this week.",
            format="text",
        )
        assert r.status_code == 201, r.text
        post_id = str(r.json()["id"])
        self.world.screened(post_id)
        self.model[post_id] = Model(post_id)
        return post_id

    @rule(post=posts, who=st.integers(0, len(ROLES) - 1), approve=st.booleans())
    def decide(self, post: str, who: int, approve: bool) -> None:
        m, reviewer = self.model[post], self.team[who]
        verdict = "approve" if approve else "reject"
        r = self.world.call(
            "POST", f"/posts/{post}/review/decision", reviewer, verdict=verdict, note="checked"
        )
        if m.status != "in_review":
            assert r.status_code == 409 and r.json()["type"].endswith("not-in-review"), r.text
            return
        if ROLES[who] not in STAGE_ROLES[m.stage]:
            assert r.status_code == 403, r.text
            return
        deciders = m.deciders.setdefault(m.round, set())
        if reviewer in deciders:
            assert r.status_code == 409 and r.json()["type"].endswith("same-reviewer"), r.text
            return
        assert r.status_code == 201, r.text
        assert (r.json()["stage"], r.json()["round"]) == (m.stage, m.round)
        deciders.add(reviewer)
        if not approve:
            m.status = "rejected"
        elif m.stage == 1:
            m.stage = 2
        else:
            m.status = "published"

    @rule(post=posts)
    def resubmit(self, post: str) -> None:
        m = self.model[post]
        r = self.world.call("POST", f"/posts/{post}/resubmit", self.author, body="Revised.")
        if m.status != "rejected":
            assert r.status_code == 409, r.text
            return
        assert r.status_code == 200 and r.json()["status"] == "pending_review", r.text
        assert not self.visible(post)
        self.world.screened(post)
        m.status, m.stage, m.round = "in_review", 1, m.round + 1

    def visible(self, post: str) -> bool:
        one = self.world.call("GET", f"/posts/{post}", self.reader)
        return bool(one.status_code == 200)

    @invariant()
    def posts_match_the_model(self) -> None:
        listed = self.world.call("GET", f"/communities/{self.community_id}/posts", self.reader)
        assert listed.status_code == 200, listed.text
        shown = {p["id"] for p in listed.json()["items"]}
        for post, m in self.model.items():
            seen = self.world.call("GET", f"/posts/{post}", self.owner).json()
            assert seen["status"] == m.status, (seen, m)
            if m.status == "in_review":
                assert seen["review_stage"] == m.stage, (seen, m)
            visible = self.visible(post)
            assert visible == (m.status == "published") == (post in shown), (seen, m, shown)
        assert set(shown) <= set(self.model)

    @invariant()
    def nobody_decides_both_stages(self) -> None:
        for post, m in self.model.items():
            r = self.world.call("GET", f"/posts/{post}/review/history", self.author)
            assert r.status_code == 200, r.text
            rounds: dict[int, list[tuple[int, str, str]]] = {}
            for d in r.json():
                rounds.setdefault(d["round"], []).append(
                    (d["stage"], d["verdict"], d["reviewer_id"])
                )
            for decisions in rounds.values():
                reviewers = [reviewer for _, _, reviewer in decisions]
                assert len(reviewers) == len(set(reviewers)), decisions
            if m.status == "published":  # the last round approved at both stages
                last = rounds[m.round]
                assert [(s, v) for s, v, _ in last] == [(1, "approve"), (2, "approve")], last


def test_the_two_stage_review_follows_the_model(world: World) -> None:
    run_state_machine_as_test(
        lambda: Review(world),
        settings=bounded(8, 15),
    )

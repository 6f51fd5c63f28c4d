"""An activity's lifecycle as an explicit state machine (docs/events/activities.md)."""

from __future__ import annotations

from hearth_events.models import ActivityState

S = ActivityState

# Every move an activity may make. Cancelled is reachable from any state before ended.
TRANSITIONS: dict[ActivityState, frozenset[ActivityState]] = {
    S.draft: frozenset({S.published, S.cancelled}),
    S.published: frozenset({S.registration_closed, S.ongoing, S.cancelled}),
    S.registration_closed: frozenset({S.published, S.ongoing, S.cancelled}),
    S.ongoing: frozenset({S.ended, S.cancelled}),
    S.ended: frozenset({S.summarized}),
    S.summarized: frozenset(),
    S.cancelled: frozenset(),
}

# States in which members may register (or join the waitlist).
OPEN_FOR_REGISTRATION = frozenset({S.published})
# States in which a registration may still be given up.
CANCELLABLE_REGISTRATION = frozenset({S.published, S.registration_closed})


def allowed(state: ActivityState) -> list[str]:
    """The states `state` may move to, sorted for stable problem bodies."""
    return sorted(s.value for s in TRANSITIONS[state])


def can_move(state: ActivityState, to: ActivityState) -> bool:
    """Whether the lifecycle allows `state` → `to`."""
    return to in TRANSITIONS[state]

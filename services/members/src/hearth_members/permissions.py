"""The community permission matrix: one table, checked by the code and copied into the README.

Platform staff (platform roles admin/operator) act with owner rights in every community and
outrank owners. Acting on another member also needs rank: you may only act on someone strictly
below you (owner > admin > moderator > member), and only grant roles below your own (the owner
grants admin). Nobody, staff included, demotes, removes, bans or cleans up the current owner
(`membership.guards.refuse_owner`, 409): ownership is transferred first. The README's matrix is this
table; `test_members_refusals.py::test_readme_states_the_permission_matrix_and_every_route`
checks that they agree.
"""

from __future__ import annotations

from enum import StrEnum

from hearth_members.communities.models import CommunityRole
from servicekit.identity import Principal
from servicekit.problems import forbidden

O, A, M, U = (  # noqa: E741 - one letter per role keeps the matrix readable
    CommunityRole.owner,
    CommunityRole.admin,
    CommunityRole.moderator,
    CommunityRole.member,
)


class Action(StrEnum):
    """Things a community role may do."""

    read_private = "read_private"  # see a private community, its members and goals
    update = "update"  # profile, settings, announcement, welcome templates
    archive = "archive"  # archive and restore
    manage_goals = "manage_goals"
    manage_invites = "manage_invites"
    review_applications = "review_applications"
    remove_member = "remove_member"  # strictly lower rank only
    ban_member = "ban_member"  # ban and restore (unban); strictly lower rank only
    mute_member = "mute_member"  # strictly lower rank only
    change_role = "change_role"  # strictly lower rank, and only to a role below one's own
    cleanup_notice = "cleanup_notice"
    transfer_ownership = "transfer_ownership"
    read_audit = "read_audit"


MATRIX: dict[Action, frozenset[CommunityRole]] = {
    Action.read_private: frozenset({O, A, M, U}),
    Action.update: frozenset({O, A}),
    Action.archive: frozenset({O}),
    Action.manage_goals: frozenset({O, A}),
    Action.manage_invites: frozenset({O, A}),
    Action.review_applications: frozenset({O, A}),
    Action.remove_member: frozenset({O, A, M}),
    Action.ban_member: frozenset({O, A}),
    Action.mute_member: frozenset({O, A, M}),
    Action.change_role: frozenset({O, A}),
    Action.cleanup_notice: frozenset({O, A}),
    Action.transfer_ownership: frozenset({O}),
    Action.read_audit: frozenset({O, A}),
}

RANK: dict[CommunityRole, int] = {O: 3, A: 2, M: 1, U: 0}
STAFF_RANK = 4  # platform staff outrank everyone, owners included


def effective_rank(actor: Principal, role: CommunityRole | None) -> int:
    """The actor's rank in a community: staff above owner; a non-member below everyone."""
    if actor.is_staff:
        return STAFF_RANK
    return RANK[role] if role is not None else -1


def allowed(actor: Principal, role: CommunityRole | None, action: Action) -> bool:
    """True when the matrix lets this role (or platform staff) do the action."""
    return actor.is_staff or (role is not None and role in MATRIX[action])


def check(actor: Principal, role: CommunityRole | None, action: Action) -> None:
    """Raise 403 unless allowed."""
    if not allowed(actor, role, action):
        raise forbidden(f"your role may not {action.value.replace('_', ' ')} here")


def check_over(
    actor: Principal, role: CommunityRole | None, action: Action, target: CommunityRole
) -> None:
    """Raise 403 unless allowed and the target ranks strictly below the actor."""
    check(actor, role, action)
    if effective_rank(actor, role) <= RANK[target]:
        raise forbidden(f"you may not {action.value.replace('_', ' ')} a {target.value}")


def check_grant(actor: Principal, role: CommunityRole | None, new_role: CommunityRole) -> None:
    """Raise 403 unless the actor may hand out this role (never owner: that is a transfer)."""
    if new_role == O:
        raise forbidden("ownership changes hands only by transfer")
    if effective_rank(actor, role) <= RANK[new_role]:
        raise forbidden(f"you may not grant the {new_role.value} role")


def markdown_table() -> str:
    """The matrix as the README shows it."""
    roles = [O, A, M, U]
    lines = ["| action | " + " | ".join(r.value for r in roles) + " |"]
    lines.append("|---|" + "---|" * len(roles))
    for action, who in MATRIX.items():
        cells = ["yes" if r in who else "no" for r in roles]
        lines.append(f"| {action.value} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

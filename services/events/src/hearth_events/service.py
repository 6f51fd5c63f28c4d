"""Events' use cases: keyword-only functions over a unit of work."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_events import lifecycle
from hearth_events.checkin.access import refuse_muted
from hearth_events.events import (
    ActivityPublished,
    ActivityStateChanged,
    RegistrationCancelled,
    RegistrationConfirmed,
    RegistrationPromoted,
    RegistrationReminderDue,
    RegistrationWaitlisted,
)
from hearth_events.lifecycle import CANCELLABLE_REGISTRATION
from hearth_events.models import (
    Activity,
    ActivityCreate,
    ActivityState,
    CommunityMembership,
    Registration,
    RegistrationStatus,
)
from servicekit.db import affected_rows
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.pagination import PageParams, cursor_key, invalid_cursor
from servicekit.problems import conflict, forbidden, not_found
from servicekit.readmodel import apply_snapshot
from servicekit.runtime import ServiceRuntime
from servicekit.types import as_utc

ACTIVE = "active"
# Community roles (members' vocabulary) that manage the community's activities.
ORGANISER_ROLES = frozenset({"owner", "admin"})
ORGANISER_REFUSAL = "requires platform staff or the community's owner or admin"


async def publish_activity(*, uow: UnitOfWork, data: ActivityCreate, actor: Principal) -> Activity:
    """Create an activity (published, or a draft) in a community this service knows."""
    if not await _community_known(uow.session, data.community_id):
        if not actor.is_staff:
            raise forbidden(ORGANISER_REFUSAL)
        raise not_found("community", data.community_id)
    await _require_organiser(uow.session, data.community_id, actor)
    state = ActivityState.draft if data.draft else ActivityState.published
    activity = Activity.model_validate(
        data.model_dump(exclude={"draft"}), update={"created_by": actor.subject, "state": state}
    )
    uow.session.add(activity)
    if state == ActivityState.published:
        await uow.record(
            _published_event(activity, actor, activity.created_at), subject=str(activity.id)
        )
    await uow.commit()
    return activity


def _published_event(activity: Activity, actor: Principal, at: datetime) -> ActivityPublished:
    return ActivityPublished(
        activity_id=activity.id,
        community_id=activity.community_id,
        title=activity.title,
        kind=activity.kind,
        starts_at=as_utc(activity.starts_at),
        ends_at=as_utc(activity.ends_at),
        capacity=activity.capacity,
        location=activity.location,
        online_url=activity.online_url,
        published_by=actor.subject,
        published_at=at,
    )


async def get_activity(*, uow: UnitOfWork, activity_id: uuid.UUID, actor: Principal) -> Activity:
    """One activity, for staff and active members of its community."""
    activity = await _activity(uow, activity_id)
    await _require_member_or_staff(uow.session, activity.community_id, actor)
    return activity


async def list_activities(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal, page: PageParams
) -> list[Activity]:
    """A community's activities by start time (limit+1 rows), for staff and its members."""
    await _require_member_or_staff(uow.session, community_id, actor)
    stmt = (
        select(Activity)
        .where(Activity.community_id == community_id)
        .order_by(col(Activity.starts_at), col(Activity.id))
        .limit(page.limit + 1)
    )
    if page.after:
        starts_at, ident = cursor_key(page.after, datetime, uuid.UUID)
        stmt = stmt.where(
            or_(
                col(Activity.starts_at) > starts_at,
                and_(col(Activity.starts_at) == starts_at, col(Activity.id) > ident),
            )
        )
    return list((await uow.session.exec(stmt)).all())


async def register(
    *, uow: UnitOfWork, activity_id: uuid.UUID, actor: Principal
) -> tuple[Registration, bool]:
    """Take a seat, or the next place in the FIFO waitlist; registering again is idempotent.

    Every registration first bumps the activity's `queue_length` with one UPDATE: that takes
    the activity row's lock (PostgreSQL) or the database's single writer slot (SQLite, BEGIN
    IMMEDIATE in the kernel), so registrations for one activity are serialised until commit.
    Under that lock the seat count is exact: never more confirmed than capacity, and positions
    follow the order in which registrations committed.
    """
    activity = await _activity(uow, activity_id)
    if not await _is_active_member(uow.session, activity.community_id, actor.subject):
        raise forbidden("only active members of the community may register")
    await _refuse_muted(uow.session, activity.community_id, actor.subject)
    existing = await _registration(uow, activity_id, actor.subject)
    if existing is not None and existing.status != RegistrationStatus.cancelled:
        return existing, False
    _require_open(activity.state, as_utc(activity.starts_at))
    position, seats_taken, capacity, state = (
        await uow.session.execute(
            update(Activity)
            .where(col(Activity.id) == activity_id)
            .values(queue_length=col(Activity.queue_length) + 1)
            .returning(
                col(Activity.queue_length),
                col(Activity.seats_taken),
                col(Activity.capacity),
                col(Activity.state),
            )
            .execution_options(synchronize_session=False)
        )
    ).one()
    # The state may have moved while this request waited for the lock.
    _require_open(ActivityState(state), as_utc(activity.starts_at))
    seated = seats_taken < capacity
    if seated:
        await _change_seats(uow, activity_id, +1)
    status = RegistrationStatus.confirmed if seated else RegistrationStatus.waitlisted
    try:
        if existing is not None:
            # A cancelled registration comes back at the end of the line (one row per person).
            registration = existing
            registration.status = status
            registration.position = position
            registration.registered_at = utcnow()
            registration.reminded_at = None
        else:
            registration = Registration(
                activity_id=activity_id,
                community_id=activity.community_id,
                user_id=actor.subject,
                status=status,
                position=position,
            )
        uow.session.add(registration)
        # Flush first: the unique constraint answers here, before any event is written.
        await uow.session.flush()
        await uow.record(_registration_event(registration), subject=str(activity_id))
        await uow.commit()
    except IntegrityError:
        # The same person registered twice at once; the unique constraint let one through and
        # the rollback gave this request's seat and place back. Return the winner.
        await uow.session.rollback()
        existing = await _registration(uow, activity_id, actor.subject)
        if existing is None:
            raise
        return existing, False
    return registration, True


async def cancel_registration(
    *, uow: UnitOfWork, activity_id: uuid.UUID, actor: Principal
) -> Registration:
    """Give up one's seat or waitlist place; a freed seat goes to the waitlist's head."""
    activity = await _activity(uow, activity_id)
    await _lock_activity(uow, activity_id)
    registration = await _registration(uow, activity_id, actor.subject)
    if registration is None:
        raise not_found("registration", actor.subject)
    if registration.status == RegistrationStatus.cancelled:
        return registration  # cancelling twice is not an error
    if activity.state not in CANCELLABLE_REGISTRATION:
        raise conflict(
            "registration-not-cancellable",
            f"registrations cannot be cancelled once the activity is {activity.state}",
        )
    was = registration.status
    registration.status = RegistrationStatus.cancelled
    uow.session.add(registration)
    now = utcnow()
    await uow.record(
        RegistrationCancelled(
            registration_id=registration.id,
            activity_id=activity_id,
            community_id=activity.community_id,
            user_id=actor.subject,
            was=was,
            cancelled_at=now,
        ),
        subject=str(activity_id),
    )
    if was == RegistrationStatus.confirmed:
        await _change_seats(uow, activity_id, -1)
        await _promote(uow, activity)
    await uow.commit()
    return registration


async def change_capacity(
    *, uow: UnitOfWork, activity_id: uuid.UUID, capacity: int, actor: Principal
) -> Activity:
    """Set an activity's capacity (organisers); never below the seats already taken."""
    activity = await _activity(uow, activity_id)
    await _require_organiser(uow.session, activity.community_id, actor)
    await _lock_activity(uow, activity_id)
    changed = await uow.session.execute(
        update(Activity)
        .where(col(Activity.id) == activity_id, col(Activity.seats_taken) <= capacity)
        .values(capacity=capacity)
        .execution_options(synchronize_session=False)
    )
    if affected_rows(changed) == 0:
        raise conflict(
            "capacity-below-seats-taken",
            "capacity cannot go below the seats already taken",
            seats_taken=activity.seats_taken,
        )
    if activity.state in CANCELLABLE_REGISTRATION:
        await _promote(uow, activity)
    await uow.commit()
    return await _activity(uow, activity_id, fresh=True)


async def transition(
    *, uow: UnitOfWork, activity_id: uuid.UUID, to: ActivityState, actor: Principal
) -> Activity:
    """Move an activity along its lifecycle; a move the state machine forbids is a 409."""
    activity = await _activity(uow, activity_id)
    await _require_organiser(uow.session, activity.community_id, actor)
    await _lock_activity(uow, activity_id)
    activity = await _activity(uow, activity_id, fresh=True)
    current = ActivityState(activity.state)
    if not lifecycle.can_move(current, to):
        raise conflict(
            "invalid-transition",
            f"an activity that is {current} cannot become {to}",
            state=current.value,
            allowed=lifecycle.allowed(current),
        )
    now = utcnow()
    activity.state = to
    uow.session.add(activity)
    if to == ActivityState.published and current == ActivityState.draft:
        await uow.record(_published_event(activity, actor, now), subject=str(activity.id))
    await uow.record(
        ActivityStateChanged(
            activity_id=activity.id,
            community_id=activity.community_id,
            from_state=current,
            to_state=to,
            changed_by=actor.subject,
            changed_at=now,
        ),
        subject=str(activity.id),
    )
    if to == ActivityState.ended:
        for hook in _ENDED_HOOKS:  # e.g. no-shows (checkin), in this same transaction
            await hook(uow, activity, now)
    await uow.commit()
    return activity


async def remind_due(
    runtime: ServiceRuntime, *, now: datetime, lead: timedelta, batch: int = 200
) -> int:
    """Announce a reminder for every confirmed seat whose activity starts within `lead`.

    Safe with several replicas: due registrations are claimed with `FOR UPDATE SKIP LOCKED`
    on PostgreSQL, so replicas running this at once take different seats and each reminder is
    announced once (SQLite has one writer at a time). Someone who left the community since
    registering is passed over, not reminded. The clock is a parameter for tests.
    """
    async with runtime.db.session() as session:
        uow = UnitOfWork(session, runtime)
        due = (
            select(Registration, Activity)
            .join(Activity, col(Activity.id) == col(Registration.activity_id))
            .where(
                col(Registration.status) == RegistrationStatus.confirmed,
                col(Registration.reminded_at).is_(None),
                col(Activity.starts_at) > now,
                col(Activity.starts_at) <= now + lead,
            )
            .order_by(col(Activity.starts_at), col(Registration.id))
            .limit(batch)
            .with_for_update(skip_locked=True, of=Registration)
        )
        sent = 0
        for registration, activity in (await session.exec(due)).all():
            registration.reminded_at = now
            session.add(registration)
            if not await _is_active_member(session, activity.community_id, registration.user_id):
                continue
            await uow.record(
                RegistrationReminderDue(
                    registration_id=registration.id,
                    activity_id=activity.id,
                    community_id=activity.community_id,
                    user_id=registration.user_id,
                    title=activity.title,
                    starts_at=as_utc(activity.starts_at),
                    location=activity.location,
                    online_url=activity.online_url,
                    due_at=now,
                ),
                subject=str(activity.id),
            )
            sent += 1
        await uow.commit()
    return sent


async def list_registrations(
    *, uow: UnitOfWork, activity_id: uuid.UUID, actor: Principal, page: PageParams
) -> list[Registration]:
    """An activity's registrations in first-come order (limit+1 rows; organisers only)."""
    activity = await _activity(uow, activity_id)
    await _require_organiser(uow.session, activity.community_id, actor)
    stmt = (
        select(Registration)
        .where(Registration.activity_id == activity_id)
        .order_by(col(Registration.position), col(Registration.id))
        .limit(page.limit + 1)
    )
    if page.after:
        position, ident = cursor_key(page.after, int, uuid.UUID)
        if not 0 <= position < 2**31:  # positions fit the integer column; others are forged
            raise invalid_cursor()
        stmt = stmt.where(
            or_(
                col(Registration.position) > position,
                and_(col(Registration.position) == position, col(Registration.id) > ident),
            )
        )
    return list((await uow.session.exec(stmt)).all())


async def apply_membership(*, session: AsyncSession, values: Mapping[str, Any]) -> bool:
    """Take a membership snapshot unless the read model holds this version or a newer one."""
    return await apply_snapshot(
        session,
        CommunityMembership,
        {**values, "updated_at": utcnow()},
        key=["community_id", "user_id"],
    )


async def _require_organiser(
    session: AsyncSession, community_id: uuid.UUID, actor: Principal
) -> None:
    # Platform staff, or the community's owners and admins per members' snapshots.
    if actor.is_staff:
        return
    found = await session.get(CommunityMembership, (community_id, actor.subject))
    if found is None or found.status != ACTIVE or found.role not in ORGANISER_ROLES:
        raise forbidden(ORGANISER_REFUSAL)


def _require_open(state: ActivityState, starts_at: datetime) -> None:
    if state not in lifecycle.OPEN_FOR_REGISTRATION:
        raise conflict("registration-closed", f"the activity is {state}, not open for registration")
    if starts_at <= utcnow():
        raise conflict("registration-closed", "the activity has already started")


async def _lock_activity(uow: UnitOfWork, activity_id: uuid.UUID) -> None:
    # A no-op UPDATE takes the row lock (PostgreSQL) or the writer slot (SQLite) up front, so
    # seat counts and the waitlist cannot move under this transaction.
    await uow.session.execute(
        update(Activity)
        .where(col(Activity.id) == activity_id)
        .values(queue_length=col(Activity.queue_length))
        .execution_options(synchronize_session=False)
    )


async def _change_seats(uow: UnitOfWork, activity_id: uuid.UUID, delta: int) -> None:
    await uow.session.execute(
        update(Activity)
        .where(col(Activity.id) == activity_id)
        .values(seats_taken=col(Activity.seats_taken) + delta)
        .execution_options(synchronize_session=False)
    )


async def _promote(uow: UnitOfWork, activity: Activity) -> None:
    """Give every free seat to the waitlist's head, first come first served (activity locked)."""
    row = (
        await uow.session.execute(
            select(col(Activity.seats_taken), col(Activity.capacity)).where(
                col(Activity.id) == activity.id
            )
        )
    ).one()
    free = row[1] - row[0]
    if free <= 0:
        return
    stmt = (
        select(Registration)
        .where(
            Registration.activity_id == activity.id,
            col(Registration.status) == RegistrationStatus.waitlisted,
        )
        .order_by(col(Registration.position), col(Registration.id))
        .limit(free)
    )
    now = utcnow()
    for registration in (await uow.session.exec(stmt)).all():
        registration.status = RegistrationStatus.confirmed
        uow.session.add(registration)
        await _change_seats(uow, activity.id, +1)
        await uow.record(
            RegistrationPromoted(
                registration_id=registration.id,
                activity_id=activity.id,
                community_id=activity.community_id,
                user_id=registration.user_id,
                promoted_at=now,
            ),
            subject=str(activity.id),
        )


def _registration_event(
    registration: Registration,
) -> RegistrationConfirmed | RegistrationWaitlisted:
    if registration.status == RegistrationStatus.confirmed:
        return RegistrationConfirmed(
            registration_id=registration.id,
            activity_id=registration.activity_id,
            community_id=registration.community_id,
            user_id=registration.user_id,
            registered_at=registration.registered_at,
        )
    return RegistrationWaitlisted(
        registration_id=registration.id,
        activity_id=registration.activity_id,
        community_id=registration.community_id,
        user_id=registration.user_id,
        position=registration.position,
        registered_at=registration.registered_at,
    )


async def _require_member_or_staff(
    session: AsyncSession, community_id: uuid.UUID, actor: Principal
) -> None:
    if not actor.is_staff and not await _is_active_member(session, community_id, actor.subject):
        raise forbidden("only active members of the community may see its activities")


async def _community_known(session: AsyncSession, community_id: uuid.UUID) -> bool:
    # Every community has its owner's member.joined from the moment it is created.
    stmt = select(CommunityMembership.user_id).where(
        CommunityMembership.community_id == community_id
    )
    return (await session.exec(stmt.limit(1))).first() is not None


async def _is_active_member(
    session: AsyncSession, community_id: uuid.UUID, user_id: uuid.UUID
) -> bool:
    found = await session.get(CommunityMembership, (community_id, user_id))
    return found is not None and found.status == ACTIVE


async def _activity(uow: UnitOfWork, activity_id: uuid.UUID, *, fresh: bool = False) -> Activity:
    activity = await uow.session.get(Activity, activity_id, populate_existing=fresh)
    if activity is None:
        raise not_found("activity", activity_id)
    return activity


async def _registration(
    uow: UnitOfWork, activity_id: uuid.UUID, user_id: uuid.UUID
) -> Registration | None:
    stmt = select(Registration).where(
        Registration.activity_id == activity_id, Registration.user_id == user_id
    )
    # populate_existing: after a rollback or a concurrent commit, read the row as it is now.
    return (await uow.session.exec(stmt.execution_options(populate_existing=True))).first()


# Seams set at wiring time (app.py), so packages that build on activities (checkin) are not
# imported here: what else happens in the transaction that moves an activity to `ended`.
EndedHook = Callable[[UnitOfWork, Activity, datetime], Awaitable[object]]
_ENDED_HOOKS: list[EndedHook] = []


def on_ended(hook: EndedHook) -> None:
    """Run `hook(uow, activity, ended_at)` inside every `ended` transition (once per hook)."""
    if hook not in _ENDED_HOOKS:
        _ENDED_HOOKS.append(hook)


async def _refuse_muted(session: AsyncSession, community_id: uuid.UUID, user_id: uuid.UUID) -> None:
    # A muted member may not register (nor ask or vote: checkin/access.py), until the mute ends.
    found = await session.get(CommunityMembership, (community_id, user_id))
    if found is not None:
        refuse_muted(found)

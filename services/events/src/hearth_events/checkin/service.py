"""Check-in use cases: signed codes, the window, walk-ins, and no-shows when an activity ends."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from hearth_events.checkin import access, codes
from hearth_events.checkin.codes import CodeKeys
from hearth_events.checkin.events import AttendanceCheckedIn, AttendanceNoShow
from hearth_events.checkin.models import (
    CheckIn,
    CheckInMethod,
    CheckInPolicy,
    CheckInPolicyPublic,
    CheckInPolicyUpdate,
    CheckInRequest,
    NoShow,
)
from hearth_events.events import RegistrationConfirmed
from hearth_events.models import Activity, ActivityState, Registration, RegistrationStatus
from hearth_events.settings import EventsSettings
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.pagination import PageParams, cursor_key
from servicekit.problems import Problem, conflict
from servicekit.types import as_utc

# States in which people may be checked in (once ended, attendance is settled: no-shows).
CHECK_IN_STATES = frozenset(
    {ActivityState.published, ActivityState.registration_closed, ActivityState.ongoing}
)


def invalid_code(detail: str) -> Problem:
    """422: the code is not a genuine code of this activity's registrant."""
    return Problem(422, "invalid-check-in-code", "Invalid check-in code", detail)


async def policy_of(
    uow: UnitOfWork, *, activity: Activity, settings: EventsSettings
) -> CheckInPolicyPublic:
    """The activity's check-in policy in force (its own, else the settings' defaults)."""
    own = await uow.session.get(CheckInPolicy, activity.id)
    before = own.opens_minutes_before if own else settings.checkin_opens_minutes_before
    after = own.closes_minutes_after if own else settings.checkin_closes_minutes_after
    return CheckInPolicyPublic(
        activity_id=activity.id,
        opens_minutes_before=before,
        closes_minutes_after=after,
        walk_ins=own.walk_ins if own else False,
        opens_at=as_utc(activity.starts_at) - timedelta(minutes=before),
        closes_at=as_utc(activity.ends_at) + timedelta(minutes=after),
    )


async def get_policy(
    uow: UnitOfWork, *, activity_id: uuid.UUID, actor: Principal, settings: EventsSettings
) -> CheckInPolicyPublic:
    """The check-in policy (staff and the community's members)."""
    activity = await access.activity_of(uow.session, activity_id)
    await access.require_member(uow.session, activity, actor)
    return await policy_of(uow, activity=activity, settings=settings)


async def set_policy(
    uow: UnitOfWork,
    *,
    activity_id: uuid.UUID,
    data: CheckInPolicyUpdate,
    actor: Principal,
    settings: EventsSettings,
) -> CheckInPolicyPublic:
    """Set the activity's check-in window and walk-ins (organisers)."""
    activity = await access.activity_of(uow.session, activity_id)
    await access.require_organiser(uow.session, activity, actor)
    current = await policy_of(uow, activity=activity, settings=settings)
    own = await uow.session.get(CheckInPolicy, activity_id)
    values = current.model_dump(
        include={"opens_minutes_before", "closes_minutes_after", "walk_ins"}
    )
    values |= data.model_dump(exclude_none=True)
    if own is None:
        own = CheckInPolicy(activity_id=activity_id, updated_by=actor.subject, **values)
    else:
        for name, value in values.items():
            setattr(own, name, value)
        own.updated_by, own.updated_at = actor.subject, utcnow()
    uow.session.add(own)
    await uow.commit()
    return await policy_of(uow, activity=activity, settings=settings)


async def code_for(
    uow: UnitOfWork, *, keys: CodeKeys, activity_id: uuid.UUID, actor: Principal
) -> tuple[Registration, str]:
    """The caller's check-in code for their confirmed seat (409 without one)."""
    activity = await access.activity_of(uow.session, activity_id)
    await access.require_member(uow.session, activity, actor)
    registration = await _registration_of(uow, activity.id, actor.subject)
    if registration is None or registration.status != RegistrationStatus.confirmed:
        raise conflict("no-confirmed-seat", "only a confirmed seat has a check-in code")
    code = codes.issue(
        keys, activity_id=activity.id, registration_id=registration.id, user_id=actor.subject
    )
    return registration, code


async def check_in(
    uow: UnitOfWork,
    *,
    keys: CodeKeys,
    settings: EventsSettings,
    activity_id: uuid.UUID,
    request: CheckInRequest,
    actor: Principal,
) -> tuple[CheckIn, bool]:
    """Check a person in by code, by hand or as a walk-in; checking in again changes nothing.

    Takes the activity's row lock first (as registration does), so check-ins, walk-ins taking
    the last seat and the `ended` transition that settles no-shows are serialised per activity.
    """
    activity = await access.activity_of(uow.session, activity_id)
    await access.require_organiser(uow.session, activity, actor)
    token_registration: uuid.UUID | None = None
    if request.code is not None:
        found = codes.read(keys, request.code, activity_id=activity_id)
        if found is None:
            raise invalid_code("the code is not a check-in code of this activity")
        token_registration, user_id = found
        if request.user_id is not None and request.user_id != user_id:
            raise invalid_code("the code belongs to another person")
        method = CheckInMethod.code
    elif request.user_id is not None:
        user_id = request.user_id
        method = CheckInMethod.walk_in if request.walk_in else CheckInMethod.manual
    else:
        raise Problem(422, "validation-error", "Validation error", "give a code or a user_id")
    state = await _lock(uow, activity_id)
    if state not in CHECK_IN_STATES:
        raise conflict("check-in-closed", f"the activity is {state}: check-in is closed")
    policy = await policy_of(uow, activity=activity, settings=settings)
    now = utcnow()
    if not policy.opens_at <= now <= policy.closes_at:
        raise conflict(
            "outside-check-in-window",
            "check-in is open only inside the activity's check-in window",
            opens_at=policy.opens_at.isoformat(),
            closes_at=policy.closes_at.isoformat(),
        )
    registration = await _registration_of(uow, activity_id, user_id)
    if token_registration is not None and (
        registration is None or registration.id != token_registration
    ):
        raise invalid_code("the code does not match a registration of this activity")
    if registration is not None:
        existing = await _check_in_of(uow, registration.id)
        if existing is not None:
            return existing, False
    member = await access.membership(uow.session, activity.community_id, user_id)
    if member is None or member.status != access.ACTIVE:
        raise Problem(403, "forbidden", "Forbidden", "only active members may be checked in")
    if registration is None or registration.status != RegistrationStatus.confirmed:
        if method != CheckInMethod.walk_in:
            raise conflict(
                "no-confirmed-seat",
                "the member holds no confirmed seat (check them in as a walk-in if allowed)",
            )
        if not policy.walk_ins:
            raise conflict("walk-ins-not-allowed", "this activity does not take walk-ins")
        access.refuse_muted(member)
        registration = await _seat_walk_in(uow, activity, user_id, registration)
    attendance = CheckIn(
        activity_id=activity_id,
        registration_id=registration.id,
        community_id=activity.community_id,
        user_id=user_id,
        method=method,
        checked_in_by=actor.subject,
        checked_in_at=now,
    )
    try:
        uow.session.add(attendance)
        await uow.session.flush()  # the unique constraints answer before any event is written
    except IntegrityError:
        await uow.session.rollback()
        existing = await _check_in_by_person(uow, activity_id, user_id)
        if existing is None:
            raise
        return existing, False
    await uow.record(
        AttendanceCheckedIn(
            activity_id=activity_id,
            community_id=activity.community_id,
            user_id=user_id,
            checked_in_at=now,
            registration_id=registration.id,
            method=method,
            checked_in_by=actor.subject,
        ),
        subject=str(activity_id),
    )
    await uow.commit()
    return attendance, True


async def list_check_ins(
    uow: UnitOfWork, *, activity_id: uuid.UUID, actor: Principal, page: PageParams
) -> list[CheckIn]:
    """The activity's check-ins in order (limit+1 rows; organisers)."""
    activity = await access.activity_of(uow.session, activity_id)
    await access.require_organiser(uow.session, activity, actor)
    stmt = (
        select(CheckIn)
        .where(CheckIn.activity_id == activity_id)
        .order_by(col(CheckIn.checked_in_at), col(CheckIn.id))
        .limit(page.limit + 1)
    )
    if page.after:
        at, ident = cursor_key(page.after, datetime, uuid.UUID)
        stmt = stmt.where(
            or_(
                col(CheckIn.checked_in_at) > at,
                and_(col(CheckIn.checked_in_at) == at, col(CheckIn.id) > ident),
            )
        )
    return list((await uow.session.exec(stmt)).all())


async def checked_in_registrations(uow: UnitOfWork, *, activity_id: uuid.UUID) -> set[uuid.UUID]:
    """The registration ids checked in at an activity (draw eligibility)."""
    stmt = select(CheckIn.registration_id).where(CheckIn.activity_id == activity_id)
    return set((await uow.session.exec(stmt)).all())


async def record_no_shows(uow: UnitOfWork, activity: Activity, ended_at: datetime) -> int:
    """Announce every confirmed seat not checked in as a no-show, once (in the `ended` move).

    Runs inside the transaction that ends the activity, under its row lock; the unique
    registration id of `no_shows` makes a second run (a retry, another replica, a scheduler's
    automatic end) announce nobody twice.
    """
    stmt = (
        select(Registration)
        .outerjoin(CheckIn, col(CheckIn.registration_id) == col(Registration.id))
        .outerjoin(NoShow, col(NoShow.registration_id) == col(Registration.id))
        .where(
            Registration.activity_id == activity.id,
            col(Registration.status) == RegistrationStatus.confirmed,
            col(CheckIn.id).is_(None),
            col(NoShow.id).is_(None),
        )
        .order_by(col(Registration.position), col(Registration.id))
    )
    count = 0
    for registration in (await uow.session.exec(stmt)).all():
        uow.session.add(
            NoShow(
                activity_id=activity.id,
                registration_id=registration.id,
                community_id=activity.community_id,
                user_id=registration.user_id,
                recorded_at=ended_at,
            )
        )
        await uow.record(
            AttendanceNoShow(
                activity_id=activity.id,
                community_id=activity.community_id,
                user_id=registration.user_id,
                activity_ended_at=ended_at,
                registration_id=registration.id,
            ),
            subject=str(activity.id),
        )
        count += 1
    await uow.session.flush()
    return count


async def _lock(uow: UnitOfWork, activity_id: uuid.UUID) -> ActivityState:
    # A no-op UPDATE takes the row lock (PostgreSQL) or the writer slot (SQLite) and reads the
    # state as it is once this transaction holds it.
    state = (
        await uow.session.execute(
            update(Activity)
            .where(col(Activity.id) == activity_id)
            .values(queue_length=col(Activity.queue_length))
            .returning(col(Activity.state))
            .execution_options(synchronize_session=False)
        )
    ).scalar_one()
    return ActivityState(state)


async def _seat_walk_in(
    uow: UnitOfWork, activity: Activity, user_id: uuid.UUID, registration: Registration | None
) -> Registration:
    """A seat for a walk-in, if one is free (the activity is locked by the caller)."""
    taken = (
        await uow.session.execute(
            update(Activity)
            .where(
                col(Activity.id) == activity.id, col(Activity.seats_taken) < col(Activity.capacity)
            )
            .values(
                seats_taken=col(Activity.seats_taken) + 1,
                queue_length=col(Activity.queue_length) + 1,
            )
            .returning(col(Activity.queue_length))
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    if taken is None:
        raise conflict("activity-full", "every seat is taken: no room for a walk-in")
    if registration is None:
        registration = Registration(
            activity_id=activity.id, community_id=activity.community_id, user_id=user_id
        )
    registration.status = RegistrationStatus.confirmed
    registration.position = taken
    registration.registered_at = utcnow()
    uow.session.add(registration)
    await uow.session.flush()
    await uow.record(
        RegistrationConfirmed(
            registration_id=registration.id,
            activity_id=activity.id,
            community_id=activity.community_id,
            user_id=user_id,
            registered_at=registration.registered_at,
        ),
        subject=str(activity.id),
    )
    return registration


async def _registration_of(
    uow: UnitOfWork, activity_id: uuid.UUID, user_id: uuid.UUID
) -> Registration | None:
    stmt = select(Registration).where(
        Registration.activity_id == activity_id, Registration.user_id == user_id
    )
    return (await uow.session.exec(stmt.execution_options(populate_existing=True))).first()


async def _check_in_of(uow: UnitOfWork, registration_id: uuid.UUID) -> CheckIn | None:
    stmt = select(CheckIn).where(CheckIn.registration_id == registration_id)
    return (await uow.session.exec(stmt.execution_options(populate_existing=True))).first()


async def _check_in_by_person(
    uow: UnitOfWork, activity_id: uuid.UUID, user_id: uuid.UUID
) -> CheckIn | None:
    stmt = select(CheckIn).where(CheckIn.activity_id == activity_id, CheckIn.user_id == user_id)
    return (await uow.session.exec(stmt.execution_options(populate_existing=True))).first()

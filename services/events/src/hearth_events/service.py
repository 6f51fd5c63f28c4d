"""Events' use cases: keyword-only functions over a unit of work."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, NoReturn

from sqlalchemy import and_, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_events.events import (
    ActivityPublished,
    RegistrationConfirmed,
    RegistrationReminderDue,
)
from hearth_events.models import (
    Activity,
    ActivityCreate,
    CommunityMembership,
    Registration,
    RegistrationStatus,
)
from servicekit.db import affected_rows
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.pagination import PageParams, cursor_key
from servicekit.problems import conflict, forbidden, not_found
from servicekit.readmodel import apply_snapshot
from servicekit.runtime import ServiceRuntime
from servicekit.types import as_utc

ACTIVE = "active"


async def publish_activity(*, uow: UnitOfWork, data: ActivityCreate, actor: Principal) -> Activity:
    """Publish an activity in a community this service knows (platform staff for now)."""
    _require_organiser(actor)
    if not await _community_known(uow.session, data.community_id):
        raise not_found("community", data.community_id)
    activity = Activity.model_validate(data, update={"created_by": actor.subject})
    uow.session.add(activity)
    await uow.record(
        ActivityPublished(
            activity_id=activity.id,
            community_id=activity.community_id,
            title=activity.title,
            kind=activity.kind,
            starts_at=activity.starts_at,
            ends_at=activity.ends_at,
            capacity=activity.capacity,
            location=activity.location,
            online_url=activity.online_url,
            published_by=actor.subject,
            published_at=activity.created_at,
        ),
        subject=str(activity.id),
    )
    await uow.commit()
    return activity


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
    """Take a seat for the actor; registering again returns the same registration (idempotent).

    The seat is taken by one conditional UPDATE (`seats_taken < capacity`), so two requests for
    the last seat cannot both win: PostgreSQL re-checks the condition after the row lock is
    released, and SQLite transactions are serialised (BEGIN IMMEDIATE) by the kernel.
    """
    activity = await _activity(uow, activity_id)
    if not await _is_active_member(uow.session, activity.community_id, actor.subject):
        raise forbidden("only active members of the community may register")
    existing = await _registration(uow, activity_id, actor.subject)
    if existing is not None:
        return existing, False
    if as_utc(activity.starts_at) <= utcnow():
        raise conflict("registration-closed", "the activity has already started")
    taken = await uow.session.execute(
        update(Activity)
        .where(col(Activity.id) == activity_id, col(Activity.seats_taken) < col(Activity.capacity))
        .values(seats_taken=col(Activity.seats_taken) + 1)
        .execution_options(synchronize_session=False)
    )
    if affected_rows(taken) == 0:
        # The same person's concurrent request may have taken the last seat a moment ago.
        existing = await _registration(uow, activity_id, actor.subject)
        if existing is not None:
            return existing, False
        _when_full(activity)
    registration = Registration(
        activity_id=activity_id,
        community_id=activity.community_id,
        user_id=actor.subject,
        status=RegistrationStatus.confirmed,
    )
    try:
        uow.session.add(registration)
        # Flush first: the unique constraint answers here, before any event is written.
        await uow.session.flush()
        await uow.record(
            RegistrationConfirmed(
                registration_id=registration.id,
                activity_id=activity_id,
                community_id=activity.community_id,
                user_id=actor.subject,
                registered_at=registration.registered_at,
            ),
            subject=str(activity_id),
        )
        await uow.commit()
    except IntegrityError:
        # The same person registered twice at once; the unique constraint let one through and
        # the rollback gave this request's seat back. Return the winner.
        await uow.session.rollback()
        existing = await _registration(uow, activity_id, actor.subject)
        if existing is None:
            raise
        return existing, False
    return registration, True


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


def _when_full(activity: Activity) -> NoReturn:
    # The waitlist seam: the waitlist issue replaces this refusal with a `waitlisted`
    # registration (and its own event) instead of a 409.
    raise conflict(
        "activity-full",
        "no seats remain for this activity",
        activity_id=str(activity.id),
        capacity=activity.capacity,
    )


async def list_registrations(
    *, uow: UnitOfWork, activity_id: uuid.UUID, actor: Principal, page: PageParams
) -> list[Registration]:
    """An activity's registrations in the order they were made (limit+1 rows; staff only)."""
    _require_organiser(actor)
    await _activity(uow, activity_id)
    stmt = (
        select(Registration)
        .where(Registration.activity_id == activity_id)
        .order_by(col(Registration.id))
        .limit(page.limit + 1)
    )
    if page.after:
        (after,) = cursor_key(page.after, uuid.UUID)
        stmt = stmt.where(col(Registration.id) > after)
    return list((await uow.session.exec(stmt)).all())


async def apply_membership(*, session: AsyncSession, values: Mapping[str, Any]) -> bool:
    """Take a membership snapshot unless the read model holds this version or a newer one."""
    return await apply_snapshot(
        session,
        CommunityMembership,
        {**values, "updated_at": utcnow()},
        key=["community_id", "user_id"],
    )


def _require_organiser(actor: Principal) -> None:
    # Community owners/admins join this check once community roles flow to this service.
    if not actor.is_staff:
        raise forbidden("requires one of: admin, operator")


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


async def _activity(uow: UnitOfWork, activity_id: uuid.UUID) -> Activity:
    activity = await uow.session.get(Activity, activity_id)
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

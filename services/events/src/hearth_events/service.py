"""Events' use cases: keyword-only functions over a unit of work."""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import and_, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_events import lifecycle
from hearth_events.checkin.access import ORGANISER_ROLES, is_host, refuse_muted
from hearth_events.events import (
    ActivityCancelled,
    ActivityEnded,
    ActivityPublished,
    ActivityStarted,
    ActivityStateChanged,
    ActivityUpdated,
    RegistrationApproved,
    RegistrationCancelled,
    RegistrationConfirmed,
    RegistrationPromoted,
    RegistrationRejected,
    RegistrationReminderDue,
    RegistrationVoided,
    RegistrationWaitlisted,
)
from hearth_events.lifecycle import CANCELLABLE_REGISTRATION
from hearth_events.models import (
    Activity,
    ActivityCreate,
    ActivityState,
    ActivityUpdate,
    CommunityEventSettings,
    CommunityMembership,
    QuestionKind,
    Registration,
    RegistrationQuestion,
    RegistrationStatus,
    Visibility,
)
from hearth_events.settings import EventsSettings
from servicekit.db import affected_rows, upsert_insert
from servicekit.deps import UnitOfWork
from servicekit.events import Event
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.markdown import render_markdown
from servicekit.pagination import PageParams, cursor_key, invalid_cursor
from servicekit.problems import Problem, conflict, forbidden, not_found
from servicekit.readmodel import apply_snapshot
from servicekit.runtime import ServiceRuntime, runtime_of, settings_of
from servicekit.types import as_utc

ACTIVE = "active"
# Community roles (members' vocabulary) that manage the community's activities.
ORGANISER_REFUSAL = "requires platform staff or the community's owner or admin"
MANAGER_REFUSAL = "requires platform staff, the community's owner or admin, or a host"
# The tier privilege (members' vocabulary) that opens registration `priority_hours` early.
PRIORITY_REGISTRATION = "priority_registration"
# Registrations that still hold (or wait for) a place.
LIVE = (RegistrationStatus.pending, RegistrationStatus.confirmed, RegistrationStatus.waitlisted)
# Registrations that are over: registering again is idempotent for rejected, fresh for cancelled.
SETTLED = (RegistrationStatus.cancelled, RegistrationStatus.rejected)


def invalid(slug: str, detail: str, **extensions: Any) -> Problem:
    """A 422 problem for input that is well formed but unusable."""
    return Problem(422, slug, "Unprocessable input", detail, **extensions)


async def publish_activity(
    *,
    uow: UnitOfWork,
    data: ActivityCreate,
    actor: Principal,
    series_id: uuid.UUID | None = None,
    commit: bool = True,
) -> Activity:
    """Create an activity (published, or a draft) in a community this service knows."""
    if not await _community_known(uow.session, data.community_id):
        if not actor.is_staff:
            raise forbidden(ORGANISER_REFUSAL)
        raise not_found("community", data.community_id)
    await _require_organiser(uow.session, data.community_id, actor)
    await _require_hosts_are_members(uow.session, data.community_id, data.hosts)
    state = ActivityState.draft if data.draft else ActivityState.published
    activity = Activity.model_validate(
        _table_values(data),
        update={"created_by": actor.subject, "state": state, "series_id": series_id},
    )
    uow.session.add(activity)
    if state == ActivityState.published:
        await uow.record(
            _published_event(activity, actor, activity.created_at), subject=str(activity.id)
        )
    if commit:
        await uow.commit()
    return activity


def _table_values(data: ActivityCreate) -> dict[str, Any]:
    """An ActivityCreate as the table's columns (JSON lists as strings, rendered description)."""
    values = data.model_dump(exclude={"draft"})
    values["hosts"] = [str(h) for h in data.hosts]
    values["open_to"] = [str(c) for c in data.open_to]
    values["questions"] = [q.model_dump(mode="json") for q in data.questions]
    values["description_html"] = render_markdown(data.description)
    return values


def _as_create(activity: Activity, changes: Mapping[str, Any]) -> ActivityCreate:
    """The activity with `changes` applied, checked as a whole like a new one (422 otherwise)."""
    current = {
        name: getattr(activity, name)
        for name in ActivityCreate.model_fields
        if name != "draft" and hasattr(activity, name)
    }
    current["starts_at"] = as_utc(activity.starts_at)
    current["ends_at"] = as_utc(activity.ends_at)
    for name in ("registration_opens_at", "registration_closes_at", "cancellation_deadline"):
        value = getattr(activity, name)
        current[name] = as_utc(value) if value is not None else None
    try:
        return ActivityCreate.model_validate({**current, **changes})
    except ValidationError as exc:
        errors = [
            {"loc": list(e["loc"]), "msg": e["msg"]}
            for e in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise invalid(
            "invalid-activity", "the changed activity is not valid", errors=errors
        ) from None


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


async def update_activity(
    *, uow: UnitOfWork, activity_id: uuid.UUID, data: ActivityUpdate, actor: Principal
) -> Activity:
    """Change an activity's details (organisers, hosts) before it ends; checked as a whole."""
    activity = await _activity(uow, activity_id)
    await require_manager(uow.session, activity, actor)
    await _lock_activity(uow, activity_id)
    activity = await _activity(uow, activity_id, fresh=True)
    return await apply_update(uow=uow, activity=activity, data=data, actor=actor, commit=True)


async def apply_update(
    *,
    uow: UnitOfWork,
    activity: Activity,
    data: ActivityUpdate,
    actor: Principal,
    commit: bool,
) -> Activity:
    """Apply an update to a locked activity and record activity.updated (series edits reuse it)."""
    if activity.state in (ActivityState.ended, ActivityState.summarized, ActivityState.cancelled):
        raise conflict(
            "activity-not-editable", f"an activity that is {activity.state} cannot be edited"
        )
    changes = data.model_dump(exclude_unset=True)
    checked = _as_create(activity, changes)
    if "hosts" in changes:
        await _require_hosts_are_members(uow.session, activity.community_id, checked.hosts)
    values = _table_values(checked)
    changed = sorted(
        name
        for name in changes
        if name in values and _comparable(getattr(activity, name)) != _comparable(values[name])
    )
    for name in changed:
        setattr(activity, name, values[name])
    if "description" in changed:
        activity.description_html = values["description_html"]
    now = utcnow()
    if changed:
        activity.updated_at = now
        uow.session.add(activity)
        if {"starts_at", "reminder_minutes"} & set(changed):
            await _reschedule_reminders(uow.session, activity)
        await uow.record(
            ActivityUpdated(
                activity_id=activity.id,
                community_id=activity.community_id,
                changed=changed,
                title=activity.title,
                starts_at=as_utc(activity.starts_at),
                ends_at=as_utc(activity.ends_at),
                timezone=activity.timezone,
                updated_by=actor.subject,
                updated_at=now,
            ),
            subject=str(activity.id),
        )
    if commit:
        await uow.commit()
    return activity


def _comparable(value: Any) -> Any:
    return as_utc(value) if isinstance(value, datetime) else value


async def get_activity(*, uow: UnitOfWork, activity_id: uuid.UUID, actor: Principal) -> Activity:
    """One activity, for staff and the members it is visible to."""
    activity = await _activity(uow, activity_id)
    await require_viewer(uow.session, activity, actor)
    return activity


async def list_activities(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal, page: PageParams
) -> list[Activity]:
    """A community's activities by start time (limit+1 rows), for staff and its members."""
    await require_member_or_staff(uow.session, community_id, actor)
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
    *,
    uow: UnitOfWork,
    activity_id: uuid.UUID,
    actor: Principal,
    answers: Mapping[str, str | list[str]] | None = None,
) -> tuple[Registration, bool]:
    """Take a seat, the next place in the FIFO waitlist, or ask for approval; idempotent.

    Everything that needs no lock (the activity, the membership, an earlier registration, the
    window, the answers) is read first. Then one conditional UPDATE of the activity's counters
    takes the seat or the next waitlist place (`_claim_place`): it takes the activity row's lock
    (PostgreSQL) or the database's single writer slot (SQLite, BEGIN IMMEDIATE in the kernel),
    so only that UPDATE, the registration insert, its outbox row and the commit are serial per
    activity. Under the lock the seat count is exact: never more confirmed than capacity, and
    positions follow the order in which registrations committed.

    Within one process, at most `registration_parallelism` registrations per activity are in
    flight (one on SQLite, whose writer slot is held from the first read): a waiting request
    holds no pooled connection, so a thousand at once cannot exhaust the pool (SQLAlchemy's
    30 s pool timeout turned into 500s before), while the next few do their reads while the
    lock holder finishes.
    """
    async with _admission(uow, activity_id):
        return await _register(uow, activity_id, actor, answers)


async def _register(
    uow: UnitOfWork,
    activity_id: uuid.UUID,
    actor: Principal,
    answers: Mapping[str, str | list[str]] | None,
) -> tuple[Registration, bool]:
    activity = await _activity(uow, activity_id)
    membership = await _eligible_membership(uow.session, activity, actor.subject)
    if membership is None:
        raise forbidden("only active members of the communities it is open to may register")
    refuse_muted(membership)  # a muted member may not register until the mute ends
    existing = await _registration(uow, activity_id, actor.subject)
    if existing is not None and existing.status != RegistrationStatus.cancelled:
        return existing, False
    now = utcnow()
    _require_window(activity, membership, now)
    checked = check_answers(activity.questions, answers or {})
    if activity.requires_approval:
        return await _request_approval(uow, activity, actor, existing, checked)
    rules = await uow.session.get(CommunityEventSettings, activity.community_id)
    # The seats counted when the activity was read: a hint of which UPDATE will succeed.
    seated, position, state = await _claim_place(
        uow, activity_id, full=activity.seats_taken >= activity.capacity
    )
    # The state may have moved while this request waited for the lock.
    _require_window(activity, membership, now, state=ActivityState(state))
    if not seated and rules is not None and rules.max_waitlists is not None:
        await _require_waitlist_room(
            uow.session, activity.community_id, actor.subject, rules.max_waitlists
        )
    status = RegistrationStatus.confirmed if seated else RegistrationStatus.waitlisted
    # Stamped under the lock, so registered_at follows position order.
    registered_at = utcnow()
    reminder_due_at = (
        next_reminder(activity.starts_at, activity.reminder_minutes, None) if seated else None
    )
    if existing is not None:
        # A cancelled registration comes back at the end of the line (one row per person).
        registration = existing
        registration.status = status
        registration.position = position
        registration.registered_at = registered_at
        registration.answers = checked
        registration.reminded_at = None
        registration.reminder_stage = None
        registration.reminder_due_at = reminder_due_at
        uow.session.add(registration)
        await uow.session.flush()
    else:
        registration = Registration(
            activity_id=activity_id,
            community_id=activity.community_id,
            user_id=actor.subject,
            status=status,
            position=position,
            registered_at=registered_at,
            answers=checked,
            reminder_due_at=reminder_due_at,
        )
        if not await _insert_registration(uow, registration):
            # The same person registered twice at once and the other request's row is in:
            # the rollback gives this request's seat and place back. Return the winner.
            await uow.session.rollback()
            winner = await _registration(uow, activity_id, actor.subject)
            if winner is None:  # pragma: no cover - the conflicting row was committed
                raise conflict("registration-conflict", "a concurrent registration is in flight")
            return winner, False
    await uow.record(_registration_event(registration), subject=str(activity_id))
    await uow.commit()
    return registration, True


async def _insert_registration(uow: UnitOfWork, registration: Registration) -> bool:
    """Insert a new registration unless (activity, person) already has one: was it inserted?"""
    table = Registration.__table__  # type: ignore[attr-defined]
    values = {c.name: getattr(registration, c.name) for c in table.columns}
    stmt = (
        upsert_insert(uow.session, table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["activity_id", "user_id"])
    )
    return affected_rows(await uow.session.execute(stmt)) == 1


async def _request_approval(
    uow: UnitOfWork,
    activity: Activity,
    actor: Principal,
    existing: Registration | None,
    answers: dict[str, Any],
) -> tuple[Registration, bool]:
    """A pending registration: no seat and no place until a host approves it."""
    registration = existing or Registration(
        activity_id=activity.id, community_id=activity.community_id, user_id=actor.subject
    )
    registration.status = RegistrationStatus.pending
    registration.registered_at = utcnow()
    registration.answers = answers
    registration.decided_by = registration.decided_at = registration.decision_reason = None
    uow.session.add(registration)
    try:
        await uow.session.flush()
        await uow.commit()
    except IntegrityError:
        await uow.session.rollback()
        found = await _registration(uow, activity.id, actor.subject)
        if found is None:
            raise
        return found, False
    return registration, True


def check_answers(
    questions: Sequence[Mapping[str, Any]], answers: Mapping[str, str | list[str]]
) -> dict[str, Any]:
    """The answers, checked against the activity's questions (422 naming each problem)."""
    errors: list[dict[str, str]] = []
    parsed = [RegistrationQuestion.model_validate(q) for q in questions]
    known = {q.id for q in parsed}
    for key in answers:
        if key not in known:
            errors.append({"question": key, "msg": "no such question"})
    out: dict[str, Any] = {}
    for q in parsed:
        value = answers.get(q.id)
        if value is None or value == "" or value == []:
            if q.required:
                errors.append({"question": q.id, "msg": "an answer is required"})
            continue
        if q.kind == QuestionKind.text:
            if not isinstance(value, str):
                errors.append({"question": q.id, "msg": "the answer must be text"})
            elif len(value.strip()) > q.max_length:
                errors.append({"question": q.id, "msg": f"at most {q.max_length} characters"})
            else:
                out[q.id] = value.strip()
        else:
            chosen = [value] if isinstance(value, str) else list(value)
            wrong = [c for c in chosen if c not in q.choices]
            if wrong:
                errors.append({"question": q.id, "msg": f"not a choice: {', '.join(wrong)}"})
            else:
                out[q.id] = chosen
    if errors:
        raise invalid("invalid-answers", "the registration answers are not valid", errors=errors)
    return out


async def decide(
    *,
    uow: UnitOfWork,
    activity_id: uuid.UUID,
    registration_id: uuid.UUID,
    approve: bool,
    actor: Principal,
    reason: str | None = None,
) -> Registration:
    """Approve a pending registration (seat or waitlist) or reject one (a freed seat promotes)."""
    activity = await _activity(uow, activity_id)
    await require_manager(uow.session, activity, actor)
    await _lock_activity(uow, activity_id)
    activity = await _activity(uow, activity_id, fresh=True)
    registration = await _registration_by_id(uow, activity_id, registration_id)
    if activity.state not in CANCELLABLE_REGISTRATION:
        raise conflict(
            "registration-closed",
            f"registrations cannot be decided once the activity is {activity.state}",
        )
    now = utcnow()
    if approve:
        if registration.status != RegistrationStatus.pending:
            if registration.status in (RegistrationStatus.confirmed, RegistrationStatus.waitlisted):
                return registration  # approving twice is not an error
            raise conflict("not-pending", f"the registration is {registration.status}")
        position, seats_taken, capacity, _ = await _take_place(uow, activity_id)
        seated = seats_taken < capacity
        if seated:
            await _change_seats(uow, activity_id, +1)
        registration.status = (
            RegistrationStatus.confirmed if seated else RegistrationStatus.waitlisted
        )
        registration.position = position
        registration.reminder_stage = None
        registration.reminder_due_at = (
            next_reminder(activity.starts_at, activity.reminder_minutes, None) if seated else None
        )
        registration.decided_by, registration.decided_at = actor.subject, now
        uow.session.add(registration)
        await uow.record(
            RegistrationApproved(
                registration_id=registration.id,
                activity_id=activity_id,
                community_id=activity.community_id,
                user_id=registration.user_id,
                status=registration.status,
                approved_by=actor.subject,
                approved_at=now,
            ),
            subject=str(activity_id),
        )
        await uow.record(_registration_event(registration), subject=str(activity_id))
    else:
        if registration.status == RegistrationStatus.rejected:
            return registration
        if registration.status not in LIVE:
            raise conflict("not-rejectable", f"the registration is {registration.status}")
        was = RegistrationStatus(registration.status)
        registration.status = RegistrationStatus.rejected
        registration.reminder_due_at = None
        registration.decided_by, registration.decided_at = actor.subject, now
        registration.decision_reason = reason
        uow.session.add(registration)
        await uow.record(
            RegistrationRejected(
                registration_id=registration.id,
                activity_id=activity_id,
                community_id=activity.community_id,
                user_id=registration.user_id,
                was=was,
                reason=reason,
                rejected_by=actor.subject,
                rejected_at=now,
            ),
            subject=str(activity_id),
        )
        if was == RegistrationStatus.confirmed:
            await _change_seats(uow, activity_id, -1)
            await _promote(uow, activity)
    await uow.commit()
    return registration


async def cancel_registration(
    *, uow: UnitOfWork, activity_id: uuid.UUID, actor: Principal
) -> Registration:
    """Give up one's seat, waitlist place or request; a freed seat goes to the waitlist's head."""
    activity = await _activity(uow, activity_id)
    await _lock_activity(uow, activity_id)
    activity = await _activity(uow, activity_id, fresh=True)
    registration = await _registration(uow, activity_id, actor.subject)
    if registration is None:
        raise not_found("registration", actor.subject)
    if registration.status in SETTLED:
        return registration  # cancelling twice is not an error
    if activity.state not in CANCELLABLE_REGISTRATION:
        raise conflict(
            "registration-not-cancellable",
            f"registrations cannot be cancelled once the activity is {activity.state}",
        )
    deadline = activity.cancellation_deadline
    if deadline is not None and utcnow() >= as_utc(deadline):
        raise conflict(
            "cancellation-deadline-passed",
            "the cancellation deadline has passed",
            deadline=as_utc(deadline).isoformat(),
        )
    was = RegistrationStatus(registration.status)
    registration.status = RegistrationStatus.cancelled
    registration.reminder_due_at = None
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
    """Set an activity's capacity (organisers, hosts); never below the seats already taken."""
    activity = await _activity(uow, activity_id)
    await require_manager(uow.session, activity, actor)
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


# The summary's figures at `summarized` (reports/): injected in app.py, since reports reads
# this module's tables and this module must not import it back.
Summarizer = Any
_summarizer: list[Summarizer] = []


def use_summarizer(fn: Summarizer) -> None:
    """Wire the function that builds activity.summarized from an activity (app.py)."""
    _summarizer[:] = [fn]


async def transition(
    *, uow: UnitOfWork, activity_id: uuid.UUID, to: ActivityState, actor: Principal
) -> Activity:
    """Move an activity along its lifecycle; a move the state machine forbids is a 409."""
    activity = await _activity(uow, activity_id)
    await require_manager(uow.session, activity, actor)
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
    subject = str(activity.id)
    if to == ActivityState.published and current == ActivityState.draft:
        await uow.record(_published_event(activity, actor, now), subject=subject)
    elif to == ActivityState.cancelled:
        await _void_registrations(uow, activity, actor, now)
    elif to == ActivityState.ongoing:
        await uow.record(
            ActivityStarted(
                activity_id=activity.id,
                community_id=activity.community_id,
                confirmed=activity.seats_taken,
                started_by=actor.subject,
                started_at=now,
            ),
            subject=subject,
        )
    elif to == ActivityState.ended:
        await uow.record(
            ActivityEnded(
                activity_id=activity.id,
                community_id=activity.community_id,
                ended_by=actor.subject,
                ended_at=now,
            ),
            subject=subject,
        )
    elif to == ActivityState.summarized and _summarizer:
        event: Event = await _summarizer[0](uow.session, activity, actor.subject, now)
        await uow.record(event, subject=subject)
    await uow.record(
        ActivityStateChanged(
            activity_id=activity.id,
            community_id=activity.community_id,
            from_state=current,
            to_state=to,
            changed_by=actor.subject,
            changed_at=now,
        ),
        subject=subject,
    )
    if to == ActivityState.ended:
        for hook in _ENDED_HOOKS:  # e.g. no-shows (checkin), in this same transaction
            await hook(uow, activity, now)
    await uow.commit()
    return activity


async def _void_registrations(
    uow: UnitOfWork, activity: Activity, actor: Principal, now: datetime
) -> None:
    """Cancel every live registration of a cancelled activity, each with registration.voided."""
    stmt = (
        select(Registration)
        .where(Registration.activity_id == activity.id, col(Registration.status).in_(LIVE))
        .order_by(col(Registration.position), col(Registration.id))
    )
    rows = list((await uow.session.exec(stmt)).all())
    for registration in rows:
        was = registration.status
        registration.status = RegistrationStatus.cancelled
        registration.reminder_due_at = None
        uow.session.add(registration)
        await uow.record(
            RegistrationVoided(
                registration_id=registration.id,
                activity_id=activity.id,
                community_id=activity.community_id,
                user_id=registration.user_id,
                title=activity.title,
                starts_at=as_utc(activity.starts_at),
                was=was,
                voided_at=now,
            ),
            subject=str(activity.id),
        )
    activity.seats_taken = 0
    await uow.record(
        ActivityCancelled(
            activity_id=activity.id,
            community_id=activity.community_id,
            title=activity.title,
            starts_at=as_utc(activity.starts_at),
            registrants=len(rows),
            cancelled_by=actor.subject,
            cancelled_at=now,
        ),
        subject=str(activity.id),
    )


def next_reminder(starts_at: datetime, leads: Sequence[int], stage: int | None) -> datetime | None:
    """When a seat's next reminder is due: the start minus the longest lead not yet sent."""
    remaining = [m for m in leads if stage is None or m < stage]
    return as_utc(starts_at) - timedelta(minutes=max(remaining)) if remaining else None


async def _reschedule_reminders(session: AsyncSession, activity: Activity) -> None:
    """After the start or the leads changed: each confirmed seat's next reminder again."""
    stmt = select(Registration).where(
        Registration.activity_id == activity.id,
        col(Registration.status) == RegistrationStatus.confirmed,
    )
    for registration in (await session.exec(stmt)).all():
        registration.reminder_due_at = next_reminder(
            activity.starts_at, activity.reminder_minutes, registration.reminder_stage
        )
        session.add(registration)


async def remind_due(
    runtime: ServiceRuntime,
    *,
    now: datetime,
    lead: timedelta | None = None,
    batch: int = 200,
) -> int:
    """Announce the reminders due now: each of an activity's leads once per confirmed seat.

    A seat's `reminder_due_at` is its next lead's time; the pass sends one reminder for the
    shortest lead already due (a seat taken an hour before the start gets one reminder, not
    two), records that lead as `reminder_stage` and moves `reminder_due_at` to the next one.
    Safe with several replicas: due registrations are claimed with `FOR UPDATE SKIP LOCKED`
    on PostgreSQL, so replicas running this at once take different seats and each reminder is
    announced once (SQLite has one writer at a time); the stage is written in the same
    transaction as the event, so restarts do not repeat one either. Someone who left the
    community since registering is passed over, not reminded. `lead`, when given, only
    considers activities starting within it. The clock is a parameter for tests.
    """
    async with runtime.db.session() as session:
        uow = UnitOfWork(session, runtime)
        conditions = [
            col(Registration.status) == RegistrationStatus.confirmed,
            col(Registration.reminder_due_at) <= now,
            col(Activity.starts_at) > now,
        ]
        if lead is not None:
            conditions.append(col(Activity.starts_at) <= now + lead)
        due = (
            select(Registration, Activity)
            .join(Activity, col(Activity.id) == col(Registration.activity_id))
            .where(*conditions)
            .order_by(col(Registration.reminder_due_at), col(Registration.id))
            .limit(batch)
            .with_for_update(skip_locked=True, of=Registration)
        )
        sent = 0
        for registration, activity in (await session.exec(due)).all():
            starts = as_utc(activity.starts_at)
            stage = registration.reminder_stage
            leads = [
                m
                for m in activity.reminder_minutes
                if (stage is None or m < stage) and starts - timedelta(minutes=m) <= now
            ]
            if leads:
                registration.reminder_stage = min(leads)
                registration.reminded_at = now
            registration.reminder_due_at = next_reminder(
                starts, activity.reminder_minutes, registration.reminder_stage
            )
            session.add(registration)
            if not leads:
                continue
            if not await _is_active_member(session, activity.community_id, registration.user_id):
                continue
            await uow.record(
                RegistrationReminderDue(
                    registration_id=registration.id,
                    activity_id=activity.id,
                    community_id=activity.community_id,
                    user_id=registration.user_id,
                    title=activity.title,
                    starts_at=starts,
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
    """An activity's registrations in first-come order (limit+1 rows; organisers and hosts)."""
    activity = await _activity(uow, activity_id)
    await require_manager(uow.session, activity, actor)
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


async def get_community_settings(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal
) -> CommunityEventSettings | None:
    """A community's activity rules (its members and staff may read them)."""
    await require_member_or_staff(uow.session, community_id, actor)
    return await uow.session.get(CommunityEventSettings, community_id)


async def set_community_settings(
    *, uow: UnitOfWork, community_id: uuid.UUID, max_waitlists: int | None, actor: Principal
) -> CommunityEventSettings:
    """Set a community's activity rules (its owners and admins, or staff)."""
    if not await _community_known(uow.session, community_id):
        if not actor.is_staff:
            raise forbidden(ORGANISER_REFUSAL)
        raise not_found("community", community_id)
    await _require_organiser(uow.session, community_id, actor)
    row = await uow.session.get(CommunityEventSettings, community_id)
    if row is None:
        row = CommunityEventSettings(community_id=community_id, updated_by=actor.subject)
    row.max_waitlists = max_waitlists
    row.updated_by, row.updated_at = actor.subject, utcnow()
    uow.session.add(row)
    await uow.commit()
    return row


async def apply_membership(*, session: AsyncSession, values: Mapping[str, Any]) -> bool:
    """Take a membership snapshot unless the read model holds this version or a newer one."""
    return await apply_snapshot(
        session,
        CommunityMembership,
        {**values, "updated_at": utcnow()},
        key=["community_id", "user_id"],
    )


# --- Who may do what ---------------------------------------------------------------------------


async def _require_organiser(
    session: AsyncSession, community_id: uuid.UUID, actor: Principal
) -> None:
    # Platform staff, or the community's owners and admins per members' snapshots.
    if actor.is_staff:
        return
    found = await session.get(CommunityMembership, (community_id, actor.subject))
    if found is None or found.status != ACTIVE or found.role not in ORGANISER_ROLES:
        raise forbidden(ORGANISER_REFUSAL)


async def is_manager(session: AsyncSession, activity: Activity, actor: Principal) -> bool:
    """Staff, the community's owners and admins, or one of the activity's hosts (still members)."""
    return actor.is_staff or await is_host(session, activity, actor)


async def require_manager(session: AsyncSession, activity: Activity, actor: Principal) -> None:
    """Refuse (403) anyone who may not manage the activity."""
    if not await is_manager(session, activity, actor):
        raise forbidden(MANAGER_REFUSAL)


async def require_viewer(session: AsyncSession, activity: Activity, actor: Principal) -> None:
    """Refuse (403) anyone the activity is not visible to."""
    if actor.is_staff:
        return
    if await _eligible_membership(session, activity, actor.subject) is None:
        raise forbidden("only members of the communities it is open to may see this activity")


async def _eligible_membership(
    session: AsyncSession, activity: Activity, user_id: uuid.UUID
) -> CommunityMembership | None:
    """The active membership that lets this person see and register (own community first)."""
    communities = [activity.community_id]
    if activity.visibility == Visibility.communities:
        communities += [uuid.UUID(c) for c in activity.open_to or []]
    for community_id in communities:
        found = await session.get(CommunityMembership, (community_id, user_id))
        if found is not None and found.status == ACTIVE:
            return found
    return None


async def _require_hosts_are_members(
    session: AsyncSession, community_id: uuid.UUID, hosts: Sequence[uuid.UUID]
) -> None:
    strangers = [str(h) for h in hosts if not await _is_active_member(session, community_id, h)]
    if strangers:
        raise invalid(
            "hosts-not-members",
            "hosts must be active members of the community",
            hosts=strangers,
        )


def _require_window(
    activity: Activity,
    membership: CommunityMembership,
    now: datetime,
    *,
    state: ActivityState | None = None,
) -> None:
    """Registration is open: published, inside the window (early for priority members)."""
    state = state or ActivityState(activity.state)
    if state not in lifecycle.OPEN_FOR_REGISTRATION:
        raise conflict("registration-closed", f"the activity is {state}, not open for registration")
    closes = as_utc(activity.registration_closes_at or activity.starts_at)
    if activity.registration_closes_at is None and now >= closes:
        raise conflict(
            "registration-closed", "the activity has already started", closed_at=closes.isoformat()
        )
    if now >= closes:
        raise conflict(
            "registration-closed",
            "the registration window has closed",
            closed_at=closes.isoformat(),
        )
    if activity.registration_opens_at is not None:
        opens = as_utc(activity.registration_opens_at)
        if PRIORITY_REGISTRATION in (membership.privileges or []):
            opens -= timedelta(hours=activity.priority_hours)
        if now < opens:
            raise conflict(
                "registration-not-open",
                "the registration window has not opened yet",
                opens_at=opens.isoformat(),
            )


async def _require_waitlist_room(
    session: AsyncSession, community_id: uuid.UUID, user_id: uuid.UUID, limit: int
) -> None:
    """Refuse (409) a waitlist place beyond the community's per-member limit."""
    stmt = select(func.count()).where(
        col(Registration.community_id) == community_id,
        col(Registration.user_id) == user_id,
        col(Registration.status) == RegistrationStatus.waitlisted,
    )
    held = (await session.exec(stmt)).one()
    if held >= limit:
        raise conflict(
            "waitlist-limit",
            f"members of this community may wait for at most {limit} activities",
            limit=limit,
            waitlisted=held,
        )


# --- Seats and the waitlist --------------------------------------------------------------------

# In-process admission per activity (weakly held: gone once no request waits on it). It only
# bounds this process's requests in flight; across processes and replicas the row lock decides.
_gates: weakref.WeakValueDictionary[uuid.UUID, asyncio.Semaphore] = weakref.WeakValueDictionary()


@asynccontextmanager
async def _admission(uow: UnitOfWork, activity_id: uuid.UUID) -> AsyncIterator[None]:
    gate = _gates.get(activity_id)
    if gate is None:
        bind = uow.session.bind
        # SQLite holds its single writer slot from the transaction's first statement: more than
        # one in flight would only wait on busy_timeout.
        serial = bind is None or bind.dialect.name == "sqlite"
        settings = settings_of(runtime_of(uow.session), EventsSettings)
        width = 1 if serial else settings.registration_parallelism
        gate = _gates[activity_id] = asyncio.Semaphore(width)
    async with gate:
        yield


async def _claim_place(
    uow: UnitOfWork, activity_id: uuid.UUID, *, full: bool
) -> tuple[bool, int, str]:
    """Take a seat if one is free, else the next waitlist place: (seated, position, state).

    Each attempt is one conditional UPDATE of the activity's counters, evaluated on the row as
    it is once this transaction holds its lock (PostgreSQL re-checks the WHERE clause on the
    newest version after waiting). A seat: `seats_taken < capacity`, both counters move; a
    waitlist place: `seats_taken >= capacity`, only the queue moves. Exactly one of the two
    matches the locked row, so at most two statements, usually one (`full` guesses which);
    a miss takes no lock, and a third try only follows a seat freed or taken in between.
    """
    seat = col(Activity.seats_taken) < col(Activity.capacity)
    attempts = [False, True] if full else [True, False]
    while True:
        for seated in attempts:
            row = (
                await uow.session.execute(
                    update(Activity)
                    .where(col(Activity.id) == activity_id, seat if seated else ~seat)
                    .values(
                        queue_length=col(Activity.queue_length) + 1,
                        **({"seats_taken": col(Activity.seats_taken) + 1} if seated else {}),
                    )
                    .returning(col(Activity.queue_length), col(Activity.state))
                    .execution_options(synchronize_session=False)
                )
            ).one_or_none()
            if row is not None:
                return seated, int(row[0]), str(row[1])
        if await uow.session.get(Activity, activity_id) is None:
            raise not_found("activity", activity_id)


async def _take_place(uow: UnitOfWork, activity_id: uuid.UUID) -> tuple[int, int, int, str]:
    """Lock the activity and take the next queue position: (position, seats, capacity, state)."""
    row = (
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
    return row[0], row[1], row[2], row[3]


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
        registration.reminder_stage = None
        registration.reminder_due_at = next_reminder(
            activity.starts_at, activity.reminder_minutes, None
        )
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


async def require_member_or_staff(
    session: AsyncSession, community_id: uuid.UUID, actor: Principal
) -> None:
    if not actor.is_staff and not await _is_active_member(session, community_id, actor.subject):
        raise forbidden("only active members of the community may see its activities")


async def _community_known(session: AsyncSession, community_id: uuid.UUID) -> bool:
    # Every community has its owner's membership snapshot from the moment it is created.
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


async def _registration_by_id(
    uow: UnitOfWork, activity_id: uuid.UUID, registration_id: uuid.UUID
) -> Registration:
    found = await uow.session.get(Registration, registration_id, populate_existing=True)
    if found is None or found.activity_id != activity_id:
        raise not_found("registration", registration_id)
    return found

"""Calendar use cases: columns and tags, week/month views, the iCalendar feed, booking slots.

Booking changes a post's `publish_at` under the post's row lock; the scheduled publisher
claims due posts with `FOR UPDATE SKIP LOCKED` (hearth_content.service.publish_due), so a move
and a publication never both win: a post already published refuses the move with 409.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from hearth_content import service as posts
from hearth_content.calendar.cadence import is_occurrence, normalize_tag, occurrences, slot_id
from hearth_content.calendar.models import Booking, ContentColumn, Tag
from hearth_content.calendar.schemas import (
    BookedPost,
    CalendarView,
    ColumnIn,
    ColumnUpdate,
    SlotOut,
)
from hearth_content.events import PostScheduled
from hearth_content.models import (
    COMMUNITY_STAFF_ROLES,
    SCHEDULE_HORIZON,
    CommunityRole,
    Post,
    PostStatus,
)
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.problems import Problem, forbidden, not_found

ADMIN_ROLES = frozenset({CommunityRole.owner, CommunityRole.admin})
# A booked post may still be in review; once out (or held, or rejected) its time is history.
BOOKABLE = frozenset({PostStatus.pending_review, PostStatus.in_review, PostStatus.scheduled})
ICAL_DEFAULT_BACK = timedelta(days=7)
ICAL_DEFAULT_AHEAD = timedelta(days=90)


async def create_column(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: ColumnIn, actor: Principal
) -> ContentColumn:
    """Create a column (community owner or admins, or platform staff); its tags are normalized."""
    await _require(uow, community_id, actor, ADMIN_ROLES)
    slugs = await _upsert_tags(uow, community_id, data.tags)
    column = ContentColumn(
        community_id=community_id,
        name=data.name,
        description=data.description,
        owners=[str(o) for o in dict.fromkeys(data.owners)],
        tags=slugs,
        cadence=data.cadence,
        weekday=data.weekday,
        day_of_month=data.day_of_month,
        hour=data.hour,
        minute=data.minute,
        time_zone=data.time_zone,
        slot_minutes=data.slot_minutes,
    )
    uow.session.add(column)
    try:
        await uow.session.flush()
    except IntegrityError:
        raise Problem(409, "column-exists", "Conflict", "a column with this name exists") from None
    await uow.commit()
    return column


async def update_column(
    *, uow: UnitOfWork, column_id: uuid.UUID, data: ColumnUpdate, actor: Principal
) -> ContentColumn:
    """Change a column (its owners, the community's staff, platform staff).

    Bookings stay where they are: one whose time leaves the new cadence shows off-plan.
    """
    column = await _column_for_change(uow, column_id, actor)
    fields = ["name", "description", "owners", "tags", "cadence", "weekday", "day_of_month"]
    fields += ["hour", "minute", "time_zone", "slot_minutes"]
    current = {name: getattr(column, name) for name in fields}
    changes = data.model_dump(exclude_unset=True)
    if any(changes.get(k, 0) is None for k in ("name", "cadence", "hour", "minute")):
        raise Problem(422, "required", "Unprocessable", "name, cadence, hour and minute stay set")
    try:
        merged = ColumnIn.model_validate({**current, **changes})
    except ValidationError as exc:
        raise Problem(422, "invalid-column", "Unprocessable", _first_error(exc)) from None
    column.name = merged.name
    column.description = merged.description
    column.owners = [str(o) for o in dict.fromkeys(merged.owners)]
    if "tags" in changes:
        column.tags = await _upsert_tags(uow, column.community_id, merged.tags)
    column.cadence = merged.cadence
    column.weekday = merged.weekday
    column.day_of_month = merged.day_of_month
    column.hour, column.minute = merged.hour, merged.minute
    column.time_zone = merged.time_zone
    column.slot_minutes = merged.slot_minutes
    uow.session.add(column)
    try:
        await uow.session.flush()
    except IntegrityError:
        raise Problem(409, "column-exists", "Conflict", "a column with this name exists") from None
    await uow.commit()
    return column


async def delete_column(*, uow: UnitOfWork, column_id: uuid.UUID, actor: Principal) -> None:
    """Delete a column with no planned posts left (its owners, community staff, platform staff).

    A post booked into it and not yet out (in review or scheduled) makes this a 409 naming the
    posts: move or unbook them first, so no plan is dropped silently. Bookings of posts already
    out are history and go with the column; the posts themselves stay.
    """
    column = await _column_for_change(uow, column_id, actor)
    bookings = (
        await uow.session.exec(
            select(Booking, Post)
            .join(Post, col(Post.id) == col(Booking.post_id))
            .where(col(Booking.column_id) == column.id)
            .with_for_update()
        )
    ).all()
    planned = sorted(
        str(p.id) for _, p in bookings if p.status in BOOKABLE and p.deleted_at is None
    )
    if planned:
        raise Problem(
            409,
            "column-has-bookings",
            "Conflict",
            f"{len(planned)} planned post(s) are booked into this column: move or unbook them",
            post_ids=planned,
        )
    for booking, _ in bookings:
        await uow.session.delete(booking)
    await uow.session.delete(column)
    await uow.commit()


async def _column_for_change(
    uow: UnitOfWork, column_id: uuid.UUID, actor: Principal
) -> ContentColumn:
    column = await uow.session.get(ContentColumn, column_id, with_for_update=True)
    if column is None:
        raise not_found("column", column_id)
    await _require_planner(uow, column.community_id, actor, column)
    return column


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error.get("loc", ()))
    return f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg"))


async def list_columns(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal
) -> list[ContentColumn]:
    """A community's columns (its members and staff)."""
    _, membership = await posts._community_access(uow, community_id, actor)
    if membership is None and not actor.is_staff:
        raise forbidden("only members of this community may list its columns")
    stmt = select(ContentColumn).where(ContentColumn.community_id == community_id)
    return list((await uow.session.exec(stmt.order_by(col(ContentColumn.name)))).all())


async def list_tags(*, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal) -> list[Tag]:
    """A community's tags (its members and staff)."""
    _, membership = await posts._community_access(uow, community_id, actor)
    if membership is None and not actor.is_staff:
        raise forbidden("only members of this community may list its tags")
    stmt = select(Tag).where(Tag.community_id == community_id).order_by(col(Tag.slug))
    return list((await uow.session.exec(stmt)).all())


def view_range(view: str, day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The [start, end) of the week (Monday first) or month holding `day`, in `zone`, as UTC."""
    if view == "week":
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
    else:
        first = day.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
    start = datetime.combine(first, time(), tzinfo=zone).astimezone(UTC)
    return start, datetime.combine(after, time(), tzinfo=zone).astimezone(UTC)


async def calendar_view(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    actor: Principal,
    view: str,
    day: date | None,
    time_zone: str,
) -> CalendarView:
    """Planned slots, booked posts and gaps of a week or month (planners only)."""
    await _require_planner(uow, community_id, actor)
    zone = ZoneInfo(time_zone)
    start, end = view_range(view, day or utcnow().astimezone(zone).date(), zone)
    slots, unslotted = await _window(uow, community_id, start, end)
    return CalendarView(
        community_id=community_id,
        view="week" if view == "week" else "month",
        time_zone=time_zone,
        start=start,
        end=end,
        slots=slots,
        gaps=sum(1 for s in slots if s.gap),
        unslotted=unslotted,
    )


async def ical_feed(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    actor: Principal,
    start: datetime | None,
    end: datetime | None,
) -> bytes:
    """The calendar as iCalendar (RFC 5545): one VEVENT per planned slot and per unslotted post."""
    await _require_planner(uow, community_id, actor)
    now = utcnow()
    start = start or now - ICAL_DEFAULT_BACK
    end = end or now + ICAL_DEFAULT_AHEAD
    if end <= start or end - start > SCHEDULE_HORIZON:
        raise Problem(422, "bad-range", "Unprocessable", "end must follow start, within 366 days")
    slots, unslotted = await _window(uow, community_id, start, end)
    cal = Calendar()
    cal.add("prodid", "-//Hearth//content calendar//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"Hearth content {community_id}")
    for s in slots:
        event = Event()
        event.add("uid", f"{s.slot_id}@hearth")
        event.add("dtstamp", now)
        event.add("dtstart", s.starts_at)
        event.add("dtend", s.ends_at)
        title = s.post.title if s.post else "(open slot)"
        event.add("summary", f"{s.column_name}: {title}")
        event.add("categories", ["booked" if s.post else "gap"])
        cal.add_component(event)
    for at, post in unslotted:
        event = Event()
        event.add("uid", f"{post.id}@hearth")
        event.add("dtstamp", now)
        event.add("dtstart", at)
        event.add("duration", timedelta(minutes=30))
        event.add("summary", post.title)
        cal.add_component(event)
    return bytes(cal.to_ical())


async def book(
    *,
    uow: UnitOfWork,
    post_id: uuid.UUID,
    column_id: uuid.UUID,
    starts_at: datetime,
    actor: Principal,
) -> Booking:
    """Book a post into a planned slot of a column, or move its booking there."""
    post = await uow.session.get(Post, post_id, with_for_update=True)
    if post is None:
        raise not_found("post", post_id)
    column = await uow.session.get(ContentColumn, column_id)
    if column is None or column.community_id != post.community_id:
        raise not_found("column", column_id)
    await _require_planner(uow, post.community_id, actor, column)
    if post.status not in BOOKABLE:
        raise Problem(409, "not-bookable", "Conflict", f"a {post.status} post cannot be booked")
    now = utcnow()
    if starts_at <= now or starts_at > now + SCHEDULE_HORIZON:
        raise Problem(422, "bad-slot", "Unprocessable", "the slot must be ahead, within 366 days")
    if not is_occurrence(column, starts_at):
        raise Problem(422, "not-a-slot", "Unprocessable", "no planned slot of the column then")
    taken = (
        await uow.session.exec(
            select(Booking).where(Booking.column_id == column_id, Booking.starts_at == starts_at)
        )
    ).first()
    if taken is not None and taken.post_id != post_id:
        raise _slot_taken()
    booking = await uow.session.get(Booking, post_id) or Booking(
        post_id=post_id,
        community_id=post.community_id,
        column_id=column_id,
        starts_at=starts_at,
        booked_by=actor.subject,
    )
    booking.column_id, booking.starts_at = column_id, starts_at
    booking.booked_by, booking.booked_at = actor.subject, now
    post.publish_at = starts_at
    uow.session.add(booking)
    uow.session.add(post)
    if post.status == PostStatus.scheduled:
        await _announce(uow, post, column_id)
    try:
        await uow.session.flush()
    except IntegrityError:  # two bookings raced for the slot: the unique constraint decides
        raise Problem(
            409, "slot-taken", "Conflict", "another post is booked into this slot"
        ) from None
    await uow.commit()
    return booking


async def unbook(*, uow: UnitOfWork, post_id: uuid.UUID, actor: Principal) -> None:
    """Take a post out of its slot: it keeps its review state and has no publish time.

    An approved (scheduled) post then waits, unplanned, until it is booked again.
    """
    post = await uow.session.get(Post, post_id, with_for_update=True)
    if post is None:
        raise not_found("post", post_id)
    booking = await uow.session.get(Booking, post_id)
    column = await uow.session.get(ContentColumn, booking.column_id) if booking else None
    await _require_planner(uow, post.community_id, actor, column)
    if booking is None:
        raise not_found("booking", post_id)
    if post.status not in BOOKABLE:
        raise Problem(409, "not-bookable", "Conflict", f"a {post.status} post cannot be unbooked")
    await uow.session.delete(booking)
    post.publish_at = None
    uow.session.add(post)
    await uow.commit()


async def column_of(uow: UnitOfWork, post_id: uuid.UUID) -> uuid.UUID | None:
    """The column a post is booked into, for event payloads."""
    booking = await uow.session.get(Booking, post_id)
    return booking.column_id if booking else None


# --- Helpers ----------------------------------------------------------------------------------


async def _window(
    uow: UnitOfWork, community_id: uuid.UUID, start: datetime, end: datetime
) -> tuple[list[SlotOut], list[tuple[datetime, BookedPost]]]:
    columns = list(
        (
            await uow.session.exec(
                select(ContentColumn).where(ContentColumn.community_id == community_id)
            )
        ).all()
    )
    booked = (
        await uow.session.exec(
            select(Booking, Post)
            .join(Post, col(Post.id) == col(Booking.post_id))
            .where(
                Booking.community_id == community_id,
                col(Booking.starts_at) >= start,
                col(Booking.starts_at) < end,
            )
        )
    ).all()
    by_slot = {(b.column_id, _aware(b.starts_at)): p for b, p in booked}
    slots: list[SlotOut] = []
    for column in columns:
        for at in occurrences(column, start, end):
            post = by_slot.pop((column.id, at), None)
            slots.append(_slot(column, at, post))
    names = {c.id: c for c in columns}
    # A booking whose time left the cadence (the cadence changed) still shows, off-plan.
    for (column_id, at), post in by_slot.items():
        slots.append(_slot(names[column_id], at, post))
    slots.sort(key=lambda s: (s.starts_at, s.column_name))
    in_slots = {p.id for _, p in booked}
    loose = (
        await uow.session.exec(
            select(Post).where(
                Post.community_id == community_id,
                col(Post.publish_at) >= start,
                col(Post.publish_at) < end,
                col(Post.status).in_(list(BOOKABLE | {PostStatus.published})),
            )
        )
    ).all()
    unslotted = sorted(
        (
            (_aware(p.publish_at), _booked(p))
            for p in loose
            if p.id not in in_slots and p.publish_at
        ),
        key=lambda item: item[0],
    )
    return slots, unslotted


def _slot_taken() -> Problem:
    return Problem(409, "slot-taken", "Conflict", "another post is booked into this slot")


def _slot(column: ContentColumn, at: datetime, post: Post | None) -> SlotOut:
    return SlotOut(
        slot_id=slot_id(column.id, at),
        column_id=column.id,
        column_name=column.name,
        starts_at=at,
        ends_at=at + timedelta(minutes=column.slot_minutes),
        post=_booked(post) if post else None,
        gap=post is None,
    )


def _booked(post: Post) -> BookedPost:
    return BookedPost(id=post.id, title=post.title, status=post.status, author_id=post.author_id)


async def _announce(uow: UnitOfWork, post: Post, column_id: uuid.UUID) -> None:
    assert post.publish_at is not None
    await uow.record(
        PostScheduled(
            post_id=post.id,
            community_id=post.community_id,
            author_id=post.author_id,
            column_id=column_id,
            title=post.title,
            format=post.format,
            screening_id=post.screening_id,
            publish_at=_aware(post.publish_at),
        ),
        subject=str(post.id),
    )


async def upsert_tags(uow: UnitOfWork, community_id: uuid.UUID, labels: list[str]) -> list[str]:
    """The labels' normalized slugs, each added to the community's tags if new (caller commits)."""
    clean = [label.strip()[:64] for label in labels if normalize_tag(label[:64])]
    return await _upsert_tags(uow, community_id, clean)


async def _upsert_tags(uow: UnitOfWork, community_id: uuid.UUID, labels: list[str]) -> list[str]:
    slugs: list[str] = []
    for label in labels:
        slug = normalize_tag(label)
        if slug in slugs:
            continue
        slugs.append(slug)
        if await uow.session.get(Tag, (community_id, slug)) is None:
            uow.session.add(Tag(community_id=community_id, slug=slug, label=label.strip()))
    return slugs


async def _require(
    uow: UnitOfWork, community_id: uuid.UUID, actor: Principal, roles: frozenset[CommunityRole]
) -> None:
    if actor.is_staff:
        return
    _, membership = await posts._community_access(uow, community_id, actor)
    if membership is None or membership.role not in roles:
        raise forbidden(f"only {', '.join(sorted(roles))} of this community may do this")


async def _require_planner(
    uow: UnitOfWork,
    community_id: uuid.UUID,
    actor: Principal,
    column: ContentColumn | None = None,
) -> None:
    """Community staff, platform staff, or an owner of the column (or of any column)."""
    if actor.is_staff:
        return
    _, membership = await posts._community_access(uow, community_id, actor)
    if membership is not None and membership.role in COMMUNITY_STAFF_ROLES:
        return
    if membership is not None:
        me = str(actor.subject)
        if column is not None:
            if me in column.owners:
                return
        else:
            stmt = select(ContentColumn).where(ContentColumn.community_id == community_id)
            if any(me in c.owners for c in (await uow.session.exec(stmt)).all()):
                return
    raise forbidden("only the community's staff and column owners plan its calendar")


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

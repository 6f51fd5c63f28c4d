"""Interaction use cases: rescoring, views counted once per member per day, hot and unanswered.

Views are buffered in process (a set of (post, member, UTC day), so refreshing a page a hundred
times is one entry) and written by the view flusher every `views_flush_seconds`: one
`INSERT … ON CONFLICT DO NOTHING RETURNING` into `post_views` per flush, then one counter update
per viewed post and one `content.views.counted.v1` for the whole flush. Several replicas each
buffer their own views; the primary key (post, member, day) makes the database drop the
duplicates, and only the rows actually inserted are counted, so no view is counted twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlmodel import col, or_, select

from hearth_content import service as posts
from hearth_content.calendar.models import Booking
from hearth_content.events import ViewsCounted, ViewsOfPost
from hearth_content.models import Post, PostKind, PostStatus
from hearth_content.ranking.models import PostView
from hearth_content.ranking.score import rescore
from hearth_content.settings import ContentSettings
from servicekit.db import upsert_insert
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.pagination import PageParams, after_id, cursor_key, invalid_cursor
from servicekit.problems import forbidden
from servicekit.runtime import Key, ServiceRuntime, extension, settings_of

log = logging.getLogger(__name__)

# Past this many buffered views a flush runs at once instead of waiting for its tick.
BUFFER_MAX = 10_000
UNANSWERED_KINDS = (PostKind.question, PostKind.discussion)


# --- Views ------------------------------------------------------------------------------------


@dataclass
class ViewBuffer:
    """Views seen by this process and not yet written."""

    seen: set[tuple[uuid.UUID, uuid.UUID, date]] = field(default_factory=set)
    wake: asyncio.Event = field(default_factory=asyncio.Event)


VIEWS = Key[ViewBuffer]("content.views")


def buffer_of(runtime: ServiceRuntime) -> ViewBuffer:
    """This runtime's view buffer."""
    return extension(runtime, VIEWS, ViewBuffer)


def saw(
    runtime: ServiceRuntime, post: Post, actor: Principal, *, now: datetime | None = None
) -> None:
    """Note that the actor read a published post today (written by the next flush)."""
    if post.status != PostStatus.published or post.deleted_at is not None:
        return
    buffer = buffer_of(runtime)
    buffer.seen.add((post.id, actor.subject, (now or utcnow()).date()))
    if len(buffer.seen) >= BUFFER_MAX:
        buffer.wake.set()


async def flush_views(runtime: ServiceRuntime) -> int:
    """Write the buffered views; the number of new (post, member, day) views counted."""
    buffer = buffer_of(runtime)
    if not buffer.seen:
        return 0
    batch, buffer.seen = buffer.seen, set()
    try:
        return await _write(runtime, sorted(batch))
    except BaseException:
        buffer.seen |= batch  # the next flush tries again; the primary key keeps it exact
        raise


async def _write(runtime: ServiceRuntime, batch: list[tuple[uuid.UUID, uuid.UUID, date]]) -> int:
    now = utcnow()
    async with runtime.db.session() as session:
        uow = UnitOfWork(session, runtime)
        new: Counter[uuid.UUID] = Counter()
        for start in range(0, len(batch), 1000):
            rows = [
                {"post_id": p, "member_id": m, "day": d} for p, m, d in batch[start : start + 1000]
            ]
            inserted = await session.execute(
                upsert_insert(session, PostView)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["post_id", "member_id", "day"])
                .returning(col(PostView.post_id))
            )
            new.update(row[0] for row in inserted.all())
        if not new:
            await uow.commit()
            return 0
        # Lock in id order, so two replicas flushing at once cannot deadlock.
        locked = (
            await session.exec(
                select(Post)
                .where(col(Post.id).in_(sorted(new)))
                .order_by(col(Post.id))
                .with_for_update()
            )
        ).all()
        columns = dict(
            (
                await session.exec(
                    select(Booking.post_id, Booking.column_id).where(
                        col(Booking.post_id).in_(sorted(new))
                    )
                )
            ).all()
        )
        items: list[ViewsOfPost] = []
        for post in locked:
            post.view_count += new[post.id]
            rescore(post)
            session.add(post)
            items.append(
                ViewsOfPost(
                    post_id=post.id,
                    community_id=post.community_id,
                    author_id=post.author_id,
                    column_id=columns.get(post.id),
                    views=new[post.id],
                )
            )
        await uow.record(ViewsCounted(posts=items, views=sum(new.values()), counted_at=now))
        await uow.commit()
        return sum(new.values())


async def view_flusher(runtime: ServiceRuntime) -> None:
    """Background loop: flush buffered views every tick (at once when the buffer is full)."""
    seconds = settings_of(runtime, ContentSettings).views_flush_seconds
    buffer = buffer_of(runtime)
    try:
        while True:
            try:
                await asyncio.wait_for(buffer.wake.wait(), timeout=seconds)
            except TimeoutError:
                pass
            buffer.wake.clear()
            try:
                counted = await flush_views(runtime)
                if counted:
                    log.info("view_flusher: %s views counted", counted)
            except Exception:
                log.exception("view_flusher pass failed; retrying in %.1f s", seconds)
    finally:
        # Stopping: write what is buffered, so a rolling restart loses no views.
        try:
            await flush_views(runtime)
        except Exception:
            log.exception("view_flusher: last flush failed; %s views lost", len(buffer.seen))


# --- Lists ------------------------------------------------------------------------------------


async def hot_posts(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal, page: PageParams
) -> list[Post]:
    """A community's published posts by hot score, highest first (keyset: score, id)."""
    stmt = await _published(uow, community_id, actor)
    stmt = stmt.where(col(Post.hot_score).is_not(None))
    if page.after:
        text, ident = cursor_key(page.after, str, uuid.UUID)
        try:
            score = float(text)
        except ValueError:
            raise invalid_cursor() from None
        stmt = stmt.where(
            or_(
                col(Post.hot_score) < score,
                (col(Post.hot_score) == score) & (col(Post.id) < ident),
            )
        )
    stmt = stmt.order_by(col(Post.hot_score).desc(), col(Post.id).desc()).limit(page.limit + 1)
    return list((await uow.session.exec(stmt)).all())


async def unanswered_posts(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal, page: PageParams
) -> list[Post]:
    """Published questions and discussions nobody but their author replied to, newest first."""
    stmt = await _published(uow, community_id, actor)
    stmt = stmt.where(
        col(Post.first_response_at).is_(None),
        col(Post.kind).in_(list(UNANSWERED_KINDS)),
        col(Post.shared_from_id).is_(None),  # a share points at a question; it asks nothing
    )
    if page.after:
        stmt = stmt.where(col(Post.id) < after_id(page))
    stmt = stmt.order_by(col(Post.id).desc()).limit(page.limit + 1)
    return list((await uow.session.exec(stmt)).all())


async def _published(uow: UnitOfWork, community_id: uuid.UUID, actor: Principal):  # type: ignore[no-untyped-def]
    _, membership = await posts._community_access(uow, community_id, actor)
    if membership is None and not actor.is_staff:
        raise forbidden("only members of this community may list its posts")
    return select(Post).where(
        col(Post.community_id) == community_id,
        col(Post.status) == PostStatus.published,
        col(Post.deleted_at).is_(None),
        or_(
            col(Post.shared_from_id).is_(None),
            col(Post.shared_from_id).in_(posts._live_originals()),
        ),
    )

"""Lucky draw use cases: create, commit (freeze + commitment), reveal, re-draw, complete."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select

from hearth_events.checkin import access
from hearth_events.checkin.service import checked_in_registrations
from hearth_events.draws import verify
from hearth_events.draws.events import DrawCommitted, DrawCompleted, DrawnWinner, DrawRevealed
from hearth_events.draws.models import (
    Draw,
    DrawCreate,
    DrawProof,
    DrawPublic,
    DrawState,
    DrawUpdate,
    DrawWinner,
    PrizeCreate,
    PrizePublic,
    WinnerPublic,
)
from hearth_events.draws.models import Prize as PrizeRow
from hearth_events.models import (
    Activity,
    ActivityState,
    CommunityMembership,
    Registration,
    RegistrationStatus,
)
from servicekit.db import affected_rows
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.problems import conflict, not_found
from servicekit.types import as_utc

# A draw is held around the day: not on a draft or a cancelled activity.
DRAW_STATES = frozenset(
    {
        ActivityState.published,
        ActivityState.registration_closed,
        ActivityState.ongoing,
        ActivityState.ended,
    }
)


async def create_draw(
    uow: UnitOfWork, *, activity_id: uuid.UUID, data: DrawCreate, actor: Principal
) -> DrawPublic:
    """A new, open draw with its prizes (organisers)."""
    activity = await access.activity_of(uow.session, activity_id)
    await access.require_organiser(uow.session, activity, actor)
    _require_draw_state(activity)
    draw = Draw(
        activity_id=activity_id,
        community_id=activity.community_id,
        title=data.title,
        checked_in_only=data.checked_in_only,
        tiers=data.tiers,
        excluded_user_ids=sorted({str(u) for u in data.excluded_user_ids}),
        allow_multiple_wins=data.allow_multiple_wins,
        created_by=actor.subject,
    )
    uow.session.add(draw)
    await uow.session.flush()
    _add_prizes(uow, draw, data.prizes)
    await uow.commit()
    return await public(uow, draw)


async def update_draw(
    uow: UnitOfWork, *, draw_id: uuid.UUID, data: DrawUpdate, actor: Principal
) -> DrawPublic:
    """Change an open draw's rules or prizes; once committed the list is fixed (409)."""
    draw, _ = await _draw_for_organiser(uow, draw_id, actor)
    await _claim(uow, draw_id, DrawState.open, DrawState.open)
    draw = await _draw(uow, draw_id, fresh=True)
    fields = data.model_dump(exclude_unset=True, exclude={"prizes", "excluded_user_ids"})
    for name, value in fields.items():
        if value is not None or name == "tiers":
            setattr(draw, name, value)
    if data.excluded_user_ids is not None:
        draw.excluded_user_ids = sorted({str(u) for u in data.excluded_user_ids})
    uow.session.add(draw)
    if data.prizes is not None:
        for prize in await _prizes(uow, draw_id):
            await uow.session.delete(prize)
        await uow.session.flush()
        _add_prizes(uow, draw, data.prizes)
    await uow.commit()
    return await public(uow, draw)


async def commit_draw(uow: UnitOfWork, *, draw_id: uuid.UUID, actor: Principal) -> DrawPublic:
    """Freeze the eligible list and commit to a fresh secret seed; both are published now."""
    draw, activity = await _draw_for_organiser(uow, draw_id, actor)
    _require_draw_state(activity)
    await _claim(uow, draw_id, DrawState.open, DrawState.open)  # lock: no edit slips in
    draw = await _draw(uow, draw_id, fresh=True)
    eligible = await _eligible(uow, draw, activity)
    seed = secrets.token_bytes(32)
    now = utcnow()
    draw.eligible = eligible
    draw.eligible_sha256 = verify.list_digest(eligible)
    draw.seed = seed.hex()
    draw.commitment = verify.commitment_of(seed)
    draw.state = DrawState.committed
    draw.committed_at = now
    uow.session.add(draw)
    await uow.record(
        DrawCommitted(
            draw_id=draw.id,
            activity_id=draw.activity_id,
            community_id=draw.community_id,
            eligible_count=len(eligible),
            eligible_sha256=draw.eligible_sha256,
            commitment=draw.commitment,
            committed_by=actor.subject,
            committed_at=now,
        ),
        subject=str(draw.activity_id),
    )
    await uow.commit()
    return await public(uow, draw)


async def reveal_draw(uow: UnitOfWork, *, draw_id: uuid.UUID, actor: Principal) -> DrawPublic:
    """Publish the seed; the winners follow from it and the frozen list (draws/verify.py)."""
    draw, _ = await _draw_for_organiser(uow, draw_id, actor)
    await _claim(uow, draw_id, DrawState.committed, DrawState.revealed)
    draw = await _draw(uow, draw_id, fresh=True)
    now = utcnow()
    picks = await _replay(uow, draw)
    owners = await _owners(uow, draw)
    for ordinal, pick in enumerate(picks):
        uow.session.add(_winner_row(draw, ordinal, pick, owners))
    draw.revealed_at = now
    uow.session.add(draw)
    await uow.record(
        DrawRevealed(
            draw_id=draw.id,
            activity_id=draw.activity_id,
            community_id=draw.community_id,
            seed=draw.seed or "",
            winners=[_drawn(p, owners) for p in picks],
            revealed_at=now,
        ),
        subject=str(draw.activity_id),
    )
    await uow.commit()
    return await public(uow, draw)


async def redraw(
    uow: UnitOfWork, *, draw_id: uuid.UUID, registration_id: uuid.UUID, actor: Principal
) -> DrawPublic:
    """Replace an absent winner: each prize's stream continues (recorded, verifiable)."""
    draw, _ = await _draw_for_organiser(uow, draw_id, actor)
    await _claim(uow, draw_id, DrawState.revealed, DrawState.revealed)
    draw = await _draw(uow, draw_id, fresh=True)
    winners = await _winners(uow, draw_id)
    # The absent person loses every win they hold; each prize is re-drawn once for them.
    gone = [w for w in winners if w.registration_id == registration_id and not w.absent]
    if not gone:
        raise conflict("not-a-present-winner", "that registration is not a present winner")
    for win in gone:
        win.absent = True
        uow.session.add(win)
    draw.redraws = [
        *draw.redraws,
        *(
            {"prize_id": str(win.prize_id), "absent_registration_id": str(registration_id)}
            for win in gone
        ),
    ]
    uow.session.add(draw)
    picks = await _replay(uow, draw)
    owners = await _owners(uow, draw)
    for ordinal in range(len(winners), len(picks)):  # the re-draw's pick (none: pool empty)
        uow.session.add(_winner_row(draw, ordinal, picks[ordinal], owners))
    await uow.commit()
    return await public(uow, draw)


async def complete_draw(uow: UnitOfWork, *, draw_id: uuid.UUID, actor: Principal) -> DrawPublic:
    """Close a revealed draw: no more re-draws; the final winners are announced."""
    draw, _ = await _draw_for_organiser(uow, draw_id, actor)
    await _claim(uow, draw_id, DrawState.revealed, DrawState.completed)
    draw = await _draw(uow, draw_id, fresh=True)
    now = utcnow()
    draw.completed_at = now
    uow.session.add(draw)
    final = [w for w in await _winners(uow, draw_id) if not w.absent]
    await uow.record(
        DrawCompleted(
            draw_id=draw.id,
            activity_id=draw.activity_id,
            community_id=draw.community_id,
            winners=[
                DrawnWinner(
                    prize_id=w.prize_id, registration_id=w.registration_id, user_id=w.user_id
                )
                for w in final
            ],
            completed_at=now,
        ),
        subject=str(draw.activity_id),
    )
    await uow.commit()
    return await public(uow, draw)


async def get_draw(uow: UnitOfWork, *, draw_id: uuid.UUID, actor: Principal) -> DrawPublic:
    """One draw (staff and the community's members)."""
    draw = await _draw(uow, draw_id)
    activity = await access.activity_of(uow.session, draw.activity_id)
    await access.require_member(uow.session, activity, actor)
    return await public(uow, draw)


async def list_draws(
    uow: UnitOfWork, *, activity_id: uuid.UUID, actor: Principal
) -> list[DrawPublic]:
    """An activity's draws, oldest first (staff and the community's members)."""
    activity = await access.activity_of(uow.session, activity_id)
    await access.require_member(uow.session, activity, actor)
    stmt = select(Draw).where(Draw.activity_id == activity_id).order_by(col(Draw.id)).limit(100)
    return [await public(uow, d) for d in (await uow.session.exec(stmt)).all()]


async def proof(uow: UnitOfWork, *, draw_id: uuid.UUID, actor: Principal) -> DrawProof:
    """The document a participant reruns the draw from (seed empty until the reveal)."""
    draw = await _draw(uow, draw_id)
    activity = await access.activity_of(uow.session, draw.activity_id)
    await access.require_member(uow.session, activity, actor)
    revealed = draw.state in (DrawState.revealed, DrawState.completed)
    return DrawProof(
        algorithm=verify.ALGORITHM,
        draw_id=draw.id,
        activity_id=draw.activity_id,
        state=draw.state,
        commitment=draw.commitment,
        eligible_sha256=draw.eligible_sha256,
        eligible=draw.eligible,
        seed=draw.seed if revealed else None,
        allow_multiple_wins=draw.allow_multiple_wins,
        prizes=[
            {"id": str(p.id), "name": p.name, "count": p.count} for p in await _prizes(uow, draw_id)
        ],
        redraws=list(draw.redraws),
        winners=[
            {
                "prize_id": str(w.prize_id),
                "registration_id": str(w.registration_id),
                "counter": w.counter,
                "replaces": str(w.replaces) if w.replaces else None,
            }
            for w in await _winners(uow, draw_id)
        ],
    )


async def public(uow: UnitOfWork, draw: Draw) -> DrawPublic:
    """The draw as clients see it."""
    revealed = draw.state in (DrawState.revealed, DrawState.completed)
    return DrawPublic(
        id=draw.id,
        activity_id=draw.activity_id,
        community_id=draw.community_id,
        title=draw.title,
        state=draw.state,
        checked_in_only=draw.checked_in_only,
        tiers=draw.tiers,
        excluded_user_ids=[uuid.UUID(u) for u in draw.excluded_user_ids],
        allow_multiple_wins=draw.allow_multiple_wins,
        prizes=[
            PrizePublic.model_validate(p, from_attributes=True) for p in await _prizes(uow, draw.id)
        ],
        eligible_count=len(draw.eligible) if draw.eligible is not None else None,
        eligible_sha256=draw.eligible_sha256,
        commitment=draw.commitment,
        seed=draw.seed if revealed else None,
        winners=[
            WinnerPublic.model_validate(w, from_attributes=True)
            for w in await _winners(uow, draw.id)
        ],
        created_at=as_utc(draw.created_at),
        committed_at=as_utc(draw.committed_at) if draw.committed_at else None,
        revealed_at=as_utc(draw.revealed_at) if draw.revealed_at else None,
        completed_at=as_utc(draw.completed_at) if draw.completed_at else None,
    )


def _require_draw_state(activity: Activity) -> None:
    if ActivityState(activity.state) not in DRAW_STATES:
        raise conflict("draw-not-allowed", f"no draw on an activity that is {activity.state}")


def _add_prizes(uow: UnitOfWork, draw: Draw, prizes: list[PrizeCreate]) -> None:
    for position, prize in enumerate(prizes):
        uow.session.add(
            PrizeRow(draw_id=draw.id, name=prize.name, count=prize.count, position=position)
        )


async def _claim(uow: UnitOfWork, draw_id: uuid.UUID, expected: DrawState, to: DrawState) -> None:
    """Move the draw from `expected` to `to` (its row lock held till commit), else 409."""
    moved = await uow.session.execute(
        update(Draw)
        .where(col(Draw.id) == draw_id, col(Draw.state) == expected)
        .values(state=to)
        .execution_options(synchronize_session=False)
    )
    if affected_rows(moved) == 0:
        current = await _draw(uow, draw_id, fresh=True)
        slug = "draw-committed" if expected == DrawState.open else "invalid-draw-state"
        raise conflict(
            slug,
            f"the draw is {current.state}: this needs it {expected}",
            state=str(current.state),
        )


async def _eligible(uow: UnitOfWork, draw: Draw, activity: Activity) -> list[str]:
    """Sorted registration ids that may win, by the draw's rules, as of now."""
    stmt = select(Registration, CommunityMembership).join(
        CommunityMembership,
        (col(CommunityMembership.community_id) == col(Registration.community_id))
        & (col(CommunityMembership.user_id) == col(Registration.user_id)),
    )
    stmt = stmt.where(
        Registration.activity_id == activity.id,
        col(Registration.status) == RegistrationStatus.confirmed,
        col(CommunityMembership.status) == access.ACTIVE,
    )
    checked = await checked_in_registrations(uow, activity_id=activity.id)
    excluded = set(draw.excluded_user_ids)
    out = []
    for registration, member in (await uow.session.exec(stmt)).all():
        if draw.checked_in_only and registration.id not in checked:
            continue
        if draw.tiers is not None and member.tier not in draw.tiers:
            continue
        if str(registration.user_id) in excluded:
            continue
        out.append(str(registration.id))
    return sorted(out)


async def _replay(uow: UnitOfWork, draw: Draw) -> list[dict[str, Any]]:
    """Every pick from the seed, the frozen list and the recorded re-draws (verify.run)."""
    return verify.run(
        seed=bytes.fromhex(draw.seed or ""),
        eligible=draw.eligible or [],
        prizes=[{"id": str(p.id), "count": p.count} for p in await _prizes(uow, draw.id)],
        allow_multiple_wins=draw.allow_multiple_wins,
        redraws=draw.redraws,
    )


async def _owners(uow: UnitOfWork, draw: Draw) -> dict[str, uuid.UUID]:
    ids = [uuid.UUID(r) for r in draw.eligible or []]
    if not ids:
        return {}
    stmt = select(Registration.id, Registration.user_id).where(col(Registration.id).in_(ids))
    return {str(rid): uid for rid, uid in (await uow.session.exec(stmt)).all()}


def _winner_row(
    draw: Draw, ordinal: int, pick: dict[str, Any], owners: dict[str, uuid.UUID]
) -> DrawWinner:
    return DrawWinner(
        draw_id=draw.id,
        prize_id=uuid.UUID(pick["prize_id"]),
        registration_id=uuid.UUID(pick["registration_id"]),
        user_id=owners[pick["registration_id"]],
        ordinal=ordinal,
        counter=pick["counter"],
        replaces=uuid.UUID(pick["replaces"]) if pick["replaces"] else None,
    )


def _drawn(pick: dict[str, Any], owners: dict[str, uuid.UUID]) -> DrawnWinner:
    return DrawnWinner(
        prize_id=uuid.UUID(pick["prize_id"]),
        registration_id=uuid.UUID(pick["registration_id"]),
        user_id=owners[pick["registration_id"]],
    )


async def _draw(uow: UnitOfWork, draw_id: uuid.UUID, *, fresh: bool = False) -> Draw:
    draw = await uow.session.get(Draw, draw_id, populate_existing=fresh)
    if draw is None:
        raise not_found("draw", draw_id)
    return draw


async def _draw_for_organiser(
    uow: UnitOfWork, draw_id: uuid.UUID, actor: Principal
) -> tuple[Draw, Activity]:
    draw = await _draw(uow, draw_id)
    activity = await access.activity_of(uow.session, draw.activity_id)
    await access.require_organiser(uow.session, activity, actor)
    return draw, activity


async def _prizes(uow: UnitOfWork, draw_id: uuid.UUID) -> list[PrizeRow]:
    stmt = select(PrizeRow).where(PrizeRow.draw_id == draw_id).order_by(col(PrizeRow.position))
    return list((await uow.session.exec(stmt)).all())


async def _winners(uow: UnitOfWork, draw_id: uuid.UUID) -> list[DrawWinner]:
    stmt = (
        select(DrawWinner)
        .where(DrawWinner.draw_id == draw_id)
        .order_by(col(DrawWinner.ordinal))
        .execution_options(populate_existing=True)
    )
    return list((await uow.session.exec(stmt)).all())

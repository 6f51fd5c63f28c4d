"""Routes every service has: probes, and operator views of the outbox and dead letters."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy import and_, or_, select

from servicekit.consumer import replay_dead_letter
from servicekit.deps import RuntimeDep
from servicekit.identity import StaffDep
from servicekit.migrations import current_revisions
from servicekit.pagination import Page, PageParams, cursor_key, make_page, page_params
from servicekit.problems import Problem, not_found
from servicekit.relay import OutboxRelay

probes = APIRouter(tags=["probes"])
admin = APIRouter(prefix="/admin", tags=["operations"])


@probes.get("/healthz")
async def healthz() -> dict[str, str]:
    """Alive: the process answers."""
    return {"status": "ok"}


@probes.get("/readyz")
async def readyz(runtime: RuntimeDep) -> dict[str, Any]:
    """Ready: the database answers at this release's schema and NATS is connected."""
    checks = {"database": "ok", "nats": "ok" if runtime.nats.connected else "down"}
    try:
        if runtime.revisions is None:
            await runtime.db.ping()
        else:  # reading the revisions is the database ping too
            current = await current_revisions(runtime.db.engine)
            checks["schema"] = runtime.revisions.compare(current)
    except Exception:
        checks["database"] = "down"
        if runtime.revisions is not None:
            checks["schema"] = "unknown"
    if checks.get("schema") == "behind":
        context = runtime.definition.context
        detail = f"the database schema is behind this release: run `hearth-{context} migrate`"
        raise Problem(503, "not-ready", "Not ready", detail, checks=checks)
    # `ahead` is ready: a newer release's backward-compatible migrations ran before its rollout.
    if any(v not in ("ok", "ahead") for v in checks.values()):
        raise Problem(503, "not-ready", "Not ready", "a dependency is down", checks=checks)
    return {"status": "ok", "checks": checks}


class OutboxStatus(BaseModel):
    """The relay's backlog."""

    pending: int
    oldest_pending_age_seconds: float | None
    published_since_start: int


async def read_outbox_status(relay: OutboxRelay) -> OutboxStatus:
    """A relay's backlog and what it published (every service's /admin/outbox, the gateway's)."""
    pending, age = await relay.backlog()
    return OutboxStatus(
        pending=pending,
        oldest_pending_age_seconds=age,
        published_since_start=relay.published_total,
    )


@admin.get("/outbox")
async def outbox_status(runtime: RuntimeDep, _: StaffDep) -> OutboxStatus:
    """How many events wait to be published, and for how long."""
    return await read_outbox_status(runtime.relay)


class DeadLetterPublic(BaseModel):
    """A message a consumer gave up on, kept for inspection and replay."""

    id: uuid.UUID
    consumer: str
    event_id: uuid.UUID | None
    event_type: str | None
    nats_subject: str
    error: str
    deliveries: int
    created_at: datetime
    replayed_at: datetime | None
    headers: dict[str, str]
    body: str


@admin.get("/dead-letters")
async def list_dead_letters(
    runtime: RuntimeDep, _: StaffDep, page: Annotated[PageParams, Depends(page_params)]
) -> Page[DeadLetterPublic]:
    """Dead letters, newest first."""
    t = runtime.tables.dead_letters
    stmt = select(t).order_by(t.c.created_at.desc(), t.c.id.desc()).limit(page.limit + 1)
    if page.after:
        at, ident = cursor_key(page.after, datetime, uuid.UUID)
        stmt = stmt.where(or_(t.c.created_at < at, and_(t.c.created_at == at, t.c.id < ident)))
    async with runtime.db.session() as session:
        rows = [DeadLetterPublic.model_validate(r._mapping) for r in await session.execute(stmt)]
    return make_page(rows, page.limit, lambda r: [r.created_at.isoformat(), str(r.id)])


@admin.post("/dead-letters/{dead_letter_id}/replay")
async def replay(dead_letter_id: uuid.UUID, runtime: RuntimeDep, _: StaffDep) -> dict[str, str]:
    """Run a dead letter through its consumer again (after the cause is fixed)."""
    async with runtime.db.session() as session:
        row = (
            await session.execute(
                select(runtime.tables.dead_letters.c.consumer).where(
                    runtime.tables.dead_letters.c.id == dead_letter_id
                )
            )
        ).first()
    if row is None:
        raise not_found("dead letter", dead_letter_id)
    consumer = next((c for c in runtime.definition.consumers if c.name == row.consumer), None)
    if consumer is None:
        raise Problem(409, "consumer-gone", "Conflict", f"no consumer named {row.consumer}")
    try:
        await replay_dead_letter(consumer, runtime.db, runtime.tables, dead_letter_id)
    except Exception as exc:
        raise Problem(409, "replay-failed", "Replay failed", str(exc)[:500]) from exc
    return {"status": "replayed"}

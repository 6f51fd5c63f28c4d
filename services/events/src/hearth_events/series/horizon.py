"""The rolling horizon: a scheduler step that materializes each series' next occurrences.

A series is created with occurrences up to `horizon_days` after its first start; as time
passes, each pass creates the occurrences that have come within `horizon_days` of now. The
step is idempotent across replicas: a series is claimed by one conditional UPDATE of its
`materialized_until` (from the value this pass read to the new one), in the same transaction
as the new activities. A replica that read the same old value finds no row to update (on
PostgreSQL the UPDATE waits for the winner's row lock, then re-checks its WHERE clause on the
new version; SQLite has a single writer) and creates nothing.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select

from hearth_events.models import ActivityCreate
from hearth_events.series.models import ActivitySeries
from hearth_events.series.service import _shifted, starts_between
from hearth_events.service import publish_activity
from servicekit.db import affected_rows
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.problems import Problem
from servicekit.runtime import ServiceRuntime
from servicekit.types import as_utc

log = logging.getLogger(__name__)


async def extend_series(runtime: ServiceRuntime, *, now: datetime) -> int:
    """Create every series' occurrences now within its horizon; how many were created."""
    async with runtime.db.session() as session:
        ids = list((await session.exec(select(ActivitySeries.id))).all())
    created = 0
    for series_id in ids:
        try:
            created += await _extend_one(runtime, series_id, now=now)
        except Problem as exc:  # e.g. a host left the community: retried on the next pass
            log.warning("series %s not extended: %s", series_id, exc.detail)
    return created


async def _extend_one(runtime: ServiceRuntime, series_id: uuid.UUID, *, now: datetime) -> int:
    async with runtime.db.session() as session:
        uow = UnitOfWork(session, runtime)
        series = await session.get(ActivitySeries, series_id)
        if series is None:
            return 0
        first = ActivityCreate.model_validate(series.template)
        horizon = timedelta(days=series.horizon_days)
        old = series.materialized_until
        reached_before = as_utc(old) if old is not None else as_utc(first.starts_at) + horizon
        until = as_utc(now) + horizon
        if until <= reached_before:
            return 0
        # Never materialize an occurrence that has already started (a long outage).
        after = max(reached_before, as_utc(now))
        exdates = [datetime.fromisoformat(d) for d in series.exdates]
        starts, reached = starts_between(
            series.rrule, first.starts_at, series.timezone, exdates, after=after, until=until
        )
        claimed = await session.execute(
            update(ActivitySeries)
            .where(
                col(ActivitySeries.id) == series_id,
                col(ActivitySeries.materialized_until).is_(None)
                if old is None
                else col(ActivitySeries.materialized_until) == old,
            )
            .values(materialized_until=reached)
            .execution_options(synchronize_session=False)
        )
        if affected_rows(claimed) != 1:
            await session.rollback()  # another replica extended it first
            return 0
        # The series' creator decided these occurrences when creating it; the scheduler acts
        # on that decision (as staff, so a creator who has since lost a role does not stop it).
        actor = Principal(
            subject=series.created_by,
            kind="service",
            name="events-series-horizon",
            roles=frozenset({"operator"}),
        )
        for start in starts:
            await publish_activity(
                uow=uow,
                data=_shifted(first, start),
                actor=actor,
                series_id=series.id,
                commit=False,
            )
        await uow.commit()
        return len(starts)

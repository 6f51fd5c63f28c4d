"""Sentiment's use cases: count a scored item into its community's bucket, detect a spike
against the community's baseline and open one alert for it; read the overview; acknowledge
and resolve alerts.

Spike detection (per community, buckets of `sentiment_bucket_seconds`):

- the baseline is an exponentially weighted mean μ and variance σ² of the negative share of the
  community's past buckets (weight alpha = `sentiment_ewma_alpha`), folded in as buckets close;
  a bucket that raised an alert is left out, so one crisis does not teach the baseline that
  crises are normal;
  before any bucket closed, a prior of μ = 0.15, σ² = 0.01 stands in;
- the current bucket's share p of n items is a spike when n ≥ `sentiment_min_volume`,
  p ≥ `sentiment_min_share` and z = (p - μ) / sqrt(σ² + μ(1 - μ)/n) ≥ `sentiment_z_threshold`;
  the binomial term keeps a community with a very steady baseline from alerting on noise;
- a spike opens an alert only when the community has no unresolved alert, and not again in a
  bucket whose alert was resolved: one alert per spike until it is resolved. A partial unique
  index (one unresolved alert per community) settles races between replicas.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_moderation.sentiment.events import (
    SentimentAlertAcknowledged,
    SentimentAlertOpened,
    SentimentAlertResolved,
)
from hearth_moderation.sentiment.models import (
    AlertStatus,
    BucketPublic,
    SentimentAlert,
    SentimentAlertPublic,
    SentimentBaseline,
    SentimentBucket,
    SentimentOverview,
    SentimentScore,
)
from hearth_moderation.sentiment.scoring import Score
from servicekit.db import affected_rows, upsert_insert
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.problems import Problem, not_found

PRIOR_MEAN = 0.15
PRIOR_VARIANCE = 0.01
_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def bucket_of(at: datetime, seconds: int) -> datetime:
    """The start of the bucket `at` falls in."""
    offset = (at - _EPOCH).total_seconds()
    return _EPOCH + timedelta(seconds=math.floor(offset / seconds) * seconds)


def spike_z(*, share: float, total: int, mean: float, variance: float) -> float:
    """How many standard deviations a bucket's share is above the baseline."""
    spread = variance + mean * (1 - mean) / max(total, 1)
    return (share - mean) / math.sqrt(max(spread, 1e-9))


async def record_score(
    uow: UnitOfWork,
    *,
    item_type: str,
    item_id: uuid.UUID,
    community_id: uuid.UUID,
    author_id: uuid.UUID | None,
    at: datetime,
    score: Score,
    bucket_seconds: int,
    alpha: float,
    z_threshold: float,
    min_volume: int,
    min_share: float,
) -> SentimentAlert | None:
    """Count an item's score once into its bucket and open an alert if it made a spike."""
    session = uow.session
    bucket = bucket_of(at, bucket_seconds)
    inserted = await session.execute(
        upsert_insert(session, SentimentScore.__table__)  # type: ignore[attr-defined]
        .values(
            item_type=item_type,
            item_id=item_id,
            community_id=community_id,
            author_id=author_id,
            language=score.language,
            value=score.value,
            negative=score.negative,
            bucket_start=bucket,
            scored_at=utcnow(),
        )
        .on_conflict_do_nothing()
    )
    if affected_rows(inserted) != 1:
        return None  # scored before (a redelivery, or the same item announced again)
    # The baseline row is the community's lock: one evaluation at a time per community.
    baseline = await _locked_baseline(session, community_id)
    buckets = SentimentBucket.__table__  # type: ignore[attr-defined]
    stmt = upsert_insert(session, buckets).values(
        community_id=community_id, bucket_start=bucket, total=1, negative=int(score.negative)
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[buckets.c.community_id, buckets.c.bucket_start],
            set_={
                "total": buckets.c.total + 1,
                "negative": buckets.c.negative + int(score.negative),
            },
        )
    )
    await _fold(session, baseline, until=bucket, alpha=alpha)
    if baseline.folded_until is not None and bucket < baseline.folded_until:
        return None  # a late item of a closed bucket: counted, not evaluated
    current = await session.get(SentimentBucket, (community_id, bucket), populate_existing=True)
    assert current is not None
    share = current.negative / current.total
    z = spike_z(share=share, total=current.total, mean=baseline.mean, variance=baseline.variance)
    if current.total < min_volume or share < min_share or z < z_threshold:
        return None
    return await _open_alert(
        uow, community_id=community_id, bucket=bucket, current=current, baseline=baseline, z=z
    )


async def _locked_baseline(session: AsyncSession, community_id: uuid.UUID) -> SentimentBaseline:
    table = SentimentBaseline.__table__  # type: ignore[attr-defined]
    await session.execute(
        upsert_insert(session, table)
        .values(community_id=community_id, mean=PRIOR_MEAN, variance=PRIOR_VARIANCE, buckets=0)
        .on_conflict_do_nothing()
    )
    found = (
        await session.exec(
            select(SentimentBaseline)
            .where(SentimentBaseline.community_id == community_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one()
    return found


async def _fold(
    session: AsyncSession, baseline: SentimentBaseline, *, until: datetime, alpha: float
) -> None:
    """Fold every closed bucket before `until` not folded yet into the EWMA mean and variance."""
    if baseline.folded_until is not None and baseline.folded_until >= until:
        return
    stmt = select(SentimentBucket).where(
        SentimentBucket.community_id == baseline.community_id,
        col(SentimentBucket.bucket_start) < until,
    )
    if baseline.folded_until is not None:
        stmt = stmt.where(col(SentimentBucket.bucket_start) >= baseline.folded_until)
    closed = (await session.exec(stmt.order_by(col(SentimentBucket.bucket_start)))).all()
    alerted = set(
        (
            await session.exec(
                select(SentimentAlert.bucket_start).where(
                    SentimentAlert.community_id == baseline.community_id
                )
            )
        ).all()
    )
    mean, variance = baseline.mean, baseline.variance
    for bucket in closed:
        if bucket.total <= 0 or bucket.bucket_start in alerted:
            continue  # a bucket that raised an alert is an anomaly, not the community's normal
        share = bucket.negative / bucket.total
        if baseline.buckets == 0:
            mean, variance = share, PRIOR_VARIANCE  # the first bucket replaces the prior mean
        else:
            delta = share - mean
            mean += alpha * delta
            variance = (1 - alpha) * (variance + alpha * delta * delta)
        baseline.buckets += 1
    baseline.mean, baseline.variance, baseline.folded_until = mean, variance, until
    session.add(baseline)


async def _open_alert(
    uow: UnitOfWork,
    *,
    community_id: uuid.UUID,
    bucket: datetime,
    current: SentimentBucket,
    baseline: SentimentBaseline,
    z: float,
) -> SentimentAlert | None:
    session = uow.session
    latest = (
        await session.exec(
            select(SentimentAlert)
            .where(SentimentAlert.community_id == community_id)
            .order_by(col(SentimentAlert.id).desc())
            .limit(1)
        )
    ).first()
    if latest is not None and (
        latest.status != AlertStatus.resolved or latest.bucket_start >= bucket
    ):
        return None  # this spike has its alert (unresolved, or resolved during this bucket)
    alert = SentimentAlert(
        community_id=community_id,
        bucket_start=bucket,
        total=current.total,
        negative=current.negative,
        share=current.negative / current.total,
        baseline_mean=baseline.mean,
        baseline_stddev=math.sqrt(baseline.variance),
        z=z,
    )
    # A replica racing to open the same alert fails on the partial unique index; its delivery
    # is retried and finds this one.
    session.add(alert)
    await uow.record(
        SentimentAlertOpened(
            alert_id=alert.id,
            community_id=community_id,
            bucket_start=bucket,
            total=alert.total,
            negative=alert.negative,
            share=alert.share,
            baseline_mean=alert.baseline_mean,
            baseline_stddev=alert.baseline_stddev,
            z=z,
            opened_at=alert.opened_at,
        ),
        subject=str(community_id),
    )
    return alert


def public(alert: SentimentAlert) -> SentimentAlertPublic:
    """An alert as the community's team sees it."""
    return SentimentAlertPublic.model_validate(alert, from_attributes=True)


async def overview(
    session: AsyncSession, *, community_id: uuid.UUID, bucket_seconds: int, window: int
) -> SentimentOverview:
    """The community's last `window` buckets, their totals, its baseline and unresolved alert."""
    now_bucket = bucket_of(utcnow(), bucket_seconds)
    since = now_bucket - timedelta(seconds=bucket_seconds * (window - 1))
    rows = (
        await session.exec(
            select(SentimentBucket)
            .where(
                SentimentBucket.community_id == community_id,
                col(SentimentBucket.bucket_start) >= since,
            )
            .order_by(col(SentimentBucket.bucket_start))
        )
    ).all()
    buckets = [
        BucketPublic(
            bucket_start=b.bucket_start,
            total=b.total,
            negative=b.negative,
            share=b.negative / b.total if b.total else 0.0,
        )
        for b in rows
    ]
    total = sum(b.total for b in buckets)
    negative = sum(b.negative for b in buckets)
    baseline = await session.get(SentimentBaseline, community_id)
    alert = (
        await session.exec(
            select(SentimentAlert).where(
                SentimentAlert.community_id == community_id,
                SentimentAlert.status != AlertStatus.resolved,
            )
        )
    ).first()
    return SentimentOverview(
        community_id=community_id,
        bucket_seconds=bucket_seconds,
        total=total,
        negative=negative,
        share=negative / total if total else 0.0,
        buckets=buckets,
        baseline_mean=baseline.mean if baseline else PRIOR_MEAN,
        baseline_stddev=math.sqrt(baseline.variance if baseline else PRIOR_VARIANCE),
        baseline_buckets=baseline.buckets if baseline else 0,
        alert=public(alert) if alert else None,
    )


async def list_alerts(
    session: AsyncSession,
    *,
    community_id: uuid.UUID,
    status: AlertStatus | None,
    limit: int,
    after: uuid.UUID | None,
) -> list[SentimentAlert]:
    """A community's alerts, newest first."""
    stmt = select(SentimentAlert).where(SentimentAlert.community_id == community_id)
    if status is not None:
        stmt = stmt.where(SentimentAlert.status == status)
    if after is not None:
        stmt = stmt.where(col(SentimentAlert.id) < after)
    return list(
        (await session.exec(stmt.order_by(col(SentimentAlert.id).desc()).limit(limit + 1))).all()
    )


async def _alert(uow: UnitOfWork, community_id: uuid.UUID, alert_id: uuid.UUID) -> SentimentAlert:
    alert = await uow.session.get(SentimentAlert, alert_id, with_for_update=True)
    if alert is None or alert.community_id != community_id:
        raise not_found("alert", alert_id)
    return alert


async def acknowledge(
    uow: UnitOfWork,
    *,
    community_id: uuid.UUID,
    alert_id: uuid.UUID,
    actor: Principal,
    owner_id: uuid.UUID | None,
    note: str | None,
) -> SentimentAlert:
    """Take an open alert: its owner is `owner_id` or the actor (409 unless it is open)."""
    alert = await _alert(uow, community_id, alert_id)
    if alert.status != AlertStatus.open:
        raise Problem(409, "alert-not-open", "Alert not open", f"the alert is {alert.status}")
    now = utcnow()
    alert.status = AlertStatus.acknowledged
    alert.owner_id = owner_id or actor.subject
    alert.acknowledged_at, alert.acknowledged_by = now, actor.subject
    alert.note = note or alert.note
    uow.session.add(alert)
    await uow.record(
        SentimentAlertAcknowledged(
            alert_id=alert.id,
            community_id=community_id,
            owner_id=alert.owner_id,
            actor_id=actor.subject,
            acknowledged_at=now,
        ),
        subject=str(community_id),
    )
    await uow.commit()
    return alert


async def resolve(
    uow: UnitOfWork,
    *,
    community_id: uuid.UUID,
    alert_id: uuid.UUID,
    actor: Principal,
    note: str | None,
) -> SentimentAlert:
    """Resolve an acknowledged alert (409 otherwise); a later spike opens a new one."""
    alert = await _alert(uow, community_id, alert_id)
    if alert.status != AlertStatus.acknowledged:
        raise Problem(
            409,
            "alert-not-acknowledged",
            "Alert not acknowledged",
            f"the alert is {alert.status}: acknowledge it (and own it) before resolving",
        )
    now = utcnow()
    alert.status = AlertStatus.resolved
    alert.resolved_at, alert.resolved_by = now, actor.subject
    alert.note = note or alert.note
    uow.session.add(alert)
    await uow.record(
        SentimentAlertResolved(
            alert_id=alert.id,
            community_id=community_id,
            owner_id=alert.owner_id,
            actor_id=actor.subject,
            note=note,
            resolved_at=now,
        ),
        subject=str(community_id),
    )
    await uow.commit()
    return alert

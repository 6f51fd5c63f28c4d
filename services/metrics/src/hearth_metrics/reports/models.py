"""Stored reports, the claim row that makes a scheduled report exactly-once, and API models."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from sqlalchemy import Column, Index, LargeBinary, Text
from sqlmodel import Field

from hearth_metrics.models import MetricsModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import UtcDateTime, UtcDatetime

PeriodName = Literal["week", "month", "quarter"]
FORMATS = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "svg": "image/svg+xml",
    "png": "image/png",
}


class Report(MetricsModel, table=True):
    """One generated report with its four renderings."""

    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_community_start", "community_id", "period_start"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID
    period: str = Field(max_length=10)
    period_start: date
    period_end: date
    trigger: str = Field(max_length=20)
    time_zone: str = Field(max_length=64)
    generated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    body: str = Field(sa_column=Column(Text, nullable=False))
    csv: str = Field(sa_column=Column(Text, nullable=False))
    svg: str = Field(sa_column=Column(Text, nullable=False))
    png: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ReportClaim(MetricsModel, table=True):
    """The scheduled report of one community and period: inserted once, by one replica."""

    __tablename__ = "report_claims"

    community_id: uuid.UUID = Field(primary_key=True)
    period: str = Field(primary_key=True, max_length=10)
    period_start: date = Field(primary_key=True)
    report_id: uuid.UUID
    claimed_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ReportCreate(MetricsModel):
    """Body of POST /communities/{id}/reports: the period, and its start (default: current)."""

    period: PeriodName
    start: date | None = None


class ReportPublic(MetricsModel):
    """A report's description and where to download each format."""

    id: uuid.UUID
    community_id: uuid.UUID
    period: str
    period_start: date
    period_end: date
    trigger: str
    time_zone: str
    generated_at: UtcDatetime
    links: dict[str, str]

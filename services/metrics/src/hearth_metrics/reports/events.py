"""Events the reports package publishes."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from servicekit.events import Event, event_type


@event_type("metrics.report.published.v1")
class ReportPublished(Event):
    """A community report is ready: `url` downloads it (JSON; add /csv, /svg or /png)."""

    report_id: uuid.UUID
    community_id: uuid.UUID
    period: Literal["week", "month", "quarter"]
    period_start: date
    period_end: date
    trigger: Literal["scheduled", "on_demand"]
    url: str
    published_at: datetime

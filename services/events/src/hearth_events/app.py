"""The events service definition and app factory."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from hearth_events import models, service
from hearth_events.calendars.routes import router as calendars_router
from hearth_events.checkin.routes import router as checkin_router
from hearth_events.checkin.service import record_no_shows
from hearth_events.consumers import memberships
from hearth_events.draws.routes import router as draws_router
from hearth_events.feedback.routes import router as feedback_router
from hearth_events.questions.moderation import screening as question_screening
from hearth_events.questions.routes import router as questions_router
from hearth_events.reports.activity import community_activity
from hearth_events.reports.consumers import conversions
from hearth_events.reports.routes import router as reports_router
from hearth_events.reports.service import summarized_event
from hearth_events.routes import router
from hearth_events.scheduler import reminder_scheduler, series_scheduler
from hearth_events.series.routes import router as series_router
from hearth_events.service import use_summarizer
from hearth_events.settings import EventsSettings
from servicekit.app import create_service_app
from servicekit.runtime import ServiceDefinition

# Seam: ending an activity settles its no-shows in the same transaction (checkin builds on
# activities, so service.py does not import it).
service.on_ended(record_no_shows)

definition = ServiceDefinition(
    context="events",
    title="Hearth events",
    settings_cls=EventsSettings,
    metadata=models.metadata,
    tables=models.kit,
    migrations_dir=Path(__file__).parent / "migrations",
    app_factory="hearth_events.app:create_app",
    routers=[
        router,
        checkin_router,
        draws_router,
        questions_router,
        feedback_router,
        reports_router,
        calendars_router,
        series_router,
    ],
    consumers=[memberships, conversions, question_screening, community_activity],
    background=[reminder_scheduler, series_scheduler],
    default_port=8003,
)


# activity.summarized carries the report's figures; reports reads service's tables, so the
# lifecycle gets its summarizer here rather than importing reports.
use_summarizer(summarized_event)


def create_app(settings: EventsSettings | None = None) -> FastAPI:
    """The events ASGI app."""
    return create_service_app(definition, settings)

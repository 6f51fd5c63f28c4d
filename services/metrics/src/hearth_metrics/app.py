"""The metrics service definition and app factory: the one place everything is wired."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from hearth_metrics import models
from hearth_metrics.activity import models as _activity_tables  # noqa: F401 - registers
from hearth_metrics.activity.consumers import activity
from hearth_metrics.activity.routes import router as activity_router
from hearth_metrics.communities import models as _community_tables  # noqa: F401 - registers
from hearth_metrics.communities.consumers import memberships
from hearth_metrics.communities.routes import router as policy_router
from hearth_metrics.conversions import models as _conversion_tables  # noqa: F401 - registers
from hearth_metrics.conversions.consumers import conversions
from hearth_metrics.conversions.routes import router as conversions_router
from hearth_metrics.counters import models as _counter_tables  # noqa: F401 - registers
from hearth_metrics.counters.consumers import community_counts
from hearth_metrics.counters.routes import router as counters_router
from hearth_metrics.funnels import models as _funnel_tables  # noqa: F401 - registers
from hearth_metrics.funnels.consumers import funnel
from hearth_metrics.funnels.routes import router as funnel_router
from hearth_metrics.goals import models as _goal_tables  # noqa: F401 - registers
from hearth_metrics.goals.consumers import goals
from hearth_metrics.goals.routes import router as goals_router
from hearth_metrics.health.routes import router as health_router
from hearth_metrics.inactivity import models as _inactivity_tables  # noqa: F401 - registers
from hearth_metrics.inactivity.scheduler import inactivity_loop
from hearth_metrics.measures import models as _measure_tables  # noqa: F401 - registers
from hearth_metrics.measures.consumers import measures
from hearth_metrics.measures.routes import router as measures_router
from hearth_metrics.reports import models as _report_tables  # noqa: F401 - registers
from hearth_metrics.reports.routes import router as reports_router
from hearth_metrics.reports.scheduler import reports_loop
from hearth_metrics.settings import MetricsSettings
from servicekit.app import create_service_app
from servicekit.runtime import ServiceDefinition

definition = ServiceDefinition(
    context="metrics",
    title="Hearth metrics",
    settings_cls=MetricsSettings,
    metadata=models.metadata,
    tables=models.kit,
    migrations_dir=Path(__file__).parent / "migrations",
    app_factory="hearth_metrics.app:create_app",
    routers=[
        counters_router,
        policy_router,
        activity_router,
        conversions_router,
        funnel_router,
        measures_router,
        health_router,
        reports_router,
        goals_router,
    ],
    consumers=[community_counts, memberships, activity, conversions, funnel, measures, goals],
    background=[inactivity_loop, reports_loop],
    default_port=8005,
)


def create_app(settings: MetricsSettings | None = None) -> FastAPI:
    """The metrics ASGI app."""
    return create_service_app(definition, settings)

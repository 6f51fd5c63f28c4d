"""The metrics service definition and app factory."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from hearth_metrics import models
from hearth_metrics.consumers import community_counts
from hearth_metrics.routes import router
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
    routers=[router],
    consumers=[community_counts],
    default_port=8005,
)


def create_app(settings: MetricsSettings | None = None) -> FastAPI:
    """The metrics ASGI app."""
    return create_service_app(definition, settings)

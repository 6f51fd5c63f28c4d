"""The moderation service definition and app factory."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from hearth_moderation import models
from hearth_moderation.consumers import memberships, screening
from hearth_moderation.items.consumers import items
from hearth_moderation.routes import router, rules_router
from hearth_moderation.sanctions.routes import router as sanctions_router
from hearth_moderation.sanctions.scheduler import sanction_expiry
from hearth_moderation.settings import ModerationSettings
from servicekit.app import create_service_app
from servicekit.runtime import ServiceDefinition

definition = ServiceDefinition(
    context="moderation",
    title="Hearth moderation",
    settings_cls=ModerationSettings,
    metadata=models.metadata,
    tables=models.kit,
    migrations_dir=Path(__file__).parent / "migrations",
    app_factory="hearth_moderation.app:create_app",
    routers=[router, rules_router, sanctions_router],
    consumers=[screening, memberships, items],
    background=[sanction_expiry],
    default_port=8004,
)


def create_app(settings: ModerationSettings | None = None) -> FastAPI:
    """The moderation ASGI app."""
    return create_service_app(definition, settings)

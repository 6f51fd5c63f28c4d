"""The moderation service definition and app factory."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from hearth_moderation import models
from hearth_moderation.audit import chain as audit_chain
from hearth_moderation.audit.routes import router as audit_router
from hearth_moderation.audit.scheduler import audit_head_loop
from hearth_moderation.consumers import memberships, screening
from hearth_moderation.evidence import capture as evidence_capture
from hearth_moderation.evidence.routes import router as evidence_router
from hearth_moderation.evidence.scheduler import evidence_purge_loop
from hearth_moderation.items.consumers import items
from hearth_moderation.routes import router, rules_router
from hearth_moderation.sentiment.consumers import sentiment
from hearth_moderation.sentiment.routes import router as sentiment_router
from hearth_moderation.sentiment.warmup import sentiment_warm_up
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
    routers=[router, rules_router, audit_router, evidence_router, sentiment_router],
    consumers=[screening, memberships, items, sentiment],
    default_port=8004,
    background=[audit_head_loop, evidence_purge_loop, sentiment_warm_up],
    # Every event moderation records is appended to the audit chain in its own transaction.
    on_database=[audit_chain.install(models.kit, observers=[evidence_capture.capture])],
)


def create_app(settings: ModerationSettings | None = None) -> FastAPI:
    """The moderation ASGI app."""
    return create_service_app(definition, settings)

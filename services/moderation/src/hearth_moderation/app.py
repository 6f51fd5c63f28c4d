"""The moderation service definition and app factory."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from hearth_moderation import models
from hearth_moderation.appeals.routes import router as appeals_router
from hearth_moderation.appeals.scheduler import appeal_sla
from hearth_moderation.appeals.service import case_section as appeals_section
from hearth_moderation.appeals.service import decide_from_queue
from hearth_moderation.audit import chain as audit_chain
from hearth_moderation.audit.routes import router as audit_router
from hearth_moderation.audit.scheduler import audit_head_loop
from hearth_moderation.consumers import memberships, screening
from hearth_moderation.evidence import capture as evidence_capture
from hearth_moderation.evidence.routes import router as evidence_router
from hearth_moderation.evidence.scheduler import evidence_purge_loop
from hearth_moderation.evidence.service import register_section
from hearth_moderation.items.consumers import items
from hearth_moderation.queue.consumers import held_sync
from hearth_moderation.queue.models import EntryKind
from hearth_moderation.queue.routes import router as queue_router
from hearth_moderation.queue.service import case_section as queue_section
from hearth_moderation.queue.service import on_decision
from hearth_moderation.reports.routes import router as reports_router
from hearth_moderation.reports.service import case_section as reports_section
from hearth_moderation.reports.service import decide_reports
from hearth_moderation.routes import router, rules_router
from hearth_moderation.sanctions.routes import router as sanctions_router
from hearth_moderation.sanctions.scheduler import sanction_expiry
from hearth_moderation.sanctions.service import case_section as sanctions_section
from hearth_moderation.sentiment.consumers import sentiment
from hearth_moderation.sentiment.routes import router as sentiment_router
from hearth_moderation.sentiment.warmup import sentiment_warm_up
from hearth_moderation.settings import ModerationSettings
from servicekit.app import create_service_app
from servicekit.runtime import ServiceDefinition

# The queue sits below reports and appeals: what a decision does per kind is wired here.
on_decision(EntryKind.report, decide_reports)
on_decision(EntryKind.appeal, decide_from_queue)
# A case bundle (evidence) carries the item's reports, decisions, sanctions and appeals.
register_section("reports", reports_section)
register_section("decisions", queue_section)
register_section("sanctions", sanctions_section)
register_section("appeals", appeals_section)

definition = ServiceDefinition(
    context="moderation",
    title="Hearth moderation",
    settings_cls=ModerationSettings,
    metadata=models.metadata,
    tables=models.kit,
    migrations_dir=Path(__file__).parent / "migrations",
    app_factory="hearth_moderation.app:create_app",
    routers=[
        router,
        rules_router,
        sanctions_router,
        reports_router,
        queue_router,
        appeals_router,
        audit_router,
        evidence_router,
        sentiment_router,
    ],
    consumers=[screening, memberships, items, sentiment, held_sync],
    default_port=8004,
    background=[
        sanction_expiry,
        appeal_sla,
        audit_head_loop,
        evidence_purge_loop,
        sentiment_warm_up,
    ],
    # Every event moderation records is appended to the audit chain in its own transaction.
    on_database=[audit_chain.install(models.kit, observers=[evidence_capture.capture])],
)


def create_app(settings: ModerationSettings | None = None) -> FastAPI:
    """The moderation ASGI app."""
    return create_service_app(definition, settings)

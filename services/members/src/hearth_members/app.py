"""The members service definition and app factory."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from hearth_members import models
from hearth_members.accounts import privacy as accounts_privacy
from hearth_members.accounts.routes import router as accounts_router
from hearth_members.audit import privacy as audit_privacy
from hearth_members.audit.routes import router as audit_router
from hearth_members.care import privacy as care_privacy
from hearth_members.care.consumers import care as care_consumer
from hearth_members.care.routes import router as care_router
from hearth_members.care.scheduler import care_scheduler
from hearth_members.communities.routes import router as communities_router
from hearth_members.goals.consumers import measurements as measurements_consumer
from hearth_members.goals.routes import router as goals_router
from hearth_members.incentives import privacy as incentives_privacy
from hearth_members.incentives.consumers import points as points_consumer
from hearth_members.incentives.routes import router as incentives_router
from hearth_members.membership import privacy as membership_privacy
from hearth_members.membership.cleanup import cleanup_loop
from hearth_members.membership.consumers import sanctions as sanctions_consumer
from hearth_members.membership.routes import router as membership_router
from hearth_members.notifications import privacy as notifications_privacy
from hearth_members.notifications.consumers import gateway_notices as gateway_consumer
from hearth_members.notifications.consumers import metrics_reports as reports_consumer
from hearth_members.notifications.consumers import reminders as reminders_consumer
from hearth_members.notifications.consumers import suggestions as suggestions_consumer
from hearth_members.notifications.metrics import DeliveryCollector
from hearth_members.notifications.routes import router as notifications_router
from hearth_members.notifications.sender import notification_sender, use_address_book
from hearth_members.profiles import privacy
from hearth_members.profiles.routes import router as profiles_router
from hearth_members.profiles.service import email_address_of
from hearth_members.settings import MembersSettings
from hearth_members.snapshots import writer as snapshot_writer
from hearth_members.tiers import privacy as tiers_privacy
from hearth_members.tiers.consumers import activity as tiers_consumer
from hearth_members.tiers.routes import router as tiers_router
from servicekit.app import create_service_app
from servicekit.runtime import ServiceDefinition

# Seams that keep packages from importing each other in a cycle: the sender reads addresses
# through profiles, and profiles' export and erasure reach every package's personal data.
use_address_book(lambda runtime, user_id: email_address_of(runtime=runtime, user_id=user_id))
privacy.register(
    # The export document's sections appear in this order.
    exporters=[
        accounts_privacy.export,
        membership_privacy.export,
        notifications_privacy.export,
        audit_privacy.export,
        incentives_privacy.export,
        tiers_privacy.export,
        care_privacy.export,
    ],
    erasers=[membership_privacy.erase, notifications_privacy.erase, accounts_privacy.erase],
)

definition = ServiceDefinition(
    context="members",
    title="Hearth members",
    settings_cls=MembersSettings,
    metadata=models.metadata,
    tables=models.kit,
    migrations_dir=Path(__file__).parent / "migrations",
    app_factory="hearth_members.app:create_app",
    routers=[
        communities_router,
        goals_router,
        membership_router,
        audit_router,
        notifications_router,
        profiles_router,
        accounts_router,
        incentives_router,
        tiers_router,
        care_router,
    ],
    consumers=[
        sanctions_consumer,
        points_consumer,
        tiers_consumer,
        care_consumer,
        measurements_consumer,
        gateway_consumer,
        reminders_consumer,
        suggestions_consumer,
        reports_consumer,
    ],
    background=[care_scheduler, cleanup_loop, notification_sender],
    collectors=[DeliveryCollector],
    on_database=[snapshot_writer.install],
    default_port=8001,
)


def create_app(settings: MembersSettings | None = None) -> FastAPI:
    """The members ASGI app."""
    return create_service_app(definition, settings)

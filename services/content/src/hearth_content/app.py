"""The content service definition and app factory."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from hearth_content import models
from hearth_content.attachments import models as attachment_models  # noqa: F401  (its table)
from hearth_content.attachments.routes import router as attachments_router
from hearth_content.calendar import models as calendar_models  # noqa: F401  (tables)
from hearth_content.calendar.routes import router as calendar_router
from hearth_content.consumers import memberships, screening
from hearth_content.decisions import decisions
from hearth_content.discussion import models as discussion_models
from hearth_content.discussion.routes import router as discussion_router
from hearth_content.flags.routes import router as flags_router
from hearth_content.hiding import hiding
from hearth_content.polls import models as poll_models  # noqa: F401  (tables)
from hearth_content.polls.loops import poll_closer
from hearth_content.polls.routes import router as polls_router
from hearth_content.ranking import models as ranking_models  # noqa: F401  (its table)
from hearth_content.ranking.routes import router as ranking_router
from hearth_content.ranking.service import view_flusher
from hearth_content.review import models as review_models  # noqa: F401  (tables)
from hearth_content.review.routes import router as review_router
from hearth_content.routes import router
from hearth_content.scheduler import scheduled_publisher
from hearth_content.search import models as search_models
from hearth_content.search.routes import router as search_router
from hearth_content.settings import ContentSettings
from hearth_content.suggestions import models as suggestion_models  # noqa: F401  (tables)
from hearth_content.suggestions.routes import router as suggestions_router
from hearth_content.surveys import models as survey_models  # noqa: F401  (tables)
from hearth_content.surveys.routes import router as surveys_router
from servicekit.app import create_service_app
from servicekit.runtime import ServiceDefinition

# Discussion and search tables live on content's metadata; importing registers them.
_ = (discussion_models, search_models)

definition = ServiceDefinition(
    context="content",
    title="Hearth content",
    settings_cls=ContentSettings,
    metadata=models.metadata,
    tables=models.kit,
    migrations_dir=Path(__file__).parent / "migrations",
    app_factory="hearth_content.app:create_app",
    routers=[
        router,
        attachments_router,
        review_router,
        calendar_router,
        discussion_router,
        search_router,
        polls_router,
        ranking_router,
        flags_router,
        surveys_router,
        suggestions_router,
    ],
    consumers=[memberships, screening, hiding, decisions],
    background=[scheduled_publisher, poll_closer, view_flusher],
    default_port=8002,
)


def create_app(settings: ContentSettings | None = None) -> FastAPI:
    """The content ASGI app."""
    return create_service_app(definition, settings)

"""Search route."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from hearth_content.models import PostFormat
from hearth_content.search import service
from hearth_content.search.models import SearchHit
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal
from servicekit.types import UtcDatetime

router = APIRouter(tags=["search"])


@router.get("/search")
async def search(
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    community_id: uuid.UUID | None = None,
    author_id: uuid.UUID | None = None,
    format: PostFormat | None = None,
    since: UtcDatetime | None = None,
    until: UtcDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> list[SearchHit]:
    """Posts and comments the caller may read matching every word of `q` (中文 and English)."""
    return await service.search(
        uow=uow,
        actor=actor,
        q=q,
        community_id=community_id,
        author_id=author_id,
        fmt=str(format) if format else None,
        since=since,
        until=until,
        limit=limit,
    )

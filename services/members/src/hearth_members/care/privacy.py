"""Care journeys' part of a person's data export (registered in app.py)."""

from __future__ import annotations

import uuid
from typing import Any

from hearth_members.care.models import CareJourney
from hearth_members.profiles.privacy import rows_of
from servicekit.deps import UnitOfWork


async def export(uow: UnitOfWork, user_id: uuid.UUID) -> dict[str, Any]:
    """The person's care journeys."""
    return {"care_journeys": await rows_of(uow, CareJourney, CareJourney.user_id, user_id)}

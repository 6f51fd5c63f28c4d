"""The audit log's part of a person's data export (registered in app.py)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import select

from hearth_members.audit.models import AuditRecord
from servicekit.deps import UnitOfWork


async def export(uow: UnitOfWork, user_id: uuid.UUID) -> dict[str, Any]:
    """The audit records about the person (as target)."""
    stmt = select(AuditRecord).where(AuditRecord.target_id == str(user_id))
    return {
        "audit_about_me": [r.model_dump(mode="json") for r in (await uow.session.exec(stmt)).all()]
    }

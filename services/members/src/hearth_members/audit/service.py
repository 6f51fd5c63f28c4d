"""Writing and reading the audit trail."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import col, select

from hearth_members.audit.models import AuditRecord
from servicekit.deps import UnitOfWork
from servicekit.pagination import PageParams, after_id

# The actor of what members does on its own (a sanction applied from moderation's event, a
# cleanup at the end of its notice period): the nil UUID, never a real person's id.
SYSTEM_ACTOR = uuid.UUID(int=0)


def audit(
    *,
    uow: UnitOfWork,
    actor_id: uuid.UUID,
    action: str,
    target_type: str,
    target_id: Any,
    reason: str = "",
    community_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> AuditRecord:
    """Add an audit record to the caller's transaction."""
    record = AuditRecord(
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        community_id=community_id,
        reason=reason,
        details=details or {},
    )
    uow.session.add(record)
    return record


async def list_audit(
    *,
    uow: UnitOfWork,
    page: PageParams,
    community_id: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
) -> list[AuditRecord]:
    """Audit records, newest first (limit+1 rows)."""
    stmt = select(AuditRecord).order_by(col(AuditRecord.id).desc()).limit(page.limit + 1)
    if community_id is not None:
        stmt = stmt.where(AuditRecord.community_id == community_id)
    if actor_id is not None:
        stmt = stmt.where(AuditRecord.actor_id == actor_id)
    if page.after:
        stmt = stmt.where(col(AuditRecord.id) < after_id(page))
    return list((await uow.session.exec(stmt)).all())

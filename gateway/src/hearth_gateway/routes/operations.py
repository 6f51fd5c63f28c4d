"""The gateway's outbox backlog for platform admins and operators, as every service shows its own.

No dead-letter routes: the gateway's only consumer (webhooks) never dead-letters. A message that
is not a CloudEvent is terminated, one whose ingest fails (database away) is redelivered until it
is recorded, and failed deliveries are kept, and replayed, in the webhook delivery log.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from hearth_gateway.routes.access import StaffDep
from servicekit.ops import OutboxStatus, read_outbox_status

router = APIRouter(prefix="/admin", tags=["operations"])


@router.get("/outbox", response_model=OutboxStatus)
async def outbox_status(request: Request, staff: StaffDep) -> OutboxStatus:
    """How many of the gateway's events wait to be published, and for how long."""
    return await read_outbox_status(request.app.state.relay)

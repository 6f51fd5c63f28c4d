"""Conversions over NATS: business systems publish `hearth.business.conversion.reported.v1`."""

from __future__ import annotations

import logging

from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.conversions import service
from hearth_metrics.conversions.models import ConversionCreate
from servicekit.consumer import EventConsumer
from servicekit.deps import handler_uow
from servicekit.events import Envelope

log = logging.getLogger(__name__)

REPORTED = "hearth.business.conversion.reported.v1"
"""The subject business systems publish conversions on (payload: ConversionCreate's fields)."""

conversions = EventConsumer("metrics__conversions")


@conversions.handles(REPORTED, payload=ConversionCreate)
async def on_conversion_reported(
    session: AsyncSession, envelope: Envelope, data: ConversionCreate
) -> None:
    """Record the conversion under the publisher's CloudEvents source (its id's namespace).

    A reused id with another payload cannot be answered with a 409 here: it is logged and
    dropped (the first payload stands), exactly as over HTTP.
    """
    try:
        await service.record_conversion(
            handler_uow(session), source=f"nats:{envelope.source}"[:200], body=data
        )
    except service.ConversionConflict as exc:
        log.warning("conversion dropped: %s (source %s)", exc, envelope.source)

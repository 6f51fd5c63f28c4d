"""Check-in routes: the registrant's code and QR image, the hosts' check-in, the policy."""

from __future__ import annotations

import io
import uuid

import segno
from fastapi import APIRouter, Response, status

from hearth_events.checkin import service
from hearth_events.checkin.codes import keys_of
from hearth_events.checkin.models import (
    CheckInCode,
    CheckInPolicyPublic,
    CheckInPolicyUpdate,
    CheckInPublic,
    CheckInRequest,
)
from hearth_events.settings import EventsSettings
from servicekit.deps import RuntimeDep, UnitOfWorkDep
from servicekit.identity import CurrentPrincipal
from servicekit.pagination import Page, PageDep, make_page
from servicekit.runtime import settings_of

router = APIRouter(tags=["check-in"])

CODE_PATH = "/activities/{activity_id}/registrations/me/check-in-code"
# The code is a bearer credential for one seat: never cached by a shared cache.
PRIVATE = {"Cache-Control": "private, no-store"}


@router.get(CODE_PATH)
async def my_check_in_code(
    activity_id: uuid.UUID, uow: UnitOfWorkDep, runtime: RuntimeDep, actor: CurrentPrincipal
) -> CheckInCode:
    """The caller's check-in code for their confirmed seat, and its QR images."""
    registration, code = await service.code_for(
        uow, keys=keys_of(runtime), activity_id=activity_id, actor=actor
    )
    base = CODE_PATH.format(activity_id=activity_id)
    return CheckInCode(
        activity_id=activity_id,
        registration_id=registration.id,
        code=code,
        png_url=f"{base}/qr.png",
        svg_url=f"{base}/qr.svg",
    )


async def _qr(
    activity_id: uuid.UUID, uow: UnitOfWorkDep, runtime: RuntimeDep, actor: CurrentPrincipal
) -> segno.QRCode:
    _, code = await service.code_for(
        uow, keys=keys_of(runtime), activity_id=activity_id, actor=actor
    )
    return segno.make_qr(code, error="m")


@router.get(
    CODE_PATH + "/qr.png", response_class=Response, responses={200: {"content": {"image/png": {}}}}
)
async def my_check_in_qr_png(
    activity_id: uuid.UUID, uow: UnitOfWorkDep, runtime: RuntimeDep, actor: CurrentPrincipal
) -> Response:
    """The caller's check-in code as a PNG QR image."""
    buffer = io.BytesIO()
    (await _qr(activity_id, uow, runtime, actor)).save(buffer, kind="png", scale=8, border=4)
    return Response(buffer.getvalue(), media_type="image/png", headers=PRIVATE)


@router.get(
    CODE_PATH + "/qr.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
async def my_check_in_qr_svg(
    activity_id: uuid.UUID, uow: UnitOfWorkDep, runtime: RuntimeDep, actor: CurrentPrincipal
) -> Response:
    """The caller's check-in code as an SVG QR image."""
    buffer = io.BytesIO()
    (await _qr(activity_id, uow, runtime, actor)).save(buffer, kind="svg", scale=8, border=4)
    return Response(buffer.getvalue(), media_type="image/svg+xml", headers=PRIVATE)


@router.post("/activities/{activity_id}/check-ins", status_code=status.HTTP_201_CREATED)
async def check_in(
    activity_id: uuid.UUID,
    body: CheckInRequest,
    uow: UnitOfWorkDep,
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    response: Response,
) -> CheckInPublic:
    """Check a registrant in by scanned code or by hand, or seat a walk-in (organisers).

    Checking the same person in again answers 200 with the first check-in.
    """
    attendance, created = await service.check_in(
        uow,
        keys=keys_of(runtime),
        settings=settings_of(runtime, EventsSettings),
        activity_id=activity_id,
        request=body,
        actor=actor,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return CheckInPublic.model_validate(attendance, from_attributes=True)


@router.get("/activities/{activity_id}/check-ins")
async def list_check_ins(
    activity_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal, page: PageDep
) -> Page[CheckInPublic]:
    """Who has checked in, in order (organisers)."""
    rows = await service.list_check_ins(uow, activity_id=activity_id, actor=actor, page=page)
    items = [CheckInPublic.model_validate(c, from_attributes=True) for c in rows]
    return make_page(items, page.limit, lambda c: [c.checked_in_at.isoformat(), str(c.id)])


@router.get("/activities/{activity_id}/check-in-policy")
async def get_check_in_policy(
    activity_id: uuid.UUID, uow: UnitOfWorkDep, runtime: RuntimeDep, actor: CurrentPrincipal
) -> CheckInPolicyPublic:
    """The check-in window and whether walk-ins are taken (the community's members)."""
    return await service.get_policy(
        uow, activity_id=activity_id, actor=actor, settings=settings_of(runtime, EventsSettings)
    )


@router.put("/activities/{activity_id}/check-in-policy")
async def set_check_in_policy(
    activity_id: uuid.UUID,
    body: CheckInPolicyUpdate,
    uow: UnitOfWorkDep,
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
) -> CheckInPolicyPublic:
    """Set the check-in window around start and end, and walk-ins (organisers)."""
    return await service.set_policy(
        uow,
        activity_id=activity_id,
        data=body,
        actor=actor,
        settings=settings_of(runtime, EventsSettings),
    )

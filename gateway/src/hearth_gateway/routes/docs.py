"""/openapi.json (the merged platform document) and /docs (Swagger UI over it)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
async def openapi(request: Request) -> dict[str, Any]:
    """Every service's API under its public /api/<context> prefix, plus the gateway's own."""
    return await request.app.state.openapi.document(request.app.openapi())


@router.get("/docs")
async def docs() -> HTMLResponse:
    """Swagger UI for the merged document."""
    return get_swagger_ui_html(openapi_url="/openapi.json", title="Hearth API")

"""API keys for business systems, managed by platform admins; the secret is shown once."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from hearth_gateway.routes.access import AdminDep
from hearth_gateway.store import ApiKeyRecord, ApiKeyStore
from servicekit.pagination import Page, PageDep, after_id, make_page
from servicekit.problems import Problem

router = APIRouter(prefix="/auth/api-keys", tags=["api keys"])

SCOPE_PATTERN = r"^[a-z][a-z0-9-]*(:[a-z][a-z0-9-]*){1,3}$"


async def _store(request: Request) -> ApiKeyStore:
    return request.app.state.api_key_store  # type: ignore[no-any-return]


StoreDep = Annotated[ApiKeyStore, Depends(_store)]


class ApiKeyCreate(BaseModel):
    """A new key: a name for humans and the scopes it grants."""

    name: str = Field(min_length=1, max_length=200)
    scopes: list[Annotated[str, Field(pattern=SCOPE_PATTERN, max_length=100)]] = Field(
        min_length=1, max_length=50
    )


class ApiKeyPublic(BaseModel):
    """A key as listed: never its secret."""

    id: uuid.UUID
    prefix: str
    name: str
    scopes: list[str]
    created_by: uuid.UUID
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    """The created key, with its secret: shown this once only."""

    key: str


def _public(record: ApiKeyRecord) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=record.id,
        prefix=record.prefix,
        name=record.name,
        scopes=sorted(record.scopes),
        created_by=record.created_by,
        created_at=record.created_at,
        revoked_at=record.revoked_at,
        last_used_at=record.last_used_at,
    )


@router.post("", status_code=201, response_model=ApiKeyCreated)
async def create_api_key(body: ApiKeyCreate, admin: AdminDep, store: StoreDep) -> ApiKeyCreated:
    """Create a key; the response is the only time its secret is shown."""
    record, plaintext = await store.create(
        name=body.name, scopes=frozenset(body.scopes), created_by=admin.subject
    )
    return ApiKeyCreated(**_public(record).model_dump(), key=plaintext)


@router.get("", response_model=Page[ApiKeyPublic])
async def list_api_keys(admin: AdminDep, store: StoreDep, page: PageDep) -> Page[ApiKeyPublic]:
    """The keys (revoked ones included), newest first, a page at a time."""
    after = after_id(page) if page.after else None
    rows = await store.list(limit=page.limit + 1, after=after)
    return make_page([_public(r) for r in rows], page.limit, lambda k: [str(k.id)])


@router.delete("/{key_id}", response_model=ApiKeyPublic)
async def revoke_api_key(
    key_id: uuid.UUID, request: Request, admin: AdminDep, store: StoreDep
) -> ApiKeyPublic:
    """Revoke a key: refused from now on (other replicas within api_key_cache_seconds)."""
    record = await store.revoke(key_id)
    if record is None:
        raise Problem(404, "not-found", "Not found", "no such API key")
    request.app.state.authenticator.forget_api_key(key_id)
    return _public(record)

"""Webhook subscriptions, their secrets, delivery log and replay (platform admins)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field, field_validator

from hearth_gateway.routes.access import AdminDep
from hearth_gateway.webhook_targets import TargetRefused, check_target, parse_target
from hearth_gateway.webhooks import WebhookStore
from servicekit.pagination import Page, PageDep, after_id, cursor_key, make_page
from servicekit.problems import Problem
from servicekit.types import CleanInput, UtcDatetime

router = APIRouter(prefix="/admin/webhooks", tags=["webhooks"])

TYPE_PATTERN = r"^[a-z0-9*][a-z0-9_.*-]{0,199}$"


def _store(request: Request) -> WebhookStore:
    store = request.app.state.webhook_store
    return store  # type: ignore[no-any-return]


StoreDep = Annotated[WebhookStore, Depends(_store)]


def _check_url(value: str) -> str:
    try:
        parse_target(value)
    except TargetRefused as exc:
        raise ValueError(str(exc)) from exc
    return value


async def _allowed_target(request: Request, url: str) -> None:
    """422 unless the URL's host is (and resolves only to) public addresses, when enforced."""
    if request.app.state.settings.webhook_allow_private_targets:
        return
    try:
        await check_target(url)
    except TargetRefused as exc:
        raise Problem(422, "webhook-target-refused", "Webhook target refused", str(exc)) from exc


class SubscriptionCreate(CleanInput):
    """A receiver URL, the event types it wants (patterns, e.g. members.member.*), a secret."""

    url: str = Field(max_length=2000)
    event_types: list[Annotated[str, Field(pattern=TYPE_PATTERN)]] = Field(
        min_length=1, max_length=50
    )
    secret: str | None = Field(default=None, min_length=16, max_length=200)

    _url = field_validator("url")(classmethod(lambda cls, v: _check_url(v)))


class SubscriptionUpdate(CleanInput):
    """Change the URL or filters, or disable / re-enable."""

    url: str | None = Field(default=None, max_length=2000)
    event_types: list[Annotated[str, Field(pattern=TYPE_PATTERN)]] | None = Field(
        default=None, min_length=1, max_length=50
    )
    status: Literal["active", "disabled"] | None = None

    _url = field_validator("url")(classmethod(lambda cls, v: v if v is None else _check_url(v)))


class SubscriptionPublic(BaseModel):
    """A subscription as listed: never its secret."""

    id: uuid.UUID
    url: str
    event_types: list[str]
    status: str
    disabled_reason: str | None
    failure_streak: int
    created_at: datetime
    updated_at: datetime


class SubscriptionCreated(SubscriptionPublic):
    """The created subscription with its signing secret: shown this once."""

    secret: str


class SecretRoll(CleanInput):
    """Roll the signing secret (generated unless given); the old one keeps signing alongside
    for `previous_valid_seconds` (0 = stop at once), so receivers can switch without failures."""

    secret: str | None = Field(default=None, min_length=16, max_length=200)
    previous_valid_seconds: int = Field(default=86_400, ge=0, le=7 * 86_400)


class SecretRolled(BaseModel):
    """The new signing secret: shown this once."""

    id: uuid.UUID
    secret: str
    previous_secret_expires_at: datetime | None


class SecretsRekeyed(BaseModel):
    """Secrets re-encrypted under the active key; `unreadable` ones need a roll."""

    rewritten: int
    unreadable: int


class DeliveryPublic(BaseModel):
    """One entry of the delivery log."""

    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    event_time: datetime
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None


class Replay(CleanInput):
    """A time range [since, until) of event times to deliver again."""

    since: UtcDatetime
    until: UtcDatetime


def _public(row: dict[str, Any]) -> SubscriptionPublic:
    return SubscriptionPublic.model_validate(row)


async def _existing(store: WebhookStore, subscription_id: uuid.UUID) -> dict[str, Any]:
    row = await store.get(subscription_id)
    if row is None:
        raise Problem(404, "not-found", "Not found", "no such webhook subscription")
    return row


@router.post("", status_code=201, response_model=SubscriptionCreated)
async def create_subscription(
    body: SubscriptionCreate, request: Request, admin: AdminDep, store: StoreDep
) -> SubscriptionCreated:
    """Subscribe a URL (public addresses only); the only response that shows the secret."""
    await _allowed_target(request, body.url)
    row = await store.create(
        url=body.url, event_types=body.event_types, secret=body.secret, created_by=admin.subject
    )
    return SubscriptionCreated.model_validate(row)


@router.get("", response_model=Page[SubscriptionPublic])
async def list_subscriptions(
    admin: AdminDep, store: StoreDep, page: PageDep
) -> Page[SubscriptionPublic]:
    """The subscriptions, newest first, a page at a time."""
    after = after_id(page) if page.after else None
    rows = await store.list(limit=page.limit + 1, after=after)
    return make_page([_public(r) for r in rows], page.limit, lambda s: [str(s.id)])


@router.post("/rotate-secrets-key", response_model=SecretsRekeyed)
async def rotate_secrets_key(admin: AdminDep, store: StoreDep) -> SecretsRekeyed:
    """Re-encrypt every signing secret under the keyring's active key (key rotation)."""
    return SecretsRekeyed(**await store.reencrypt())


@router.patch("/{subscription_id}", response_model=SubscriptionPublic)
async def update_subscription(
    subscription_id: uuid.UUID,
    body: SubscriptionUpdate,
    request: Request,
    admin: AdminDep,
    store: StoreDep,
) -> SubscriptionPublic:
    """Change a subscription; re-enabling sends what it held while disabled, in order."""
    await _existing(store, subscription_id)
    if body.url is not None:
        await _allowed_target(request, body.url)
    row = await store.update(subscription_id, **body.model_dump(exclude_none=True))
    assert row is not None
    return _public(row)


@router.post("/{subscription_id}/secret", response_model=SecretRolled)
async def roll_secret(
    subscription_id: uuid.UUID, admin: AdminDep, store: StoreDep, body: SecretRoll | None = None
) -> SecretRolled:
    """Replace the signing secret; the response is the only time the new one is shown."""
    body = body or SecretRoll()
    rolled = await store.roll_secret(
        subscription_id, secret=body.secret, previous_valid_seconds=body.previous_valid_seconds
    )
    if rolled is None:
        raise Problem(404, "not-found", "Not found", "no such webhook subscription")
    secret, until = rolled
    return SecretRolled(id=subscription_id, secret=secret, previous_secret_expires_at=until)


@router.delete("/{subscription_id}", status_code=204)
async def delete_subscription(
    subscription_id: uuid.UUID, admin: AdminDep, store: StoreDep
) -> Response:
    """Remove a subscription and its delivery log."""
    if not await store.delete(subscription_id):
        raise Problem(404, "not-found", "Not found", "no such webhook subscription")
    return Response(status_code=204)


@router.get("/{subscription_id}/deliveries", response_model=Page[DeliveryPublic])
async def list_deliveries(
    subscription_id: uuid.UUID, admin: AdminDep, store: StoreDep, page: PageDep
) -> Page[DeliveryPublic]:
    """The delivery log of a subscription, newest event first, a page at a time."""
    after = cursor_key(page.after, datetime, uuid.UUID) if page.after else None
    await _existing(store, subscription_id)
    rows = await store.deliveries(subscription_id, limit=page.limit + 1, after=after)
    items = [DeliveryPublic.model_validate(r) for r in rows]
    return make_page(items, page.limit, lambda d: [d.event_time.isoformat(), str(d.id)])


@router.post("/{subscription_id}/replay")
async def replay(
    subscription_id: uuid.UUID, body: Replay, request: Request, admin: AdminDep, store: StoreDep
) -> dict[str, int]:
    """Deliver every logged event with an event time in [since, until) again."""
    await _existing(store, subscription_id)
    if body.until <= body.since:
        raise Problem(422, "validation-error", "Invalid range", "until must be after since")
    count = await store.replay(subscription_id, body.since, body.until)
    dispatcher = request.app.state.webhook_dispatcher
    if dispatcher is not None:
        dispatcher.wake()
    return {"requeued": count}

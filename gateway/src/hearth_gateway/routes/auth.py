"""The built-in issuer: password login, refresh-token rotation, logout, and the JWKS."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from hearth_gateway.accounts import AccountsClient, AccountsError
from hearth_gateway.client_ip import TrustedProxies
from hearth_gateway.dev_accounts import DEV_ACCOUNTS, authenticate
from hearth_gateway.ratelimit import Limiter, Lockout, Rate, retry_after_header
from hearth_gateway.store import RefreshRefused, RefreshStore
from hearth_gateway.tokens import TokenIssuer
from servicekit.problems import Problem
from servicekit.types import CleanInput

router = APIRouter(tags=["auth"])


class TokenRequest(CleanInput):
    """Login and password of a Hearth account (or, in development, a dev account)."""

    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=256)


class RefreshRequest(CleanInput):
    """A refresh token from a previous token response."""

    refresh_token: str = Field(min_length=1, max_length=256)


class TokenResponse(BaseModel):
    """An OAuth-style bearer token response with a rotating refresh token."""

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - a token type, not a secret
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


async def get_issuer(request: Request) -> TokenIssuer:
    """The app's token issuer."""
    return request.app.state.issuer  # type: ignore[no-any-return]


IssuerDep = Annotated[TokenIssuer, Depends(get_issuer)]


def _invalid_credentials() -> Problem:
    return Problem(
        401,
        "invalid-credentials",
        "Invalid credentials",
        "unknown username or wrong password",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _throttled(seconds: float, detail: str) -> Problem:
    return Problem(
        429,
        "rate-limited",
        "Too many requests",
        detail,
        headers={"Retry-After": retry_after_header(seconds)},
    )


def _client_ip(request: Request) -> str:
    # Behind trusted proxies the peer is the ingress; the lock-out must key on the client.
    proxies: TrustedProxies = request.app.state.trusted_proxies
    peer = request.client.host if request.client else None
    return proxies.client_ip(peer, request.headers.getlist("x-forwarded-for"))


async def _login_rate(request: Request) -> None:
    """Login and refresh are limited per IP, far more strictly than API calls."""
    state = request.app.state
    limiter: Limiter | None = state.limiter
    if limiter is None:
        return
    rate: Rate = state.login_rate
    wait = await limiter.hit("login:" + _client_ip(request), rate)
    if wait:
        raise _throttled(wait, "too many login attempts from this address")


async def _grant(
    request: Request, issuer: TokenIssuer, subject: Any, roles: Any, name: Any, refresh: str
) -> TokenResponse:
    store: RefreshStore = request.app.state.refresh_store
    return TokenResponse(
        access_token=issuer.issue(subject=subject, roles=frozenset(roles), name=name),
        expires_in=issuer.ttl,
        refresh_token=refresh,
        refresh_expires_in=int(store.ttl.total_seconds()),
    )


@router.post("/auth/token", response_model=TokenResponse)
async def issue_token(body: TokenRequest, request: Request, issuer: IssuerDep) -> TokenResponse:
    """Exchange a login and password for an access token and a refresh token."""
    await _login_rate(request)
    state = request.app.state
    limiter: Limiter | None = state.limiter
    lockout: Lockout = state.lockout
    lock_key = f"{body.username.lower()}|{_client_ip(request)}"
    if limiter is not None and (wait := await limiter.locked(lock_key)):
        raise _throttled(wait, "too many failed logins; locked out for a while")
    subject = roles = name = None
    if state.settings.dev_accounts_enabled and body.username in DEV_ACCOUNTS:
        # Development-only fallback: the documented dev accounts, never in production.
        dev = authenticate(body.username, body.password, enabled=True)
        if dev is not None:
            subject, roles, name = dev.subject, dev.roles, dev.name
    else:
        accounts: AccountsClient = state.accounts
        try:
            account = await accounts.verify(body.username, body.password)
            subject, roles, name = account.subject, account.roles, account.name
        except AccountsError as exc:
            if exc.kind == "account-disabled":
                raise Problem(
                    403, "account-disabled", "Account disabled", "this account is disabled"
                ) from exc
            if exc.kind == "unavailable":
                raise Problem(
                    503,
                    "unavailable",
                    "Accounts unavailable",
                    "the accounts service cannot check passwords now",
                ) from exc
    if subject is None:
        if limiter is not None:
            await limiter.fail(lock_key, lockout)
        raise _invalid_credentials()
    if limiter is not None:
        await limiter.clear(lock_key)
    grant = await state.refresh_store.start(
        subject=subject, roles=frozenset(roles or ()), name=name
    )
    return await _grant(request, issuer, subject, roles, name, grant.refresh_token)


@router.post("/auth/refresh", response_model=TokenResponse)
async def refresh(body: RefreshRequest, request: Request, issuer: IssuerDep) -> TokenResponse:
    """Rotate a refresh token: a new pair; the old refresh token is spent (reuse revokes all)."""
    await _login_rate(request)
    try:
        grant = await request.app.state.refresh_store.rotate(body.refresh_token)
    except RefreshRefused as exc:
        raise Problem(
            401,
            "invalid-refresh-token",
            "Invalid refresh token",
            "the refresh token is unknown, expired, revoked or was already used",
            headers={"WWW-Authenticate": "Bearer"},
        ) from exc
    return await _grant(
        request, issuer, grant.subject, grant.roles, grant.name, grant.refresh_token
    )


@router.post("/auth/logout", status_code=204)
async def logout(body: RefreshRequest, request: Request) -> Response:
    """Revoke the login (refresh-token family) this refresh token belongs to."""
    await _login_rate(request)
    await request.app.state.refresh_store.revoke(body.refresh_token)
    return Response(status_code=204)  # also for unknown tokens: nothing to learn from it


@router.get("/.well-known/jwks.json")
async def jwks(issuer: IssuerDep) -> dict[str, Any]:
    """The public keys that verify access tokens (active and previous), as a JWKS."""
    return issuer.jwks()

"""Who may call the gateway's own admin routes: users holding a platform role (never API keys)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from hearth_gateway.authn import Authenticator, Identity
from hearth_gateway.tokens import InvalidToken
from servicekit.problems import Problem


async def _caller(request: Request) -> Identity:
    """The verified bearer of the request's token, or a 401 problem."""
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Problem(
            401,
            "unauthenticated",
            "Not authenticated",
            "a bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    authenticator: Authenticator = request.app.state.authenticator
    credential = credential.strip()
    identity = authenticator.cached(credential)
    if identity is None:
        try:
            identity = await authenticator.authenticate(credential)
        except InvalidToken as exc:
            raise Problem(
                401,
                "unauthenticated",
                "Not authenticated",
                "invalid credential",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            ) from exc
    return identity


def platform_role(*roles: str) -> Callable[[Request], Awaitable[Identity]]:
    """A dependency: the calling user, who must hold one of these platform roles."""
    wanted = frozenset(roles)
    needed = " or ".join(roles)

    async def dependency(request: Request) -> Identity:
        identity = await _caller(request)
        # API keys are service principals: they never manage the gateway, whatever their scopes.
        if identity.kind != "user" or not wanted & identity.roles:
            raise Problem(403, "forbidden", "Forbidden", f"requires the platform role {needed}")
        return identity

    return dependency


AdminDep = Annotated[Identity, Depends(platform_role("admin"))]
StaffDep = Annotated[Identity, Depends(platform_role("admin", "operator"))]

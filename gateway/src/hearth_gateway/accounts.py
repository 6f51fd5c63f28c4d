"""The gateway's calls to members' internal accounts API (contract 2).

A synchronous call on purpose: a password can only be checked by the context that owns the
account, at the moment of login; and a first external login must create the Hearth user before
its first request. Both happen once per login, never per proxied request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from servicekit.identity import ASSERTION_HEADER, AssertionSigner, Principal

GATEWAY_SERVICE_SUBJECT = uuid.UUID("00000000-0000-7000-8000-0000000000ff")
GATEWAY_SERVICE = Principal(
    subject=GATEWAY_SERVICE_SUBJECT,
    kind="service",
    name="gateway",
    roles=frozenset({"service"}),
    scopes=frozenset({"accounts:verify", "accounts:provision"}),
)


@dataclass(frozen=True, slots=True)
class Account:
    """A Hearth account as members reports it."""

    subject: uuid.UUID
    name: str | None
    roles: frozenset[str]
    status: str


class AccountsError(Exception):
    """members refused or could not answer; `kind` says which."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind  # invalid-credentials | account-disabled | unavailable


class AccountsClient:
    """POST /internal/accounts/verify and /provision on members, as the gateway service."""

    def __init__(self, base_url: str, signer: AssertionSigner, *, timeout: float = 5.0) -> None:
        self.base = base_url.rstrip("/")
        self._signer = signer
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the client session (app lifespan)."""
        self._session = aiohttp.ClientSession(
            timeout=self._timeout, cookie_jar=aiohttp.DummyCookieJar()
        )

    async def close(self) -> None:
        """Close the client session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def verify(self, login: str, password: str) -> Account:
        """The account for these credentials, or AccountsError."""
        return await self._post("/internal/accounts/verify", {"login": login, "password": password})

    async def provision(
        self,
        *,
        issuer: str,
        external_subject: str,
        email: str | None,
        name: str | None,
        roles: list[str],
    ) -> Account:
        """The Hearth user for an external identity (created on first call)."""
        return await self._post(
            "/internal/accounts/provision",
            {
                "issuer": issuer,
                "external_subject": external_subject,
                "email": email,
                "name": name,
                "roles": roles,
            },
        )

    async def _post(self, path: str, body: dict[str, Any]) -> Account:
        assert self._session is not None, "AccountsClient.start() was not called"
        headers = {ASSERTION_HEADER: self._signer.sign(GATEWAY_SERVICE)}
        try:
            async with self._session.post(self.base + path, json=body, headers=headers) as resp:
                if resp.status == 200:
                    data = await resp.json()
                    return Account(
                        subject=uuid.UUID(str(data["subject"])),
                        name=data.get("name"),
                        roles=frozenset(data.get("roles") or ()),
                        status=str(data.get("status", "active")),
                    )
                if resp.status == 401:
                    raise AccountsError("invalid-credentials")
                if resp.status == 403:
                    problem = await _json_or_empty(resp)
                    if str(problem.get("type", "")).endswith("account-disabled"):
                        raise AccountsError("account-disabled")
                    raise AccountsError("unavailable", f"members refused the gateway ({path})")
                raise AccountsError("unavailable", f"members answered {resp.status}")
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
            raise AccountsError("unavailable", repr(exc)) from exc


async def _json_or_empty(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        data = await resp.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        return {}
    return data if isinstance(data, dict) else {}

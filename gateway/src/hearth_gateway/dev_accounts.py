"""Documented development accounts (never available in production) and their password check."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DevAccount:
    """A fixed development login with platform roles."""

    username: str
    password: str
    subject: uuid.UUID
    roles: frozenset[str]
    name: str


DEV_ACCOUNTS: dict[str, DevAccount] = {
    account.username: account
    for account in (
        DevAccount(
            "operator",
            "hearth-operator",
            uuid.UUID("00000000-0000-7000-8000-000000000001"),
            frozenset({"operator"}),
            "Development Operator",
        ),
        DevAccount(
            "member",
            "hearth-member",
            uuid.UUID("00000000-0000-7000-8000-000000000002"),
            frozenset({"member"}),
            "Development Member",
        ),
        DevAccount(
            "admin",
            "hearth-admin",
            uuid.UUID("00000000-0000-7000-8000-000000000003"),
            frozenset({"admin"}),
            "Development Admin",
        ),
        DevAccount(
            "member2",
            "hearth-member2",
            uuid.UUID("00000000-0000-7000-8000-000000000004"),
            frozenset({"member"}),
            "Development Member Two",
        ),
    )
}

# Compared against when the username is unknown, so both failures take the same time.
_DUMMY_PASSWORD = b"hearth-no-such-account-placeholder"


def authenticate(username: str, password: str, *, enabled: bool) -> DevAccount | None:
    """The dev account for these credentials, or None (constant-time password comparison)."""
    account = DEV_ACCOUNTS.get(username) if enabled else None
    expected = account.password.encode() if account else _DUMMY_PASSWORD
    matches = hmac.compare_digest(password.encode(), expected)
    return account if account is not None and matches else None

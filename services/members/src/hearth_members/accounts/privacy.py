"""The account's part of a person's data export and erasure (registered in app.py)."""

from __future__ import annotations

import uuid
from typing import Any

from hearth_members.accounts.models import Account, AccountStatus
from servicekit.deps import UnitOfWork
from servicekit.ids import utcnow


async def export(uow: UnitOfWork, user_id: uuid.UUID) -> dict[str, Any]:
    """The account as the person may see it: never the password hash or the casefolded key."""
    account = await uow.session.get(Account, user_id)
    return {
        "account": (
            account.model_dump(mode="json", exclude={"password_hash", "login_key"})
            if account is not None
            else None
        )
    }


async def erase(uow: UnitOfWork, user_id: uuid.UUID) -> None:
    """Close the account: no login, no password, no link to the external identity."""
    account = await uow.session.get(Account, user_id)
    if account is not None:
        # A later sign-in through the IdP would start a fresh, unrelated account.
        account.login = account.login_key = account.password_hash = None
        account.external_subject = None
        account.name = ""
        account.status = AccountStatus.disabled
        account.updated_at = utcnow()
        uow.session.add(account)

"""Personal calendar feed tokens: an unguessable URL secret, stored only as its SHA-256."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field

from hearth_events.models import EventsModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import UtcDateTime, UtcDatetime


class CalendarToken(EventsModel, table=True):
    """One member's personal feed token (the secret itself is shown once, never stored)."""

    __tablename__ = "calendar_tokens"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    user_id: uuid.UUID = Field(index=True)
    # hex SHA-256 of the secret: a leaked table does not reveal working feed URLs.
    token_hash: str = Field(max_length=64, unique=True)
    label: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class CalendarTokenCreate(EventsModel):
    """Body of POST /calendar/tokens."""

    label: str | None = Field(default=None, max_length=100)


class CalendarTokenPublic(EventsModel):
    """A feed token as its owner sees it later (without the secret)."""

    id: uuid.UUID
    label: str | None
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None


class CalendarTokenIssued(CalendarTokenPublic):
    """A new feed token: the secret and the feed's path, shown this once."""

    token: str
    path: str

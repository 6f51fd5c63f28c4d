"""Identifiers: UUIDv7 where order helps (events, rows created over time)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from uuid_utils import compat


def uuid7() -> uuid.UUID:
    """A time-ordered UUIDv7 as a standard `uuid.UUID`."""
    return compat.uuid7()


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)

"""Column and field types every service shares: UTC time, and input every database can hold."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, model_validator
from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


def as_utc(value: datetime) -> datetime:
    """The same instant as an aware UTC datetime (naive values are taken to be UTC).

    Raises ValueError when that instant falls outside years 1-9999 in UTC (e.g.
    `9999-12-31T23:00:00-23:59`): a ValueError is what Pydantic turns into a 422, while the
    OverflowError from `astimezone` would pass through it as a 500.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("the time is out of range once converted to UTC") from exc


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
"""A Pydantic field type: any aware datetime in, UTC out."""


class UtcDateTime(TypeDecorator[datetime]):
    """TIMESTAMPTZ on PostgreSQL; on SQLite (which keeps no zone) read back as aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Store UTC."""
        return None if value is None else as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Return aware UTC whatever the backend gave back."""
        return None if value is None else as_utc(value)


# --- Input every database can hold -------------------------------------------------------------

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
"""An int for an INTEGER column (SQLModel's `int`): 32-bit on PostgreSQL."""

# C0 controls but tab, newline and carriage return: PostgreSQL cannot store NUL in text at all,
# and the others are never meant in names or prose (they forge log lines and break terminals).
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def forbidden_character(text: str) -> str | None:
    """The first C0 control character (tab, newline, CR aside) in text, as U+XXXX, or None."""
    found = _FORBIDDEN.search(text)
    return None if found is None else f"U+{ord(found.group()):04X}"


def refuse_unstorable(value: Any) -> None:
    """Raise ValueError when a decoded JSON value holds a C0 control or an int beyond 64 bits.

    Walks strings, lists, tuples and dicts (keys too) without recursion, so a deeply nested
    body cannot exhaust the stack; anything else (a model, a table row) is left alone.
    """
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            bad = forbidden_character(item)
            if bad:
                raise ValueError(f"{where or 'value'}: control character {bad} is not allowed")
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if not INT64_MIN <= item <= INT64_MAX:
                raise ValueError(f"{where or 'value'}: integer out of the 64-bit range")
        elif isinstance(item, dict):
            for key, sub in item.items():
                name = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and forbidden_character(key):
                    raise ValueError(f"{where or 'value'}: a key holds a control character")
                stack.append((name, sub))
        elif isinstance(item, (list, tuple)):
            stack.extend((f"{where}[{i}]", sub) for i, sub in enumerate(item))


class CleanInput(BaseModel):
    """Mixin of every request model: refuses what a database cannot hold, before field checks."""

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        refuse_unstorable(data)
        return data

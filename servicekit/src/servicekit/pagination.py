"""Cursor pagination: `?limit=&cursor=` in, `{"items": [...], "next_cursor": ...}` out."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Depends, Query
from pydantic import BaseModel

from servicekit.problems import Problem
from servicekit.types import as_utc

T = TypeVar("T")
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    """One page of a list and the cursor of the next page (None at the end)."""

    items: list[T]
    next_cursor: str | None = None


class PageParams(BaseModel):
    """Validated paging parameters."""

    limit: int
    after: list[Any] | None


def encode_cursor(values: list[Any]) -> str:
    """An opaque cursor for the sort key of the last item on a page."""
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def invalid_cursor() -> Problem:
    """The 422 every list answers for a cursor it did not make."""
    return Problem(422, "invalid-cursor", "Invalid cursor", "the cursor is not valid")


def decode_cursor(cursor: str) -> list[Any]:
    """The sort key inside a cursor; a 422 problem if it was tampered with."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(values, list):
            raise ValueError("cursor is not a list")
        return values
    except ValueError as exc:
        raise invalid_cursor() from exc


def cursor_key(after: list[Any], *kinds: type) -> tuple[Any, ...]:
    """The cursor's sort key read as `kinds` (uuid.UUID, datetime, int, str); else a 422.

    A cursor is client input: well-formed JSON can still hold a number where a UUID was, or
    one value too few, and that must be a 422, never a TypeError/AttributeError (a 500).
    """
    if len(after) != len(kinds):
        raise invalid_cursor()
    try:
        return tuple(_read(value, kind) for value, kind in zip(after, kinds, strict=True))
    except (TypeError, ValueError) as exc:
        raise invalid_cursor() from exc


def after_id(page: PageParams) -> uuid.UUID:
    """The id a newest-first-by-id page continues after (the cursor's only value); else a 422."""
    (ident,) = cursor_key(page.after or [], uuid.UUID)
    return ident  # type: ignore[no-any-return]


def _read(value: Any, kind: type) -> Any:
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("not an integer")
        return value
    if not isinstance(value, str):
        raise TypeError("not a string")
    if kind is str:
        return value
    if kind is uuid.UUID:
        return uuid.UUID(value)
    if kind is datetime:
        return as_utc(datetime.fromisoformat(value))
    raise AssertionError(f"cursor_key cannot read {kind!r}")  # a programming error, not input


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> PageParams:
    """Dependency: the limit and the decoded cursor."""
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)


# The one alias every list route takes; define no local copies.
PageDep = Annotated[PageParams, Depends(page_params)]


def make_page(rows: list[T], limit: int, key: Any) -> Page[T]:
    """Build a page from up to limit+1 rows (the extra one only says there is more)."""
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(items=rows, next_cursor=encode_cursor(key(rows[-1])))
    return Page(items=rows, next_cursor=None)

"""Cursor pagination: `?limit=&cursor=` in, `{"items": [...], "next_cursor": ...}` out."""

from __future__ import annotations

import base64
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel

from servicekit.problems import Problem

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


def decode_cursor(cursor: str) -> list[Any]:
    """The sort key inside a cursor; a 422 problem if it was tampered with."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(values, list):
            raise ValueError("cursor is not a list")
        return values
    except ValueError as exc:
        raise Problem(422, "invalid-cursor", "Invalid cursor", "the cursor is not valid") from exc


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> PageParams:
    """Dependency: the limit and the decoded cursor."""
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)


def make_page(rows: list[T], limit: int, key: Any) -> Page[T]:
    """Build a page from up to limit+1 rows (the extra one only says there is more)."""
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(items=rows, next_cursor=encode_cursor(key(rows[-1])))
    return Page(items=rows, next_cursor=None)

"""Reading the sort key out of a cursor without trusting it."""

from __future__ import annotations

import uuid

from servicekit.pagination import PageParams
from servicekit.problems import Problem


def after_id(page: PageParams) -> uuid.UUID:
    """The id a cursor points after; a forged or foreign cursor is a 422, never a 500."""
    try:
        return uuid.UUID(str(page.after[0]))  # type: ignore[index]
    except (ValueError, TypeError, IndexError) as exc:
        raise Problem(422, "invalid-cursor", "Invalid cursor", "the cursor is not valid") from exc

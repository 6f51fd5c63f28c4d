"""The personal-data registry: each package exports and erases its own rows about a person.

Profiles owns the access request (GET /me/export) and the erasure (DELETE /me) but not the
other packages' tables: app.py registers each package's exporter and eraser here, so profiles
imports none of their models.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import select

from servicekit.deps import UnitOfWork

Exporter = Callable[[UnitOfWork, uuid.UUID], Awaitable[dict[str, Any]]]
"""Returns the sections of the export document the package owns (key -> JSON value)."""
Eraser = Callable[[UnitOfWork, uuid.UUID], Awaitable[None]]
"""Wipes the package's personal data about the user in the caller's transaction (no commit)."""


@dataclass
class PrivacyRegistry:
    """The exporters and erasers, in the order their sections appear and their effects run."""

    exporters: list[Exporter] = field(default_factory=list)
    erasers: list[Eraser] = field(default_factory=list)


REGISTRY = PrivacyRegistry()


def register(*, exporters: list[Exporter], erasers: list[Eraser]) -> None:
    """Install the packages' exporters and erasers (app.py; replaces, so wiring is idempotent)."""
    REGISTRY.exporters[:] = exporters
    REGISTRY.erasers[:] = erasers


async def export_sections(uow: UnitOfWork, user_id: uuid.UUID) -> dict[str, Any]:
    """Every registered package's sections, in registration order."""
    sections: dict[str, Any] = {}
    for exporter in REGISTRY.exporters:
        sections.update(await exporter(uow, user_id))
    return sections


async def erase_everywhere(uow: UnitOfWork, user_id: uuid.UUID) -> None:
    """Run every registered eraser, in registration order."""
    for eraser in REGISTRY.erasers:
        await eraser(uow, user_id)


async def rows_of(uow: UnitOfWork, model: Any, column: Any, user_id: uuid.UUID) -> list[Any]:
    """The model's rows whose `column` is the user, as JSON-ready dicts."""
    found = (await uow.session.exec(select(model).where(column == user_id))).all()
    return [r.model_dump(mode="json") for r in found]

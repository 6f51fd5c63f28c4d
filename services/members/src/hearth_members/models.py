"""Members' table base: its own metadata (plus the kernel's outbox/inbox/dead letters).

Each package's models.py holds its own tables and request/response models.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import declared_attr, registry
from sqlmodel import SQLModel

from servicekit.tables import KitTables
from servicekit.types import CleanInput


class MembersModel(SQLModel, CleanInput, registry=registry()):
    """Base of members' tables: its own metadata, because members owns its own database."""


class Versioned:
    """A row whose `version` the ORM bumps on every UPDATE (mapper `version_id_col`).

    The one place a version grows: members' snapshots carry it (hearth_members.snapshots), and
    a write that lost a race to another one fails (StaleDataError, a 409) instead of undoing it.
    """

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


metadata = MembersModel.metadata


kit = KitTables(metadata)

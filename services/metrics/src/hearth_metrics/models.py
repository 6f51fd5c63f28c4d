"""Metrics' table base: its own metadata (plus the kernel's outbox/inbox/dead letters).

Each package's models.py holds its own tables and request/response models; app.py imports
them all, so `metadata` holds every table by the time migrations or the service use it.
"""

from __future__ import annotations

from sqlalchemy.orm import registry
from sqlmodel import SQLModel

from servicekit.tables import KitTables
from servicekit.types import CleanInput


class MetricsModel(SQLModel, CleanInput, registry=registry()):
    """Base of metrics' tables: its own metadata, because metrics owns its own database."""


metadata = MetricsModel.metadata
kit = KitTables(metadata)

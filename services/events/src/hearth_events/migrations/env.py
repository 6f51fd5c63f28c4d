"""Alembic environment of the events database."""

import hearth_events.app  # noqa: F401  # imports every package, so every table is in metadata
from hearth_events.models import metadata
from servicekit.migrations import run_env

run_env(metadata)

"""Alembic environment of the events database."""

from hearth_events.models import metadata
from servicekit.migrations import run_env

run_env(metadata)

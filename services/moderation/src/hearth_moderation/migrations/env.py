"""Alembic environment of the moderation database."""

from hearth_moderation.models import metadata
from servicekit.migrations import run_env

run_env(metadata)

"""Alembic environment of the moderation database."""

import hearth_moderation.app  # noqa: F401  # imports every module, so every table is in metadata
from hearth_moderation.models import metadata
from servicekit.migrations import run_env

run_env(metadata)

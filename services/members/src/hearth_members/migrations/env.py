"""Alembic environment of the members database."""

import hearth_members.app  # noqa: F401  # imports every module, so every table is in metadata
from hearth_members.models import metadata
from servicekit.migrations import run_env

run_env(metadata)

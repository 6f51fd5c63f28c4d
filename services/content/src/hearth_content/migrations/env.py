"""Alembic environment of the content database."""

from hearth_content.models import metadata
from servicekit.migrations import run_env

run_env(metadata)

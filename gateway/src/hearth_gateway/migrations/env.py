"""Alembic environment of the gateway database."""

from hearth_gateway.models import metadata
from servicekit.migrations import run_env

run_env(metadata)

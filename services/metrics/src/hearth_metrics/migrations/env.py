"""Alembic environment of the metrics database."""

from hearth_metrics.models import metadata
from servicekit.migrations import run_env

run_env(metadata)

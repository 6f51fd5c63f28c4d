"""Alembic environment of the kernel's test service (used where a test needs real migrations)."""

import kitapp
from servicekit.migrations import run_env

run_env(kitapp.metadata)

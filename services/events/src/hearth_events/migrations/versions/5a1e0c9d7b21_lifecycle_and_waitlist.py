"""lifecycle and waitlist: activity state, queue counter, registration positions

Existing activities were published on creation, so they start in `published`; existing
registrations are all confirmed seats and keep position 0 (ordered among themselves by id).
Kind `other` joins the activity kinds. Downgrading leaves it in PostgreSQL's enum type
(PostgreSQL cannot drop an enum value).

Revision ID: 5a1e0c9d7b21
Revises: c919125adb6e
Create Date: 2026-12-04 17:50:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5a1e0c9d7b21"
down_revision: str | Sequence[str] | None = "c919125adb6e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        # The kind column is a native enum on PostgreSQL (a plain string on SQLite).
        op.execute("ALTER TYPE activitykind ADD VALUE IF NOT EXISTS 'other'")
    with op.batch_alter_table("activities") as batch:
        batch.add_column(
            sa.Column("state", sa.String(length=30), server_default="published", nullable=False)
        )
        batch.add_column(
            sa.Column("queue_length", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("registrations") as batch:
        batch.add_column(sa.Column("position", sa.Integer(), server_default="0", nullable=False))
        batch.create_index(
            "ix_registrations_queue", ["activity_id", "status", "position"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("registrations") as batch:
        batch.drop_index("ix_registrations_queue")
        batch.drop_column("position")
    with op.batch_alter_table("activities") as batch:
        batch.drop_column("queue_length")
        batch.drop_column("state")

"""The kernel's test service: notes and the consumer's effects.

Revision ID: kittest_0001
Revises:
Create Date: 2026-11-24

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "kittest_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("kittest",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the kit tables."""
    op.create_table(
        "notes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "notes_seen",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("note_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notes_seen_note_id", "notes_seen", ["note_id"])


def downgrade() -> None:
    """Drop the kit tables."""
    op.drop_index("ix_notes_seen_note_id", table_name="notes_seen")
    op.drop_table("notes_seen")
    op.drop_table("notes")

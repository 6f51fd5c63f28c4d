"""moderation's queue decisions: the reason a rejected post or comment shows its author, and
the queue entry that decided it (an appeal lifted against that entry restores the item)

Revision ID: d2a7c4e9b610
Revises: 5c8e2f1a7b93
Create Date: 2026-12-04 23:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d2a7c4e9b610"
down_revision: str | Sequence[str] | None = "5c8e2f1a7b93"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    for table in ("posts", "comments"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("rejection_reason", sa.Text(), nullable=True))
            batch.add_column(sa.Column("moderation_case_id", sa.Uuid(), nullable=True))
            batch.create_index(f"ix_{table}_moderation_case_id", ["moderation_case_id"])


def downgrade() -> None:
    """Downgrade schema."""
    for table in ("posts", "comments"):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_moderation_case_id")
            batch.drop_column("moderation_case_id")
            batch.drop_column("rejection_reason")

"""Q&A questions screened by moderation: hold reasons, the text as asked (when censored), the
screening, and the queue decision (its reason, its entry for an appeal)

Revision ID: e7c1d3a5f920
Revises: a0e171e561fa
Create Date: 2026-12-04 23:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e7c1d3a5f920"
down_revision: str | Sequence[str] | None = "a0e171e561fa"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("questions") as batch:
        batch.add_column(sa.Column("hold_reasons", sa.JSON(), server_default="[]", nullable=False))
        batch.add_column(sa.Column("original_text", sa.Text(), nullable=True))
        batch.add_column(sa.Column("screening_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("rejection_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("moderation_case_id", sa.Uuid(), nullable=True))
        batch.create_index("ix_questions_moderation_case_id", ["moderation_case_id"])


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("questions") as batch:
        batch.drop_index("ix_questions_moderation_case_id")
        for column in (
            "moderation_case_id",
            "rejection_reason",
            "screening_id",
            "original_text",
            "hold_reasons",
        ):
            batch.drop_column(column)

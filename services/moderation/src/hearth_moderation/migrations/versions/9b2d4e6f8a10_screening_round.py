"""screening round: a resubmitted post is screened again

Revision ID: 9b2d4e6f8a10
Revises: f43e0f459f99
Create Date: 2026-12-04 18:52:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9b2d4e6f8a10"
down_revision: str | Sequence[str] | None = "f43e0f459f99"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("screenings") as batch:
        batch.add_column(sa.Column("round", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("screenings") as batch:
        batch.drop_column("round")

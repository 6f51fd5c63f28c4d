"""snapshot read models: version replaces as_of on communities and memberships

The read models are fed by members' snapshot events, applied when their version is newer.
Existing rows get version 0, so the first snapshot of each (or a republish) replaces them.

Revision ID: 55efaef0f4c6
Revises: 6ead3cc6024a
Create Date: 2026-12-04 11:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "55efaef0f4c6"
down_revision: str | Sequence[str] | None = "6ead3cc6024a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    for table in ("communities", "memberships"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("version", sa.Integer(), server_default="0", nullable=False))
            batch.drop_column("as_of")


def downgrade() -> None:
    """Downgrade schema."""
    for table in ("memberships", "communities"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column(
                    "as_of",
                    sa.DateTime(timezone=True),
                    server_default=sa.text("CURRENT_TIMESTAMP"),
                    nullable=False,
                )
            )
            batch.drop_column("version")

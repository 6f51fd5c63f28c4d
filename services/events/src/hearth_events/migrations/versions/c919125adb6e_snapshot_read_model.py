"""snapshot read model: version replaces as_of on memberships

The read model is fed by members' membership snapshots, applied when their version is newer.
Existing rows get version 0, so the first snapshot of each (or a republish) replaces them.

Revision ID: c919125adb6e
Revises: 1104e1f1d655
Create Date: 2026-12-04 11:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c919125adb6e"
down_revision: str | Sequence[str] | None = "1104e1f1d655"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("memberships") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), server_default="0", nullable=False))
        batch.drop_column("as_of")


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("memberships") as batch:
        batch.add_column(
            sa.Column(
                "as_of",
                sa.DateTime(timezone=True),
                server_default=sa.text("CURRENT_TIMESTAMP"),
                nullable=False,
            )
        )
        batch.drop_column("version")

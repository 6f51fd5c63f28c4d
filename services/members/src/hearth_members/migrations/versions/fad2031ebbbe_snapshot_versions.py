"""snapshot versions: communities.version and memberships.version

The ORM bumps them on every UPDATE (mapper version_id_col); members' snapshot events carry
them. Existing rows start at 1, as new rows do.

Revision ID: fad2031ebbbe
Revises: eb8d88c8df92
Create Date: 2026-12-04 11:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "fad2031ebbbe"
down_revision: str | Sequence[str] | None = "eb8d88c8df92"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    for table in ("communities", "memberships"):
        op.add_column(table, sa.Column("version", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    """Downgrade schema."""
    for table in ("memberships", "communities"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("version")

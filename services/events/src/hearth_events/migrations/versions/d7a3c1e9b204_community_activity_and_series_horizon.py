"""community activity read model; series materialized_until

`community_activity_days` keeps content's posts, comments and reactions per community per UTC
day (the summary's week before vs after). `activity_series.materialized_until` is the instant
up to which a series' rule has been turned into activities; the scheduler moves it on. Existing
series keep NULL: the scheduler then starts from their first start plus their horizon, as
they were created.

Revision ID: d7a3c1e9b204
Revises: e7c1d3a5f920
Create Date: 2026-12-04 23:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d7a3c1e9b204"
down_revision: str | Sequence[str] | None = "e7c1d3a5f920"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "community_activity_days",
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("posts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("comments", sa.Integer(), server_default="0", nullable=False),
        sa.Column("reactions", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("community_id", "day"),
    )
    with op.batch_alter_table("activity_series") as batch:
        batch.add_column(sa.Column("materialized_until", sa.DateTime(timezone=True)))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("activity_series") as batch:
        batch.drop_column("materialized_until")
    op.drop_table("community_activity_days")

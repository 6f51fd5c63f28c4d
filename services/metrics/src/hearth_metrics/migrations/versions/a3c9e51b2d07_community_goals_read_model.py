"""community goals read model

Revision ID: a3c9e51b2d07
Revises: 7fd0ea4643e0
Create Date: 2026-12-04 23:20:00.000000

"""
# ruff: noqa: E501, I001, RUF100 - Alembic revision
# mypy: ignore-errors

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401 - columns use sqlmodel types
from alembic import op


# revision identifiers, used by Alembic.
revision: str = 'a3c9e51b2d07'
down_revision: str | Sequence[str] | None = '7fd0ea4643e0'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('community_goals',
    sa.Column('goal_id', sa.Uuid(), nullable=False),
    sa.Column('community_id', sa.Uuid(), nullable=False),
    sa.Column('metric', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
    sa.Column('target', sa.Float(), nullable=True),
    sa.Column('deadline', sa.Date(), nullable=True),
    sa.Column('set_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('goal_id')
    )
    op.create_index(op.f('ix_community_goals_community_id'), 'community_goals', ['community_id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f('ix_community_goals_community_id'), table_name='community_goals')
    op.drop_table('community_goals')

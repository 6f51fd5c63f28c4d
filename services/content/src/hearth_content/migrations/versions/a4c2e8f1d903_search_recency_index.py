"""search: an index on search_documents.created_at, for ranking the newest matches

Revision ID: a4c2e8f1d903
Revises: 3f1c9a7d2b40
Create Date: 2026-12-04 19:30:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "a4c2e8f1d903"
down_revision: str | Sequence[str] | None = "3f1c9a7d2b40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index("ix_search_documents_created_at", "search_documents", ["created_at"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_search_documents_created_at", "search_documents")

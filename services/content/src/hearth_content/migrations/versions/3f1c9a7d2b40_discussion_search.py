"""discussion and search: comments, reactions, and the search documents with their index

The full-text index depends on the dialect: a GIN index over a stored generated tsvector column
(to_tsvector('simple', tokens)) on PostgreSQL, an FTS5 virtual table `search_fts` (doc_id, tokens) on SQLite.

Revision ID: 3f1c9a7d2b40
Revises: 19c888a7805b
Create Date: 2026-12-04 17:45:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3f1c9a7d2b40"
down_revision: str | Sequence[str] | None = "19c888a7805b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "comments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("post_id", sa.Uuid(), nullable=False),
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.create_index("ix_comments_post_id_id", ["post_id", "id"], unique=False)
    op.create_table(
        "reactions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("post_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("post_id", "member_id", "kind", name="uq_reactions_post_member_kind"),
    )
    with op.batch_alter_table("reactions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reactions_post_id"), ["post_id"], unique=False)
    op.create_table(
        "search_documents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("post_id", sa.Uuid(), nullable=False),
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("search_documents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_search_documents_community_created", ["community_id", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_search_documents_post_id"), ["post_id"], unique=False
        )
    if op.get_bind().dialect.name == "postgresql":
        # Stored, so matching and ranking read the vector instead of re-parsing tokens per row.
        op.execute(
            "ALTER TABLE search_documents ADD COLUMN tsv tsvector "
            "GENERATED ALWAYS AS (to_tsvector('simple', tokens)) STORED"
        )
        op.execute("CREATE INDEX ix_search_documents_tsv ON search_documents USING gin (tsv)")
    else:
        # The column and index exist so the schema matches the models; FTS5 does the work.
        op.add_column("search_documents", sa.Column("tsv", sa.Text(), nullable=True))
        op.create_index("ix_search_documents_tsv", "search_documents", ["tsv"])
        op.execute("CREATE VIRTUAL TABLE search_fts USING fts5(doc_id UNINDEXED, tokens)")


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_search_documents_tsv")
    else:
        op.drop_index("ix_search_documents_tsv", "search_documents")
        op.execute("DROP TABLE search_fts")
    with op.batch_alter_table("search_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_search_documents_post_id"))
        batch_op.drop_index("ix_search_documents_community_created")
    op.drop_table("search_documents")
    with op.batch_alter_table("reactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reactions_post_id"))
    op.drop_table("reactions")
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_index("ix_comments_post_id_id")
    op.drop_table("comments")

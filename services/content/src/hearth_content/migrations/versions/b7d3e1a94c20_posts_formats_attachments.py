"""posts formats: kinds, authorship, rendered body, revisions, soft delete, pin/feature/lock,
shares, and attachments

Existing posts become member-submitted articles; their body_html is rendered from the stored
Markdown source here, so no post is served without its sanitized HTML.

Revision ID: b7d3e1a94c20
Revises: 55efaef0f4c6
Create Date: 2026-12-04 17:50:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7d3e1a94c20"
down_revision: str | Sequence[str] | None = "55efaef0f4c6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NEW_POST_COLUMNS = (
    "kind",
    "partner_name",
    "authorship",
    "body_html",
    "accepted_answer_id",
    "edited_at",
    "revision",
    "deleted_at",
    "deleted_by",
    "pin_order",
    "featured",
    "comments_locked",
    "shared_from_id",
    "share_count",
)


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("posts") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(16), server_default="article", nullable=False)
        )
        batch.add_column(sa.Column("partner_name", sa.String(200), nullable=True))
        batch.add_column(
            sa.Column("authorship", sa.String(16), server_default="member", nullable=False)
        )
        batch.add_column(sa.Column("body_html", sa.Text(), server_default="", nullable=False))
        batch.add_column(sa.Column("accepted_answer_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("revision", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("deleted_by", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("pin_order", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("featured", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(
            sa.Column("comments_locked", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(sa.Column("shared_from_id", sa.Uuid(), nullable=True))
        batch.add_column(
            sa.Column("share_count", sa.Integer(), server_default="0", nullable=False)
        )
        batch.create_index("ix_posts_shared_from_id", ["shared_from_id"], unique=False)
    op.create_table(
        "post_revisions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("post_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("editor_id", sa.Uuid(), nullable=False),
        sa.Column("edited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("note", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_post_revisions_post_id_number", "post_revisions", ["post_id", "number"], unique=True
    )
    op.create_table(
        "attachments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("post_id", sa.Uuid(), nullable=False),
        sa.Column("uploader_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("storage_key", sa.String(300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_attachments_post_id", "attachments", ["post_id"], unique=False)
    _render_existing_bodies()


def _render_existing_bodies() -> None:
    """Fill body_html of existing posts from their Markdown source (sanitized)."""
    from hearth_content.rendering import render_markdown

    bind = op.get_bind()
    posts = sa.table("posts", sa.column("id", sa.Uuid()), sa.column("body"), sa.column("body_html"))
    for row in bind.execute(sa.select(posts.c.id, posts.c.body)).all():
        bind.execute(
            posts.update()
            .where(posts.c.id == row.id)
            .values(body_html=render_markdown(row.body or ""))
        )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_attachments_post_id", table_name="attachments")
    op.drop_table("attachments")
    op.drop_index("ix_post_revisions_post_id_number", table_name="post_revisions")
    op.drop_table("post_revisions")
    with op.batch_alter_table("posts") as batch:
        batch.drop_index("ix_posts_shared_from_id")
        for name in reversed(_NEW_POST_COLUMNS):
            batch.drop_column(name)

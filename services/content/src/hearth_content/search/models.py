"""The search-document table: one row per post or comment, tokens computed at write time."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, Computed, Index, String, Text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlmodel import Field

from hearth_content.models import ContentModel
from servicekit.types import UtcDateTime


class SearchDocument(ContentModel, table=True):
    """A post or comment as search sees it; visibility is decided by joining its post."""

    __tablename__ = "search_documents"
    __table_args__ = (
        Index("ix_search_documents_community_created", "community_id", "created_at"),
        # Search ranks the newest matches first (search/service.py _candidates).
        Index("ix_search_documents_created_at", "created_at"),
        # PostgreSQL's full-text index: `simple` config, because tokens are already segmented
        # and stemmed in Python (jieba + Snowball); SQLite uses the FTS5 table `search_fts`.
        Index("ix_search_documents_tsv", "tsv", postgresql_using="gin").ddl_if(
            dialect="postgresql"
        ),
    )

    id: uuid.UUID = Field(primary_key=True)  # the post's or the comment's id
    kind: str = Field(sa_type=String(12))  # "post" | "comment"
    post_id: uuid.UUID = Field(index=True)
    community_id: uuid.UUID
    author_id: uuid.UUID
    format: str = Field(sa_type=String(16))
    created_at: datetime = Field(sa_type=UtcDateTime)
    title: str = Field(default="", sa_type=Text)
    body: str = Field(default="", sa_type=Text)
    tokens: str = Field(default="", sa_type=Text)
    # PostgreSQL: a stored generated tsvector, so matching and ranking never re-parse tokens.
    # SQLite: an unused nullable column (its index is the FTS5 table).
    tsv: str | None = Field(
        default=None,
        sa_column=Column(
            TSVECTOR().with_variant(Text(), "sqlite"),
            Computed("to_tsvector('simple', tokens)", persisted=True),
            nullable=True,
        ),
    )


class SearchHit(ContentModel):
    """One search result with a highlighted snippet (`<mark>` around matched words)."""

    id: uuid.UUID
    kind: str
    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    format: str
    created_at: datetime
    title: str
    snippet: str
    score: float

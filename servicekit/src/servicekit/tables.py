"""The kernel's tables (outbox, inbox, dead letters, idempotency keys), in each service's metadata.

Core tables rather than models: every service has its own metadata (its own database), so the
kernel defines the same three tables into whichever metadata a service hands it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
)

from servicekit.types import UtcDateTime

_BigId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements only INTEGER


class KitTables:
    """Outbox, inbox, dead-letter and idempotency-key tables in one service's metadata."""

    def __init__(self, metadata: MetaData) -> None:
        self.outbox = Table(
            "outbox",
            metadata,
            Column("seq", _BigId, primary_key=True, autoincrement=True),
            Column("event_id", Uuid, nullable=False, unique=True),
            Column("event_type", String(200), nullable=False),
            Column("nats_subject", String(300), nullable=False),
            Column("source", String(200), nullable=False),
            Column("ce_subject", String(200)),
            Column("occurred_at", UtcDateTime, nullable=False),
            Column("data", JSON, nullable=False),
            Column("traceparent", String(100)),
            Column("tracestate", String(500)),
            Column("published_at", UtcDateTime),
            Column("attempts", Integer, nullable=False, server_default="0"),
            Column("last_error", Text),
            Index(
                "ix_outbox_pending",
                "seq",
                postgresql_where=sa.text("published_at IS NULL"),
                sqlite_where=sa.text("published_at IS NULL"),
            ),
            Index("ix_outbox_published_at", "published_at"),
        )
        self.inbox = Table(
            "inbox",
            metadata,
            Column("consumer", String(120), primary_key=True),
            Column("event_id", Uuid, primary_key=True),
            Column("event_type", String(200), nullable=False),
            Column("handled_at", UtcDateTime, nullable=False),
        )
        self.dead_letters = Table(
            "dead_letters",
            metadata,
            Column("id", Uuid, primary_key=True),
            Column("consumer", String(120), nullable=False, index=True),
            Column("event_id", Uuid),
            Column("event_type", String(200)),
            Column("nats_subject", String(300), nullable=False),
            Column("headers", JSON, nullable=False),
            Column("body", Text, nullable=False),
            Column("error", Text, nullable=False),
            Column("deliveries", Integer, nullable=False),
            Column("created_at", UtcDateTime, nullable=False),
            Column("replayed_at", UtcDateTime),
        )
        self.idempotency_keys = Table(
            "idempotency_keys",
            metadata,
            Column("principal", Uuid, primary_key=True),
            Column("key", String(200), primary_key=True),
            Column("fingerprint", String(64), nullable=False),
            Column("status", Integer),  # NULL while the first request is in flight
            Column("content_type", String(200)),
            Column("body", LargeBinary),
            Column("created_at", UtcDateTime, nullable=False, index=True),
        )

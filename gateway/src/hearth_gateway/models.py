"""The gateway's own small database: refresh-token families, API keys, webhooks, and the
kernel's tables (the outbox through which it publishes its few events)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)

from servicekit.tables import KitTables
from servicekit.types import UtcDateTime

metadata = MetaData()
# The kernel's outbox (with inbox, dead letters, idempotency keys, unused here) from the
# `servicekit` migration branch: the gateway publishes gateway.webhook.disabled.v1 with the same
# outbox and relay as every service, in the transaction that disables the subscription.
kit = KitTables(metadata)

# A family is one login: every refresh token rotated from it shares the family. Reusing a
# token that was already rotated means it was stolen (or replayed): the whole family is revoked.
refresh_families = Table(
    "refresh_families",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("subject", Uuid, nullable=False, index=True),
    Column("name", String(200), nullable=True),
    Column("roles", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("revoked_reason", String(32), nullable=True),
)

# Only SHA-256 digests of refresh tokens are stored (they are 256-bit random secrets).
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("family_id", Uuid, ForeignKey("refresh_families.id"), nullable=False, index=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("rotated_at", UtcDateTime, nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("secret_hash", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("created_by", Uuid, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("last_used_at", UtcDateTime, nullable=True),
)

# Webhooks: every delivery is signed with the subscription's secret, so it cannot be hashed; it
# is stored AES-256-GCM encrypted (servicekit.crypto, associated data = the subscription id).
# After a roll the previous secret keeps signing too, until previous_secret_expires_at.
webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("url", String(2000), nullable=False),
    Column("event_types", JSON, nullable=False),  # patterns such as members.member.* or *
    Column("secret_encrypted", String(1000), nullable=False),
    Column("previous_secret_encrypted", String(1000), nullable=True),
    Column("previous_secret_expires_at", UtcDateTime, nullable=True),
    Column("status", String(16), nullable=False),  # active | disabled
    Column("disabled_reason", String(200), nullable=True),
    Column("failure_streak", Integer, nullable=False, default=0),
    Column("created_by", Uuid, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# One row per (subscription, event): the delivery log, and the retry queue (status pending, or
# held while the subscription is disabled).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column(
        "subscription_id",
        Uuid,
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event_id", Uuid, nullable=False),
    Column("event_type", String(200), nullable=False),
    Column("event_time", UtcDateTime, nullable=False),
    Column("payload", Text, nullable=False),
    # pending | sending (claimed) | held (subscription disabled) | delivered | failed
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", String(500), nullable=True),
    Column("delivered_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("subscription_id", "event_id", name="uq_webhook_delivery_event"),
)
Index(
    "ix_webhook_deliveries_due", webhook_deliveries.c.status, webhook_deliveries.c.next_attempt_at
)
Index(
    "ix_webhook_deliveries_log",
    webhook_deliveries.c.subscription_id,
    webhook_deliveries.c.event_time,
)

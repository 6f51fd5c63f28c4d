"""Members service settings (env prefix HEARTH_MEMBERS_, falling back to HEARTH_)."""

from __future__ import annotations

import uuid
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class MembersSettings(ServiceSettings):
    """Settings of the members service."""

    model_config = SettingsConfigDict(env_prefix="HEARTH_MEMBERS_", extra="ignore")

    service_name: str = "members"

    # Notification delivery: the inbox always; a webhook and/or SMTP when configured.
    notify_webhook_url: str | None = None
    notify_webhook_secret: SecretStr | None = None
    notify_webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "hearth@localhost"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)

    # The durable delivery queue (notification_deliveries) and the sender pass that drains it.
    # The pass also runs at once after a commit that queued deliveries; the tick only bounds
    # how late a retry (or a row left by a stopped replica) is picked up.
    notify_delivery_tick_seconds: float = Field(default=5.0, gt=0)
    notify_delivery_max_attempts: int = Field(default=10, ge=1)
    # Retry n waits about backoff * 2**(n-1) (between half and all of it: jitter), capped.
    notify_delivery_backoff_seconds: float = Field(default=10.0, gt=0)
    notify_delivery_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    # How long a claimed ("sending") row belongs to its sender; after that another replica
    # takes it (the sender stopped). Must outlast one send (validated below).
    notify_delivery_lease_seconds: float = Field(default=60.0, gt=0)
    notify_delivery_batch: int = Field(default=20, ge=1, le=500)
    notify_delivery_concurrency: int = Field(default=8, ge=1, le=64)

    # Member PII: AES-GCM keyring {kid: base64 32-byte key}, the active kid for new writes,
    # and a separate HMAC key for the blind index. Development generates them under keys_dir.
    pii_keys: dict[str, SecretStr] = {}
    pii_active_kid: str | None = None
    pii_index_key: SecretStr | None = None
    keys_dir: Path = Path("./var/keys")

    # Cleanup: how long a member has between the notice and the removal, and how often the
    # loop looks for removals that are due.
    cleanup_grace_days: float = 7.0
    cleanup_interval_seconds: float = Field(default=30.0, gt=0)
    # How often the care journeys tick (was read by a name no setting had: always 30 s).
    care_tick_seconds: float = Field(default=30.0, gt=0)

    # The only caller of /internal/accounts/*: the subject the gateway signs its own service
    # assertion with (hearth_gateway.accounts.GATEWAY_SERVICE_SUBJECT).
    gateway_service_subject: uuid.UUID = uuid.UUID("00000000-0000-7000-8000-0000000000ff")

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> MembersSettings:
        # A lease shorter than a send would let a second replica send while the first still
        # waits for the receiver: a duplicate on every slow delivery.
        longest = max(self.notify_webhook_timeout_seconds, self.smtp_timeout_seconds)
        if self.notify_delivery_lease_seconds <= 2 * longest:
            raise ValueError(
                "HEARTH_MEMBERS_NOTIFY_DELIVERY_LEASE_SECONDS must be more than twice the "
                f"longest send timeout ({longest} s)"
            )
        return self

    @model_validator(mode="after")
    def _pii_keys_in_production(self) -> MembersSettings:
        if self.environment == "production":
            missing = []
            if not self.pii_keys or not self.pii_active_kid:
                missing.append("HEARTH_MEMBERS_PII_KEYS and HEARTH_MEMBERS_PII_ACTIVE_KID")
            elif self.pii_active_kid not in self.pii_keys:
                missing.append("PII_ACTIVE_KID must name a key in PII_KEYS")
            if not self.pii_index_key:
                missing.append("HEARTH_MEMBERS_PII_INDEX_KEY")
            if self.notify_webhook_url and not self.notify_webhook_secret:
                missing.append("HEARTH_MEMBERS_NOTIFY_WEBHOOK_SECRET (webhook is configured)")
            if missing:
                raise ValueError("unsafe production settings: " + "; ".join(missing))
        return self

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
    notify_webhook_timeout_seconds: float = 5.0
    notify_webhook_attempts: int = 3
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "hearth@localhost"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False

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

    # The only caller of /internal/accounts/*: the subject the gateway signs its own service
    # assertion with (hearth_gateway.accounts.GATEWAY_SERVICE_SUBJECT).
    gateway_service_subject: uuid.UUID = uuid.UUID("00000000-0000-7000-8000-0000000000ff")

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

"""Settings: an env prefix per service, shared HEARTH_* fallbacks, fail fast in production."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

Environment = Literal["development", "test", "production"]


class ServiceSettings(BaseSettings):
    """Settings every Hearth process shares; subclasses set `env_prefix` (e.g. HEARTH_MEMBERS_).

    Each field is read from `<service prefix><FIELD>` first, then from the platform-wide
    `HEARTH_<FIELD>`, so one NATS URL or key file can serve every service on a laptop while
    Kubernetes can still set each one separately. `NATS_URL` is honoured as the conventional name.
    """

    model_config = SettingsConfigDict(env_prefix="HEARTH_", extra="ignore")

    service_name: str = "hearth"
    environment: Environment = "development"
    database_url: str = ""
    # Connections each process keeps open (as many again may open under a burst): replicas
    # times 2 times this must stay under the database's max_connections.
    database_pool_size: int = Field(10, ge=1, le=100)
    nats_url: str = "nats://127.0.0.1:4222"
    subject_prefix: str = "hearth"
    identity_public_key_file: Path | None = None
    identity_public_key: str | None = None
    otel_exporter: Literal["none", "console", "otlp"] = "none"
    relay_batch_size: int = 100
    relay_poll_seconds: float = 0.5
    outbox_retention_hours: float = 24.0
    consumer_max_deliver: int = 5
    # Short on purpose: after a broker crash, messages that were in flight come back after
    # ack_wait. Long handlers are not redelivered: the consumer heartbeats (+WPI) every
    # ack_wait/2 while they run. See docs/operations.md.
    consumer_ack_wait_seconds: float = 3.0
    # How long stop() lets a busy consumer finish the message in hand.
    consumer_drain_seconds: float = 30.0
    consumer_backoff_seconds: list[float] = [0.5, 2.0, 10.0, 30.0, 60.0]
    stream_max_age_days: float = 30.0
    stream_replicas: int = 1
    log_level: str = "INFO"
    # One INFO line per request (method, route template, status, duration, request and trace
    # ids; never the raw path or query string), in place of uvicorn's access log.
    request_log: bool = True
    # Encrypts the responses the idempotency store keeps (they can hold PII): a servicekit.crypto
    # keyring document `{"active_kid": "k1", "keys": {"k1": "<base64 32 bytes>"}}`, so keys
    # rotate. Required in production (the runtime refuses to start without it); development
    # without it uses a key made per process (see servicekit.idempotency.keyring_from).
    idempotency_keyring: SecretStr | None = None
    idempotency_sweep_seconds: float = 300.0

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Service prefix wins over the shared HEARTH_ prefix."""
        shared = EnvSettingsSource(settings_cls, env_prefix="HEARTH_")
        return init_settings, env_settings, shared, dotenv_settings, file_secret_settings

    @model_validator(mode="before")
    @classmethod
    def _conventional_env(cls, data: Any) -> Any:
        if isinstance(data, dict) and "nats_url" not in data and os.environ.get("NATS_URL"):
            data["nats_url"] = os.environ["NATS_URL"]
        return data

    @model_validator(mode="after")
    def _defaults_and_production_guard(self) -> ServiceSettings:
        if not self.database_url:
            self.database_url = f"sqlite:///./var/{self.service_name}.db"
        if self.environment == "production":
            problems = []
            if self.database_url.startswith("sqlite"):
                problems.append("database_url must be PostgreSQL in production")
            if not (self.identity_public_key or self.identity_public_key_file):
                problems.append("identity public key must be configured in production")
            if problems:
                raise ValueError("unsafe production settings: " + "; ".join(problems))
        return self

    def identity_public_key_pem(self) -> str | None:
        """The gateway's assertion-verification key as PEM text, from the value or the file."""
        if self.identity_public_key:
            return self.identity_public_key
        if self.identity_public_key_file:
            return self.identity_public_key_file.read_text()
        return None

"""Gateway settings: upstream map, signing keys, limits; fail fast on unsafe production values."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import Field, IPvAnyNetwork, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from hearth_gateway.oidc import ExternalIssuer
from servicekit.settings import ServiceSettings

CONTEXT_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")

DEFAULT_UPSTREAMS: dict[str, str] = {
    "members": "http://127.0.0.1:8001",
    "content": "http://127.0.0.1:8002",
    "events": "http://127.0.0.1:8003",
    "moderation": "http://127.0.0.1:8004",
    "metrics": "http://127.0.0.1:8005",
}


class GatewaySettings(ServiceSettings):
    """Everything the gateway reads from HEARTH_GATEWAY_* (falling back to HEARTH_*)."""

    model_config = SettingsConfigDict(env_prefix="HEARTH_GATEWAY_", extra="ignore")

    service_name: str = "gateway"
    upstreams: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_UPSTREAMS))
    assertion_private_key_file: Path | None = None
    token_private_key_file: Path | None = None
    token_issuer: str = "hearth"  # noqa: S105 - an issuer name, not a secret
    token_audience: str = "hearth-api"  # noqa: S105 - an audience name, not a secret
    token_leeway_seconds: int = Field(default=30, ge=0, le=300)
    access_token_ttl_seconds: int = Field(default=900, gt=0, le=86_400)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    # Capability URLs: GETs whose unguessable path segment is the credential (a calendar app
    # subscribing to a personal feed sends no header). Matched against /api/<context>/<path>;
    # the upstream sees the anonymous principal and checks the token itself.
    capability_paths: list[str] = [r"^/api/events/calendar/feeds/[A-Za-z0-9_-]{16,128}\.ics$"]
    upstream_timeout_seconds: float = Field(default=10.0, gt=0)
    upstream_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    # Per upstream and gateway process. Measured (gateway/README.md, "Upstream pool size"):
    # past a few dozen connections to one service process the gateway spends more CPU per
    # request (c=64 fell 7-33% below c=8 with 256); 16 keeps it flat and queues the rest.
    upstream_connection_limit: int = Field(default=16, gt=0)
    upstream_keepalive_seconds: float = Field(default=4.0, gt=0)
    readiness_timeout_seconds: float = Field(default=2.0, gt=0)
    # SIGTERM: in-flight requests get this long to finish (Kubernetes: preStop 5 s + this +
    # the lifespan shutdown must stay within terminationGracePeriodSeconds, 30).
    graceful_shutdown_seconds: int = Field(default=10, gt=0, le=60)
    dev_accounts_enabled: bool | None = None
    # Key rotation: the active key signs; previous keys (PEM, private or public) stay in the
    # JWKS and keep verifying until the tokens they signed have expired, then are removed.
    token_previous_key_files: list[Path] = Field(default_factory=list)
    refresh_token_ttl_seconds: int = Field(default=14 * 86_400, gt=0)
    # members' internal accounts API (password check, external-user provisioning); defaults
    # to the members upstream.
    accounts_url: str | None = None
    accounts_timeout_seconds: float = Field(default=5.0, gt=0)
    # The gateway's own database (refresh-token families, API keys); migrated on start unless
    # disabled (production runs `hearth-gateway migrate` as a deploy step).
    migrate_on_start: bool | None = None
    external_issuers: list[ExternalIssuer] = Field(default_factory=list)
    jwks_cache_seconds: float = Field(default=300.0, gt=0)
    jwks_min_refresh_seconds: float = Field(default=30.0, ge=0)
    provision_cache_seconds: float = Field(default=300.0, ge=0)
    api_key_cache_seconds: float = Field(default=10.0, ge=0)
    # API-key principals may only call routes mapped here: "METHOD /api/prefix" -> scope
    # ("*" matches any method; the longest matching prefix wins; unmapped routes are refused).
    api_key_route_scopes: dict[str, str] = Field(
        default_factory=lambda: {
            "GET /api/events/": "events:read",
            "GET /api/metrics/": "metrics:read",
            "POST /api/metrics/conversions": "metrics:conversions:write",
            "GET /api/members/": "members:read",
            "GET /api/content/": "content:read",
        }
    )
    rate_limit_enabled: bool = True
    rate_limit_redis_url: str | None = None  # shared limits between replicas; else in memory
    rate_limit_redis_prefix: str = "hearth:gw:"
    rate_limit_ip_per_second: float = Field(default=100.0, gt=0)
    rate_limit_ip_burst: int = Field(default=200, gt=0)
    rate_limit_principal_per_second: float = Field(default=50.0, gt=0)
    rate_limit_principal_burst: int = Field(default=100, gt=0)
    rate_limit_login_per_second: float = Field(default=0.5, gt=0)
    rate_limit_login_burst: int = Field(default=10, gt=0)
    login_lockout_threshold: int = Field(default=5, gt=0)
    login_lockout_base_seconds: float = Field(default=1.0, gt=0)
    login_lockout_cap_seconds: float = Field(default=900.0, gt=0)
    login_lockout_window_seconds: float = Field(default=900.0, gt=0)
    # Reverse proxies in front of the gateway (the ingress controller's pod network): only when
    # the TCP peer is in one of these is X-Forwarded-For read, right to left, for the client IP
    # of per-IP limits, the login lock-out and the X-Forwarded-For sent upstream. Empty: the
    # peer is the client and X-Forwarded-For is ignored (a client must not choose its own IP).
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    cors_allow_origins: list[str] = Field(default_factory=list)
    cors_allow_credentials: bool = False
    openapi_cache_seconds: float = Field(default=60.0, ge=0)
    # Webhooks: one durable consumer per context stream (the upstream contexts unless set).
    webhooks_enabled: bool = False
    webhook_contexts: list[str] | None = None
    webhook_max_attempts: int = Field(default=15, gt=0)
    webhook_backoff_base_seconds: float = Field(default=2.0, gt=0)
    webhook_backoff_cap_seconds: float = Field(default=3600.0, gt=0)
    webhook_disable_after_failures: int = Field(default=20, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    # Signing secrets are encrypted at rest (AES-256-GCM) under this keyring file, JSON
    # {"active_kid": "k1", "keys": {"k1": "<base64 32 bytes>"}}; unset: an in-memory key (not
    # allowed in production; secrets stored under it are unreadable after a restart).
    webhook_secret_keys_file: Path | None = None
    # SSRF guard: refuse targets on loopback, private, link-local, multicast, reserved or
    # unspecified addresses, at creation and on every connection. None: off in development
    # only (receivers on the developer's machine), on everywhere else.
    webhook_allow_private_targets: bool | None = None

    @field_validator("api_key_route_scopes")
    @classmethod
    def _check_scope_rules(cls, value: dict[str, str]) -> dict[str, str]:
        for rule in value:
            method, _, prefix = rule.partition(" ")
            if not (method == "*" or method.isalpha()) or not prefix.startswith("/api/"):
                raise ValueError(f"invalid API-key route rule {rule!r} (want 'METHOD /api/...')")
        return value

    @field_validator("upstreams")
    @classmethod
    def _check_upstreams(cls, value: dict[str, str]) -> dict[str, str]:
        cleaned: dict[str, str] = {}
        for context, url in value.items():
            if not CONTEXT_NAME.match(context):
                raise ValueError(f"invalid context name {context!r}")
            if not url.startswith(("http://", "https://")) or "?" in url or "#" in url:
                raise ValueError(f"upstream for {context!r} must be a plain http(s) base URL")
            cleaned[context] = url.rstrip("/")
        return cleaned

    @model_validator(mode="after")
    def _defaults_and_production_guard(self) -> GatewaySettings:
        """Replaces the service guard: the gateway has no database but holds signing keys."""
        for context in list(self.upstreams):
            override = os.environ.get(
                f"HEARTH_GATEWAY_UPSTREAM_{context.upper().replace('-', '_')}"
            )
            if override:
                self.upstreams[context] = self._check_upstreams({context: override})[context]
        production = self.environment == "production"
        if not getattr(self, "database_url", ""):  # the parent's validator is overridden here
            self.database_url = "sqlite:///./var/gateway.db"
        if self.migrate_on_start is None:
            self.migrate_on_start = not production
        if self.dev_accounts_enabled is None:
            self.dev_accounts_enabled = not production
        if self.webhook_allow_private_targets is None:
            self.webhook_allow_private_targets = self.environment == "development"
        if production:
            problems = []
            if self.dev_accounts_enabled:
                problems.append("dev accounts must never be enabled in production")
            if self.assertion_private_key_file is None:
                problems.append("assertion_private_key_file must be configured in production")
            if self.token_private_key_file is None:
                problems.append("token_private_key_file must be configured in production")
            if self.webhook_secret_keys_file is None:
                problems.append("webhook_secret_keys_file must be configured in production")
            if self.database_url.startswith("sqlite"):
                problems.append("database_url must be PostgreSQL in production")
            if "*" in self.cors_allow_origins and self.cors_allow_credentials:
                problems.append("CORS with credentials needs explicit origins, not '*'")
            if problems:
                raise ValueError("unsafe production settings: " + "; ".join(problems))
        return self

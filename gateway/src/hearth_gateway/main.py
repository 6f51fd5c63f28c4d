"""Builds the gateway ASGI app: own routes, the /api proxy, problem errors, lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from hearth_gateway import models
from hearth_gateway.accounts import AccountsClient
from hearth_gateway.authn import Authenticator
from hearth_gateway.client_ip import TrustedProxies
from hearth_gateway.oidc import ExternalVerifier
from hearth_gateway.openapi import OpenApiAggregator
from hearth_gateway.proxy import Proxy, ScopeRules
from hearth_gateway.ratelimit import Limiter, Lockout, MemoryLimiter, Rate, RedisLimiter
from hearth_gateway.request_ids import RequestIdMiddleware
from hearth_gateway.routes import api_keys, auth, docs, health, operations, webhooks
from hearth_gateway.settings import GatewaySettings
from hearth_gateway.store import ApiKeyStore, RefreshStore
from hearth_gateway.tokens import (
    TokenIssuer,
    TokenVerifier,
    load_private_key,
    load_verification_key,
    private_pem,
    public_pem,
)
from hearth_gateway.webhook_keys import load_keyring
from hearth_gateway.webhooks import CONSUMER as WEBHOOK_CONSUMER
from hearth_gateway.webhooks import WebhookDispatcher, WebhookPolicy, WebhookStore
from servicekit.db import Database
from servicekit.events import stream_name
from servicekit.identity import AssertionSigner
from servicekit.input_guard import ControlCharacterGuard
from servicekit.logging import configure_logging
from servicekit.metrics import EdgeMetrics, HttpMetricsMiddleware, metrics_router
from servicekit.migrations import upgrade_async
from servicekit.openapi import document_problems
from servicekit.problems import install_problem_handlers
from servicekit.telemetry import setup_tracing
from servicekit.wiring import EventWiring

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class GatewayApp(FastAPI):
    """The gateway app; exposes the public keys services and clients need.

    Requests under /api/ go straight to the raw ASGI proxy, ahead of FastAPI's routing and
    middleware stack: measured at ~35 us per request saved on this hot path (see the README).
    Cross-cutting concerns for proxied calls therefore belong in Proxy, not in app middleware.
    """

    settings: GatewaySettings
    assertion_public_pem: str
    token_public_pem: str
    proxy: Proxy
    api: Any  # the proxy, wrapped in CORS when origins are configured

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Dispatch /api/ to the proxy, everything else to FastAPI."""
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            await self.api(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def make_limiter(settings: GatewaySettings) -> Limiter | None:
    """In-memory limits by default; Redis when replicas must share them; None when disabled."""
    if not settings.rate_limit_enabled:
        return None
    if settings.rate_limit_redis_url:
        return RedisLimiter(settings.rate_limit_redis_url, prefix=settings.rate_limit_redis_prefix)
    return MemoryLimiter()


def create_app(settings: GatewaySettings | None = None) -> GatewayApp:
    """The gateway app; without key files (development/test only) keys are made in memory."""
    settings = settings or GatewaySettings()
    # As in every service: JSON lines under HEARTH_LOG_FORMAT=json, secrets masked.
    configure_logging("hearth-gateway", settings.log_level, settings.environment)
    setup_tracing("hearth-gateway", settings.otel_exporter)
    assertion_key = load_private_key(settings.assertion_private_key_file)
    token_key = load_private_key(settings.token_private_key_file)
    signer = AssertionSigner(private_pem(assertion_key))
    issuer = TokenIssuer(
        token_key,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        ttl=settings.access_token_ttl_seconds,
        previous=[load_verification_key(p) for p in settings.token_previous_key_files],
    )
    verifier = TokenVerifier(
        issuer.verification_keys(),
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        leeway=settings.token_leeway_seconds,
    )
    db = Database(settings.database_url)
    accounts = AccountsClient(
        settings.accounts_url or settings.upstreams.get("members", "http://127.0.0.1:8001"),
        signer,
        timeout=settings.accounts_timeout_seconds,
    )
    api_key_store = ApiKeyStore(db)
    authenticator = Authenticator(
        builtin=verifier,
        builtin_issuer=settings.token_issuer,
        externals=[
            ExternalVerifier(
                config,
                leeway=settings.token_leeway_seconds,
                jwks_ttl=settings.jwks_cache_seconds,
                jwks_min_refresh=settings.jwks_min_refresh_seconds,
            )
            for config in settings.external_issuers
        ],
        accounts=accounts,
        api_keys=api_key_store,
        api_key_cache_seconds=settings.api_key_cache_seconds,
        provision_cache_seconds=settings.provision_cache_seconds,
        leeway=settings.token_leeway_seconds,
    )
    production = settings.environment == "production"
    limiter = make_limiter(settings)
    trusted_proxies = TrustedProxies(settings.trusted_proxies)
    webhook_store = WebhookStore(db, load_keyring(settings.webhook_secret_keys_file))
    # The gateway's one NATS connection: the webhook consumers read through it and the outbox
    # relay publishes the gateway's own events (stream HEARTH_GATEWAY) through it. Both exist
    # always, so /metrics and /admin/outbox read the outbox, but connect and run only with
    # webhooks, the one source of the gateway's events.
    # servicekit's EventWiring, as in every service: built always, started only with webhooks.
    wiring = EventWiring(db, models.kit, settings, context="gateway")
    prefix, nats, relay, outbox = wiring.prefix, wiring.nats, wiring.relay, wiring.outbox
    dispatcher = None
    if settings.webhooks_enabled:
        dispatcher = WebhookDispatcher(
            webhook_store,
            WebhookPolicy(
                max_attempts=settings.webhook_max_attempts,
                backoff_base_seconds=settings.webhook_backoff_base_seconds,
                backoff_cap_seconds=settings.webhook_backoff_cap_seconds,
                disable_after_failures=settings.webhook_disable_after_failures,
                timeout_seconds=settings.webhook_timeout_seconds,
                poll_seconds=settings.webhook_poll_seconds,
                allow_private_targets=bool(settings.webhook_allow_private_targets),
            ),
            outbox=outbox,
            contexts=settings.webhook_contexts or list(settings.upstreams),
        )
    proxy = Proxy(
        upstreams=settings.upstreams,
        authenticator=authenticator,
        signer=signer,
        scope_rules=ScopeRules(settings.api_key_route_scopes),
        trusted_proxies=trusted_proxies,
        limiter=limiter,
        ip_rate=Rate(settings.rate_limit_ip_per_second, settings.rate_limit_ip_burst),
        principal_rate=Rate(
            settings.rate_limit_principal_per_second, settings.rate_limit_principal_burst
        ),
        max_body_bytes=settings.max_body_bytes,
        capability_paths=settings.capability_paths,
        timeout_seconds=settings.upstream_timeout_seconds,
        connect_timeout_seconds=settings.upstream_connect_timeout_seconds,
        connection_limit=settings.upstream_connection_limit,
        keepalive_seconds=settings.upstream_keepalive_seconds,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.assertion_private_key_file is None:
            log.warning(
                "identity assertion key generated in memory: services cannot verify it unless "
                "given its public key (GatewayApp.assertion_public_pem); for local runs use "
                "`hearth-gateway generate-keys var/keys`"
            )
        if production and isinstance(limiter, MemoryLimiter):
            log.warning(
                "rate limits and login lock-out are kept per replica (no rate_limit_redis_url):"
                " with N replicas every budget is N times larger"
            )
        if settings.migrate_on_start:
            await upgrade_async(MIGRATIONS_DIR, settings.database_url)
        await proxy.start()
        await accounts.start()
        await authenticator.start()
        if dispatcher is not None:
            wiring.start()
            # The kernel consumer: rebinds after a broker restart, retries with back-off,
            # drains on stop (wiring.stop, after the sender has stopped).
            wiring.start_consumer(dispatcher.consumer)
            await dispatcher.start()
        try:
            yield
        finally:
            if dispatcher is not None:
                await dispatcher.close()
            await wiring.stop()  # the relay finishes its batch; what is left waits in the outbox
            await authenticator.close()
            await accounts.close()
            await proxy.close()
            if limiter is not None:
                await limiter.close()
            await db.dispose()

    app = GatewayApp(
        title="Hearth API",
        lifespan=lifespan,
        docs_url=None,  # served by routes.docs over the merged document
        # As in the services: native server spans only, no per-operation spans.
        telemetry={"tracing": True, "operation_spans": False, "metrics": False, "logs": False},
        redoc_url=None,
        openapi_url=None,
    )
    app.settings = settings
    app.proxy = proxy
    app.api = proxy
    if settings.cors_allow_origins:
        cors: dict[str, Any] = {
            "allow_origins": settings.cors_allow_origins,
            "allow_credentials": settings.cors_allow_credentials,
            "allow_methods": ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"],
            "allow_headers": [
                "authorization",
                "content-type",
                "x-api-key",
                "x-request-id",
                "idempotency-key",
                "traceparent",
            ],
            "expose_headers": ["x-request-id", "retry-after"],
            "max_age": 600,
        }
        app.api = CORSMiddleware(proxy, **cors)  # type: ignore[arg-type]
        app.add_middleware(CORSMiddleware, **cors)
    app.assertion_public_pem = public_pem(assertion_key.public_key())
    app.token_public_pem = public_pem(token_key.public_key())
    app.state.settings = settings
    app.state.issuer = issuer
    app.state.proxy = proxy
    app.state.db = db
    app.state.accounts = accounts
    app.state.authenticator = authenticator
    app.state.api_key_store = api_key_store
    app.state.refresh_store = RefreshStore(db, ttl_seconds=settings.refresh_token_ttl_seconds)
    app.state.limiter = limiter
    app.state.trusted_proxies = trusted_proxies
    app.state.webhook_store = webhook_store
    app.state.webhook_dispatcher = dispatcher
    app.state.relay = relay
    app.state.outbox = outbox
    app.state.login_rate = Rate(
        settings.rate_limit_login_per_second, settings.rate_limit_login_burst
    )
    app.state.lockout = Lockout(
        threshold=settings.login_lockout_threshold,
        base_seconds=settings.login_lockout_base_seconds,
        cap_seconds=settings.login_lockout_cap_seconds,
        window_seconds=settings.login_lockout_window_seconds,
    )
    app.state.openapi = OpenApiAggregator(
        settings.upstreams, signer, ttl=settings.openapi_cache_seconds
    )
    # Prometheus /metrics and the request log (uvicorn's access log is off: it prints raw
    # targets, query strings and secret path segments included): proxied calls labelled
    # /api/<context>, own routes by template, never the path a client sent; plus the outbox
    # and the database pool, under the same names as the services' (one set of alert rules).
    app.state.metrics = EdgeMetrics(
        "gateway", settings.upstreams, request_log=settings.request_log, relay=relay
    )
    if dispatcher is not None:
        # The webhook consumer's lag per context stream, as hearth_consumer_pending & co.
        app.state.metrics.watch_consumers(
            lambda: nats.js if nats.connected else None,
            [(WEBHOOK_CONSUMER, stream_name(prefix, c)) for c in dispatcher.contexts],
            running=lambda: wiring.consumers,  # handled/retried/dead_lettered, as the services'
        )
    install_problem_handlers(app)  # first: its error middleware is the innermost
    document_problems(app)
    # The id is settled before the request log's wrapper, so its line names every request.
    app.api = RequestIdMiddleware(app.state.metrics.wrap_proxy(app.api))
    # Own routes only: proxied calls meet the same guard in the service that owns them.
    app.add_middleware(ControlCharacterGuard)
    app.add_middleware(
        HttpMetricsMiddleware, metrics=app.state.metrics.http, request_log=settings.request_log
    )
    # Outermost on the own routes: the request log and the response both see the settled id.
    app.add_middleware(RequestIdMiddleware)
    app.include_router(metrics_router)
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(api_keys.router)
    app.include_router(webhooks.router)
    app.include_router(operations.router)
    if not production:
        app.include_router(docs.router)
    return app

"""The FastAPI application factory every service uses, so each reads like the others."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from servicekit.idempotency import IdempotencyMiddleware
from servicekit.identity import AssertionVerifier, IdentityMiddleware
from servicekit.input_guard import ControlCharacterGuard
from servicekit.logging import configure_logging
from servicekit.metrics import HttpMetricsMiddleware, ServiceMetrics, metrics_router
from servicekit.openapi import document_problems
from servicekit.ops import admin, probes
from servicekit.problems import install_problem_handlers
from servicekit.runtime import ServiceDefinition, ServiceRuntime
from servicekit.settings import ServiceSettings
from servicekit.telemetry import setup_tracing


def create_service_app(
    definition: ServiceDefinition, settings: ServiceSettings | None = None
) -> FastAPI:
    """Build a service app: problems, identity (default deny), tracing, probes, lifespan."""
    settings = settings or definition.settings_cls()
    configure_logging(f"hearth-{definition.context}", settings.log_level, settings.environment)
    metrics = ServiceMetrics(definition.context)
    for collector in definition.collectors:
        metrics.registry.register(collector(definition.context, lambda: metrics.kernel.runtime))
    setup_tracing(f"hearth-{definition.context}", settings.otel_exporter)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = ServiceRuntime(definition, settings)
        app.state.runtime = runtime
        metrics.kernel.runtime = runtime
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title=definition.title,
        lifespan=lifespan,
        root_path_in_servers=False,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        # FastAPI's native OpenTelemetry: one SERVER span per request, parented on the incoming
        # traceparent. Per-operation spans (dependencies, serialization) cost about a
        # millisecond a request on these machines for little insight, so they are off.
        telemetry={"tracing": True, "operation_spans": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.metrics = metrics
    install_problem_handlers(app)
    document_problems(app)
    app.include_router(probes)
    app.include_router(admin)
    app.include_router(metrics_router)
    for router in definition.routers:
        app.include_router(router)
    public_key = settings.identity_public_key_pem()
    verifier = AssertionVerifier(public_key) if public_key else None
    exempt = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})
    # Order matters: the last added runs first. Metrics → identity → idempotency → guard → routes.
    app.add_middleware(ControlCharacterGuard)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(IdentityMiddleware, verifier=verifier, exempt_paths=exempt)
    # Outermost, so refused (401) and failed requests are counted (and logged) too.
    app.add_middleware(
        HttpMetricsMiddleware, metrics=metrics.http, request_log=settings.request_log
    )
    return app

"""Prometheus metrics: HTTP RED metrics from a lean ASGI middleware, kernel state at scrape time.

Each app gets its own `CollectorRegistry` (several services may share one test process). HTTP
requests are labelled with the route template (`/communities/{community_id}`), never the raw
path, so label cardinality stays bounded. Outbox, consumer, dead-letter and pool figures are
read when Prometheus scrapes, not kept up to date on every write.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from servicekit.events import stream_name
from servicekit.logging import log_request, request_id_var

if TYPE_CHECKING:
    from servicekit.relay import OutboxRelay
    from servicekit.runtime import ServiceRuntime

log = logging.getLogger(__name__)

# Probes and the scrape itself would drown the request rate and say nothing about users.
SKIPPED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONSUMER_INFO_TTL_SECONDS = 5.0


class HttpMetrics:
    """Request counter and latency histogram of one app, labelled by route template."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.service = service
        self.requests = Counter(
            "hearth_http_requests",
            "HTTP requests handled, by route template and status code.",
            ["service", "method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "hearth_http_request_duration_seconds",
            "HTTP request latency from first byte in to last byte out.",
            ["service", "method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one request (label children are cached: `.labels()` is the slow part)."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(self.service, method, route, str(status)),
                self.latency.labels(self.service, method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


def route_template(scope: dict[str, Any]) -> str:
    """The matched route's path template; unmatched paths share one label."""
    path = getattr(scope.get("route"), "path", None)
    # Requests refused before routing (401 from the identity middleware) and unknown paths
    # (404) share one label: matching them here would cost every refusal a route scan.
    return path if isinstance(path, str) else "<unmatched>"


class HttpMetricsMiddleware:
    """Pure ASGI: time each request, note its status, label it with the route template.

    Also puts the caller's request id (`x-request-id`, set by the gateway) in the logging context
    and, with `request_log`, writes the request's access-log line (servicekit.logging.log_request:
    the same route label, never the raw path or query string).
    """

    def __init__(
        self,
        app: Any,
        metrics: HttpMetrics,
        route_of: Callable[[dict[str, Any]], str] = route_template,
        *,
        request_log: bool = True,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.route_of = route_of
        self.request_log = request_log

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Wrap one request."""
        if scope["type"] != "http" or scope["path"] in SKIPPED_PATHS:
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")[:128]
                break
        token = request_id_var.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            seconds = time.perf_counter() - started
            route = self.route_of(scope)
            self.metrics.observe(scope["method"], route, status, seconds)
            if self.request_log:  # still inside the request: its ids are in context
                log_request(scope["method"], route, status, seconds)
            request_id_var.reset(token)


class KernelCollector(Collector):
    """Outbox, consumers, dead letters and the database pool of one service runtime.

    `collect()` is synchronous, so the async figures are read by `refresh()` just before each
    scrape (see `metrics_endpoint`) and only formatted here.
    """

    def __init__(self, service: str) -> None:
        self.service = service
        self.runtime: ServiceRuntime | None = None
        self.snapshot: dict[str, Any] = {}
        self._consumer_info: dict[tuple[str, str], tuple[float, Any]] = {}

    async def refresh(self) -> None:
        """Read what needs the database or NATS; a failing source is skipped, not fatal."""
        runtime = self.runtime
        if runtime is None:
            return
        snap: dict[str, Any] = {}
        backlog = await read_backlog(runtime.relay)
        if backlog is not None:
            snap["backlog"] = backlog
        try:
            t = runtime.tables.dead_letters
            async with runtime.db.session() as session:
                rows = (
                    await session.execute(
                        select(t.c.consumer, func.count())
                        .where(t.c.replayed_at.is_(None))
                        .group_by(t.c.consumer)
                    )
                ).all()
                await session.commit()
            snap["dead_letters"] = {str(c): int(n) for c, n in rows}
        except Exception as exc:
            log.warning("metrics: dead letters unavailable: %s", exc)
        snap["consumers"] = await self._consumers(runtime)
        self.snapshot = snap

    async def _consumers(self, runtime: ServiceRuntime) -> list[tuple[str, str, Any]]:
        """JetStream consumer info per (consumer, stream), cached: each is one NATS request."""
        pairs = [
            (consumer.consumer.name, stream_name(consumer.prefix, context))
            for consumer in runtime.consumers
            for context in consumer.consumer.contexts
        ]
        js = runtime.nats.js if runtime.nats.connected else None
        return await read_consumer_info(js, pairs, self._consumer_info)

    def collect(self) -> Iterable[Metric]:
        """Format the last snapshot plus the in-process counters."""
        runtime = self.runtime
        if runtime is None:
            return
        svc = self.service
        snap = self.snapshot
        yield from outbox_metrics(svc, runtime.relay, snap.get("backlog"))
        yield from consumer_counter_metrics(svc, runtime.consumers)
        yield from consumer_lag_metrics(svc, snap.get("consumers", []))
        dead = GaugeMetricFamily(
            "hearth_dead_letters",
            "Dead letters not yet replayed, per consumer.",
            labels=["service", "consumer"],
        )
        counts = snap.get("dead_letters", {})
        for declared in runtime.definition.consumers:
            dead.add_metric([svc, declared.name], counts.get(declared.name, 0))
        yield dead
        yield from _pool_metrics(svc, runtime.db.engine.sync_engine.pool)


async def read_consumer_info(
    js: Any,
    pairs: Iterable[tuple[str, str]],
    cache: dict[tuple[str, str], tuple[float, Any]],
) -> list[tuple[str, str, Any]]:
    """JetStream info of each (durable consumer, stream), cached CONSUMER_INFO_TTL_SECONDS;
    with NATS away (js None) or a consumer not bound yet, the last figure is reported."""
    out = []
    now = time.monotonic()
    for name, stream in pairs:
        key = (name, stream)
        cached = cache.get(key)
        if (cached is None or now - cached[0] > CONSUMER_INFO_TTL_SECONDS) and js is not None:
            try:
                cached = cache[key] = (now, await js.consumer_info(stream, name))
            except Exception:
                pass
        if cached is not None:
            out.append((name, stream, cached[1]))
    return out


def consumer_lag_metrics(
    service: str, consumers: Iterable[tuple[str, str, Any]]
) -> Iterable[Metric]:
    """Lag, in-flight and redelivered gauges per (consumer, stream) from JetStream's info."""
    labels = ["service", "consumer", "stream"]
    lag = GaugeMetricFamily(
        "hearth_consumer_pending",
        "Messages in the stream not yet delivered to the durable consumer (lag).",
        labels=labels,
    )
    ack_pending = GaugeMetricFamily(
        "hearth_consumer_ack_pending", "Messages delivered and not yet acknowledged.", labels=labels
    )
    redelivered = GaugeMetricFamily(
        "hearth_consumer_redelivered",
        "Messages currently redelivered at least once (JetStream's num_redelivered).",
        labels=labels,
    )
    for name, stream, info in consumers:
        lag.add_metric([service, name, stream], info.num_pending or 0)
        ack_pending.add_metric([service, name, stream], info.num_ack_pending or 0)
        redelivered.add_metric([service, name, stream], info.num_redelivered or 0)
    yield lag
    yield ack_pending
    yield redelivered


def consumer_counter_metrics(svc: str, consumers: Iterable[Any]) -> Iterable[Metric]:
    """The in-process counters of running consumers (ConsumerRuntime.stats, loop_errors)."""
    consumers = list(consumers)
    messages = CounterMetricFamily(
        "hearth_consumer_messages",
        "Messages processed by outcome: handled, duplicates, retried, dead_lettered.",
        labels=["service", "consumer", "outcome"],
    )
    for consumer in consumers:
        for outcome, count in consumer.stats.items():
            messages.add_metric([svc, consumer.consumer.name, outcome], count)
    yield messages
    loop_errors = CounterMetricFamily(
        "hearth_consumer_loop_errors",
        "Failures outside the handler (dead-letter write, ack) the consumer loop survived.",
        labels=["service", "consumer"],
    )
    for consumer in consumers:
        loop_errors.add_metric([svc, consumer.consumer.name], consumer.loop_errors)
    yield loop_errors


class ConsumerLagCollector(Collector):
    """JetStream lag of durable consumers a process runs outside a ServiceRuntime (the
    gateway's webhook consumer): the same families and labels as KernelCollector's."""

    def __init__(
        self,
        service: str,
        js: Callable[[], Any],
        pairs: Iterable[tuple[str, str]],
        running: Callable[[], Iterable[Any]] | None = None,
    ) -> None:
        self.service = service
        self.js = js  # the current JetStream context, or None while NATS is away
        self.pairs = list(pairs)
        self.running = running  # the ConsumerRuntimes whose counters are exported too
        self.consumers: list[tuple[str, str, Any]] = []
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}

    async def refresh(self) -> None:
        """Read each consumer's info (cached) just before the scrape formats it."""
        self.consumers = await read_consumer_info(self.js(), self.pairs, self._cache)

    def collect(self) -> Iterable[Metric]:
        """Format the last figures read."""
        yield from consumer_lag_metrics(self.service, self.consumers)
        if self.running is not None:
            yield from consumer_counter_metrics(self.service, self.running())


async def read_backlog(relay: OutboxRelay) -> tuple[int, float | None] | None:
    """The relay's backlog (pending rows, oldest age) for a scrape; None if the database fails."""
    try:
        return await relay.backlog()
    except Exception as exc:  # the scrape still reports everything else
        log.warning("metrics: outbox backlog unavailable: %s", exc)
        return None


def outbox_metrics(
    service: str, relay: OutboxRelay, backlog: tuple[int, float | None] | None
) -> Iterable[Metric]:
    """The outbox families of one relay: backlog and its age (when read), published, lease."""
    if backlog is not None:
        pending, age = backlog
        yield _gauge("hearth_outbox_pending", "Outbox rows not yet published.", service, pending)
        yield _gauge(
            "hearth_outbox_oldest_pending_age_seconds",
            "Age of the oldest unpublished outbox row (0 when none).",
            service,
            age or 0.0,
        )
    published = CounterMetricFamily(
        "hearth_outbox_published",
        "Events this process published (only the lease holder publishes).",
        labels=["service"],
    )
    published.add_metric([service], relay.published_total)
    yield published
    yield _gauge(
        "hearth_outbox_relay_lease_held",
        "1 if this replica holds the relay lease and publishes.",
        service,
        1.0 if relay.holds_lease else 0.0,
    )


class OutboxCollector(Collector):
    """The outbox of a process without a ServiceRuntime (the gateway), and its database pool.

    The same families and labels as KernelCollector's, from the same functions, so the alert
    rules and dashboards cover it without a second set of names.
    """

    def __init__(self, service: str, relay: OutboxRelay) -> None:
        self.service = service
        self.relay = relay
        self.backlog: tuple[int, float | None] | None = None

    async def refresh(self) -> None:
        """Read the backlog (one query) just before the scrape formats it."""
        self.backlog = await read_backlog(self.relay)

    def collect(self) -> Iterable[Metric]:
        """Format the last backlog read, the relay's counters and the pool."""
        yield from outbox_metrics(self.service, self.relay, self.backlog)
        yield from _pool_metrics(self.service, self.relay.db.engine.sync_engine.pool)


def _gauge(name: str, doc: str, service: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, doc, labels=["service"])
    gauge.add_metric([service], value)
    return gauge


def _pool_metrics(service: str, pool: Any) -> Iterable[Metric]:
    """QueuePool figures (PostgreSQL); SQLite's pool has fewer and reports what it has."""
    for attr, name, doc in (
        ("size", "hearth_db_pool_size", "Configured pool size."),
        ("checkedout", "hearth_db_pool_checked_out", "Connections in use."),
        ("checkedin", "hearth_db_pool_checked_in", "Idle pooled connections."),
        ("overflow", "hearth_db_pool_overflow", "Connections beyond the pool size."),
    ):
        method = getattr(pool, attr, None)
        if callable(method):
            try:
                value = float(method())
            except Exception:  # noqa: S112 - a pool type without the figure reports nothing
                continue
            yield _gauge(name, doc, service, value)


class ServiceMetrics:
    """Everything one service app exports on /metrics."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.http = HttpMetrics(self.registry, service)
        self.kernel = KernelCollector(service)
        self.registry.register(self.kernel)

    async def render(self) -> bytes:
        """The exposition text, after refreshing the async figures."""
        await self.kernel.refresh()
        return _generate_latest(self.registry)


metrics_router = APIRouter(include_in_schema=False)


@metrics_router.get("/metrics")
async def metrics_endpoint(request: Request) -> Response:
    """Prometheus exposition (no identity needed; NetworkPolicy decides who may scrape)."""
    metrics: ServiceMetrics = request.app.state.metrics
    return Response(await metrics.render(), media_type=CONTENT_TYPE_LATEST)


def generate_latest(registry: CollectorRegistry) -> bytes:
    """Exposition text of a registry (re-exported so callers need not import prometheus_client)."""
    return _generate_latest(registry)


class EdgeMetrics:
    """The gateway's /metrics: its own routes plus proxied calls labelled `/api/<context>`, and
    with a relay its outbox and database pool (OutboxCollector)."""

    def __init__(
        self,
        service: str = "gateway",
        contexts: Iterable[str] = (),
        *,
        request_log: bool = True,
        relay: OutboxRelay | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.service = service
        self.http = HttpMetrics(self.registry, service)
        self.contexts = frozenset(contexts)
        self.request_log = request_log
        self.outbox = OutboxCollector(service, relay) if relay is not None else None
        if self.outbox is not None:
            self.registry.register(self.outbox)
        self.consumers: ConsumerLagCollector | None = None

    def watch_consumers(
        self,
        js: Callable[[], Any],
        pairs: Iterable[tuple[str, str]],
        running: Callable[[], Iterable[Any]] | None = None,
    ) -> None:
        """Also export the JetStream lag of these (durable consumer, stream) pairs, and the
        counters of the `running` consumers (hearth_consumer_messages, _loop_errors)."""
        self.consumers = ConsumerLagCollector(self.service, js, pairs, running)
        self.registry.register(self.consumers)

    def _api_route(self, scope: dict[str, Any]) -> str:
        # /api/<context>/... → "/api/<context>" for known contexts only (bounded labels).
        context = scope["path"][5:].split("/", 1)[0]
        return f"/api/{context}" if context in self.contexts else "/api/<unknown>"

    def wrap_proxy(self, proxy: Any) -> HttpMetricsMiddleware:
        """The proxy ASGI callable, measured."""
        return HttpMetricsMiddleware(
            proxy, self.http, route_of=self._api_route, request_log=self.request_log
        )

    def middleware(self, app: Any) -> HttpMetricsMiddleware:
        """For the gateway's own FastAPI routes (tokens, keys, probes)."""
        return HttpMetricsMiddleware(app, self.http, request_log=self.request_log)

    async def render(self) -> bytes:
        """The exposition text, after reading the outbox backlog."""
        if self.outbox is not None:
            await self.outbox.refresh()
        if self.consumers is not None:
            await self.consumers.refresh()
        return _generate_latest(self.registry)

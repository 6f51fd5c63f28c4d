"""OpenTelemetry tracing: OTLP when configured, console for debugging, otherwise in-process only.

Even with no exporter a real TracerProvider is installed, so trace context still flows from the
gateway through HTTP (FastAPI's native server spans), the outbox and NATS to consumers.
Every exporter is wrapped in `ScrubbingExporter`: server spans carry the raw request path and
query string, which may hold secrets (invite tokens in paths) or PII (an e-mail in a query), and
a trace backend is no place for either.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qsl, urlencode

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)

log = logging.getLogger(__name__)
_provider: TracerProvider | None = None
# Attributes that carry the raw request target (current and older semantic conventions).
_PATH_KEYS = ("url.path", "http.target")
_QUERY_KEYS = ("url.query",)
_FULL_URL_KEYS = ("url.full", "http.url")


def scrub_attributes(attributes: Mapping[str, object]) -> dict[str, object]:
    """Span attributes with the request's path replaced by its route and query values masked."""
    out = dict(attributes)
    route = out.get("http.route")
    for key in _PATH_KEYS:
        if key in out:
            out[key] = route if isinstance(route, str) else "REDACTED"
    for key in _QUERY_KEYS:
        value = out.get(key)
        if isinstance(value, str):
            pairs = parse_qsl(value, keep_blank_values=True)
            out[key] = urlencode([(k, "REDACTED") for k, _ in pairs])
    for key in _FULL_URL_KEYS:
        if key in out:
            out[key] = "REDACTED"
    return out


class ScrubbingExporter(SpanExporter):
    """Wraps an exporter; spans leave with `scrub_attributes` applied."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export scrubbed copies of the spans."""
        return self.inner.export([_scrubbed(span) for span in spans])

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped exporter."""
        return self.inner.force_flush(timeout_millis)


def _scrubbed(span: ReadableSpan) -> ReadableSpan:
    attributes: dict[str, object] = dict(span.attributes or {})
    clean = scrub_attributes(attributes)
    if clean == attributes:
        return span
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=clean,  # type: ignore[arg-type]
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def setup_tracing(service_name: str, exporter: str = "none") -> TracerProvider:
    """Install the process's tracer provider once; later calls return the same provider."""
    global _provider
    if _provider is not None:
        return _provider
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(ScrubbingExporter(OTLPSpanExporter())))
    elif exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ScrubbingExporter(ConsoleSpanExporter())))
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def add_span_processor(processor: SpanProcessor) -> None:
    """Attach a processor (tests use an in-memory exporter)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.add_span_processor(processor)
